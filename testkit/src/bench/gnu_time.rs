//! GNU time (`/usr/bin/time`, Debian package `time`) around a command, for
//! its peak RSS and CPU time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct GnuTime {
    path: PathBuf,
}

/// What a run used besides wall time; each `None` when not measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Peak RSS of the command, KiB (GNU time `%M`).
    pub rss_kib: Option<u64>,
    /// The command's user + system CPU time (GNU time `%U`, `%S`).
    pub cpu: Option<Duration>,
    /// CPU time of a server the command talked to during the run, where
    /// the bench measures one (not GNU time's).
    pub server_cpu: Option<Duration>,
}

impl GnuTime {
    pub fn detect() -> Option<GnuTime> {
        let path = PathBuf::from("/usr/bin/time");
        let ok = Command::new(&path)
            .args(["-f", "%M", "-o", "/dev/null", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(GnuTime { path })
    }

    /// `time -f "%M %U %S" -o FILE PROGRAM ARGS…` with `cmd`'s explicit
    /// environment changes and directory.
    pub fn wrap(&self, cmd: &Command, out: &Path) -> Command {
        self.wrap_on(Command::new(&self.path), cmd, out)
    }

    /// [`wrap`](Self::wrap) for a `cmd` that cleared its environment
    /// (which a `Command` does not tell): on a cleared one too.
    pub fn wrap_cleared(&self, cmd: &Command, out: &Path) -> Command {
        let mut w = Command::new(&self.path);
        w.env_clear();
        self.wrap_on(w, cmd, out)
    }

    fn wrap_on(&self, mut w: Command, cmd: &Command, out: &Path) -> Command {
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            w.current_dir(dir);
        }
        w.args(["-f", "%M %U %S", "-o"])
            .arg(out)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        w
    }

    /// The last line of the output file: the peak RSS in KiB and the CPU
    /// time.
    pub fn read(file: &Path) -> Usage {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let fields: Vec<&str> = text
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let secs = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        Usage {
            rss_kib: fields.first().and_then(|f| f.parse().ok()),
            cpu: secs(1).zip(secs(2)).map(|(u, s)| Duration::from_secs_f64(u + s)),
            server_cpu: None,
        }
    }
}
