//! How fast, and how small, is mooring's push, next to `git push`?
//!
//! Builds a repository with `git fast-import` (a 20,000-file tree in 400
//! directories, then a history of one-file commits: about 50,000 objects),
//! serves it with `git daemon --enable=receive-pack` on a free 127.0.0.1
//! port, and puts a small TCP proxy in front of the daemon that counts the
//! bytes going each way. mooring and git both talk to the proxy, over the
//! same git:// protocol (receive-pack, v0), so the byte counts are
//! measured the same way for both: everything on the wire, ref
//! advertisement, commands, pack and report.
//!
//! Each round changes one line of the same file (an image tag) on a
//! branch of each contender's own (`bench-mooring`, `bench-git`, both
//! made from `main`), so the two never race, and times
//!
//! 1. the push alone: `Workspace::push` in process, against `git push`
//!    from a full clone (the change already committed, untimed, in both);
//! 2. the whole cycle from the remote's tip: `Workspace::prepare` (a no-op
//!    fetch, the 20,000 files already written out), the edit, `commit`,
//!    `push`; against `git fetch` + `git reset --hard` + the edit +
//!    `git commit -a` + `git push` in the clone.
//!
//! The rows of a scenario take turns (one run of each, then again).
//!
//! Run with `cargo bench --bench push`. Without `--bench` (as under
//! `cargo test --benches`) a small repository is used and every row runs
//! once, as a smoke test. Environment: `MOORING_BENCH_PUSH_ITERS` (timed
//! rounds, default 10; `MOORING_BENCH_ITERS` where unset), `TMPDIR` (e.g.
//! `/dev/shm` to leave the disk out). Every `git` the bench runs has
//! `GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1` and a temporary
//! `HOME`.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mooring::automation::git::{PushOutcome, Workspace};
use mooring::config::{self, GitRef, Limits, SourceKind, Spanned};

use mooring_testkit::bench::{Mode, Row, table};
use mooring_testkit::gitserver::{Git, git_daemon_with_receive_pack};
use mooring_testkit::server::Threaded;

/// The repository: `DIRS` directories of `FILES_PER_DIR` files, then
/// `COMMITS` commits of one file each.
struct Shape {
    dirs: usize,
    files_per_dir: usize,
    commits: usize,
}

const FULL: Shape = Shape {
    dirs: 400,
    files_per_dir: 50,
    commits: 7_500,
};
const SMOKE: Shape = Shape {
    dirs: 20,
    files_per_dir: 10,
    commits: 20,
};
/// The file every round edits (one line: its image tag).
const EDITED_DIR: usize = 7;
const EDITED_FILE: usize = 3;
const WARMUP: usize = 1;
const TIMEOUT: Duration = Duration::from_secs(300);

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.iters(&["MOORING_BENCH_PUSH_ITERS"], 10);
    let warmup = mode.warmup(WARMUP);
    let shape = if bench_mode { FULL } else { SMOKE };

    let tmp = tempfile::tempdir().expect("create temp dir");
    let home = tmp.path().join("home");
    let srv = tmp.path().join("srv");
    std::fs::create_dir_all(&home).expect("create home");
    std::fs::create_dir_all(&srv).expect("create server root");
    let git = Git { home };

    println!("mooring push benchmark");
    println!("{}", git.run(tmp.path(), &["--version"]));
    let start = Instant::now();
    let bare = srv.join("repo.git");
    git.fast_import(&bare, &stream(&shape));
    let objects = git.run(&bare, &["count-objects", "-v"]);
    let count = objects
        .lines()
        .find_map(|l| l.strip_prefix("in-pack: "))
        .unwrap_or("?")
        .to_string();
    println!(
        "built repo.git ({} files in {} dirs, {} commits, {count} objects) in {:.1} s",
        shape.dirs * shape.files_per_dir,
        shape.dirs,
        shape.commits + 1,
        start.elapsed().as_secs_f64()
    );
    let daemon = git_daemon_with_receive_pack(&git.home, &srv);
    let proxy = Proxy::start(daemon.port);
    let url = format!("git://127.0.0.1:{}/repo.git", proxy.port);
    println!(
        "git daemon --enable=receive-pack on 127.0.0.1:{}, counting proxy on 127.0.0.1:{}",
        daemon.port, proxy.port
    );
    if bench_mode {
        println!("timing: {iters} rounds per scenario, the rows taking turns, after {warmup} untimed round");
    } else {
        println!(
            "smoke run (no --bench): a small repository, one run per row; use `cargo bench --bench push`"
        );
    }
    println!();

    // The contenders' starting points: mooring's workspace, git's clone.
    let src = source(&url);
    let state = tmp.path().join("state/automations/bench");
    let clone = tmp.path().join("clone");
    let start = Instant::now();
    let ws = Workspace::prepare(&state, &src, "main", "bench-mooring", TIMEOUT).expect("prepare");
    println!(
        "mooring's first prepare (shallow fetch + {} files written) took {:.0} ms",
        shape.dirs * shape.files_per_dir,
        start.elapsed().as_secs_f64() * 1000.0
    );
    drop(ws);
    let start = Instant::now();
    git.run(tmp.path(), &["clone", "-q", &url, path_str(&clone)]);
    git.run(&clone, &["checkout", "-q", "-b", "bench-git"]);
    println!(
        "git's clone (full, with checkout) took {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    println!();

    let edited = format!("team-{EDITED_DIR:03}/svc-{EDITED_FILE:02}.yaml");
    let mut version = 1000usize;
    let mut next_version = || {
        version += 1;
        version
    };
    let author = config::Author {
        name: "bench".into(),
        email: "bench@example.com".into(),
    };
    let mut rows = Vec::new();
    let mut bytes_notes = Vec::new();

    // ---- 1. the push alone --------------------------------------------------
    {
        let mut mooring = Contender::new("  mooring Workspace::push (in process)");
        let mut git_push = Contender::new("  git push (full clone)");
        for round in 0..warmup + iters {
            let timed = round >= warmup;
            // mooring: prepare, edit, commit untimed; push timed.
            let mut ws = Workspace::prepare(&state, &src, "main", "bench-mooring", TIMEOUT).expect("prepare");
            set_tag(&ws.root().join(&edited), next_version());
            ws.commit(&author, "bench: one line")
                .expect("commit")
                .expect("a change");
            let (sent, elapsed, wire) = proxy.measure(|| pushed(ws.push("bench-mooring", false)));
            mooring.record(timed, elapsed, wire, Some(sent));

            // git: edit, commit untimed; push timed.
            set_tag(&clone.join(&edited), next_version());
            git.run(&clone, &["commit", "-q", "-a", "-m", "bench: one line"]);
            let ((), elapsed, wire) = proxy.measure(|| {
                git.run(&clone, &["push", "-q", "origin", "HEAD:refs/heads/bench-git"]);
            });
            git_push.record(timed, elapsed, wire, None);
        }
        rows.push(Row::new("1. push of a one-line change", vec![]));
        bytes_notes.push(("1. push", mooring.bytes_line(), git_push.bytes_line()));
        rows.extend([mooring.row(), git_push.row()]);
    }

    // ---- 2. the whole cycle -------------------------------------------------
    {
        let mut mooring = Contender::new("  mooring prepare + edit + commit + push");
        let mut git_cycle = Contender::new("  git fetch + reset + edit + commit + push");
        for round in 0..warmup + iters {
            let timed = round >= warmup;
            let v = next_version();
            let (sent, elapsed, wire) = proxy.measure(|| {
                let mut ws =
                    Workspace::prepare(&state, &src, "main", "bench-mooring", TIMEOUT).expect("prepare");
                set_tag(&ws.root().join(&edited), v);
                ws.commit(&author, "bench: one line")
                    .expect("commit")
                    .expect("a change");
                pushed(ws.push("bench-mooring", false))
            });
            mooring.record(timed, elapsed, wire, Some(sent));

            let v = next_version();
            let ((), elapsed, wire) = proxy.measure(|| {
                git.run(&clone, &["fetch", "-q", "origin", "bench-git"]);
                git.run(&clone, &["reset", "-q", "--hard", "FETCH_HEAD"]);
                set_tag(&clone.join(&edited), v);
                git.run(&clone, &["commit", "-q", "-a", "-m", "bench: one line"]);
                git.run(&clone, &["push", "-q", "origin", "HEAD:refs/heads/bench-git"]);
            });
            git_cycle.record(timed, elapsed, wire, None);
        }
        rows.push(Row::new("2. fetch to the tip + edit + commit + push", vec![]));
        bytes_notes.push(("2. cycle", mooring.bytes_line(), git_cycle.bytes_line()));
        rows.extend([mooring.row(), git_cycle.row()]);
    }
    drop(proxy);

    // Both branches hold one commit per run on top of main, and the
    // server's repository is sound.
    let runs = 2 * (warmup + iters);
    for branch in ["bench-mooring", "bench-git"] {
        let n: usize = git
            .run(&bare, &["rev-list", "--count", &format!("main..{branch}")])
            .parse()
            .expect("a count");
        assert_eq!(n, runs, "{branch}");
        assert_eq!(
            git.run(&bare, &["diff", "--name-only", &format!("{branch}~1"), branch]),
            edited,
            "{branch}: the last commit changes the edited file only"
        );
    }
    git.run(&bare, &["fsck", "--strict", "--no-dangling"]);
    drop(daemon);

    print!("{}", table(&rows));
    println!();
    println!("bytes on the wire per run (medians; up = client to server, down = server to client):");
    for (what, m, g) in &bytes_notes {
        println!("  {what}: mooring {m}");
        println!("  {what}: git     {g}");
    }
    println!("each branch got {runs} commits; git fsck --strict on the server: clean");
    let ratio = rows[1].median_ms() / rows[2].median_ms();
    let verdict = if bench_mode {
        ""
    } else {
        " (smoke run: not judged)"
    };
    println!("push alone: mooring / git = {ratio:.2}× (medians){verdict}");
    let ratio = rows[4].median_ms() / rows[5].median_ms();
    println!("whole cycle: mooring / git = {ratio:.2}× (medians){verdict}");
}

/// The bytes a successful push sent.
fn pushed(outcome: Result<PushOutcome, mooring::automation::git::Error>) -> u64 {
    match outcome.expect("push") {
        PushOutcome::Pushed { bytes_sent, .. } => bytes_sent,
        other => panic!("mooring's push was rejected: {other:?}"),
    }
}

fn source(url: &str) -> config::Source {
    config::Source {
        name: Spanned::new("bench".to_string(), (0, 0).into()),
        kind: SourceKind::Git {
            url: url.to_string(),
            reference: GitRef::Branch("main".into()),
        },
        interval: Duration::from_secs(60),
        timeout: TIMEOUT,
        auth: None,
        ignore: Vec::new(),
        limits: Limits::default(),
        ca_file: None,
    }
}

/// Set the image tag in a manifest (one line changes).
fn set_tag(path: &Path, version: usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (head, rest) = text.split_once(":1.").expect("an image tag");
    let rest = rest.split_once('\n').map_or("", |(_, r)| r);
    let new = format!("{head}:1.{version}.0\n{rest}");
    // As a setter: a temporary file renamed over the old one.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, new).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

// ---- measuring -----------------------------------------------------------------

/// Bytes through the proxy.
#[derive(Debug, Clone, Copy, Default)]
struct Wire {
    up: u64,
    down: u64,
}

impl Wire {
    fn since(self, before: Wire) -> Wire {
        Wire {
            up: self.up - before.up,
            down: self.down - before.down,
        }
    }
}

struct Contender {
    name: &'static str,
    samples: Vec<Duration>,
    wire: Vec<Wire>,
    /// What mooring counted itself (commands + pack).
    own: Vec<u64>,
}

impl Contender {
    fn new(name: &'static str) -> Contender {
        Contender {
            name,
            samples: Vec::new(),
            wire: Vec::new(),
            own: Vec::new(),
        }
    }

    fn record(&mut self, timed: bool, elapsed: Duration, wire: Wire, own: Option<u64>) {
        if !timed {
            return;
        }
        self.samples.push(elapsed);
        self.wire.push(wire);
        self.own.extend(own);
    }

    fn bytes_line(&self) -> String {
        let median = |mut v: Vec<u64>| -> u64 {
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        let up = median(self.wire.iter().map(|w| w.up).collect());
        let down = median(self.wire.iter().map(|w| w.down).collect());
        let mut line = format!("up {up} B, down {down} B");
        if !self.own.is_empty() {
            line.push_str(&format!(
                " (commands + pack, as PushOutcome::bytes_sent: {} B)",
                median(self.own.clone())
            ));
        }
        line
    }

    fn row(mut self) -> Row {
        self.samples.sort();
        Row::new(self.name, self.samples)
    }
}

/// A TCP proxy to `127.0.0.1:target` that counts the bytes each way;
/// stopped on drop.
struct Proxy {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    /// Connections whose copying has not finished.
    live: Arc<AtomicUsize>,
    _server: Threaded,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let live = Arc::new(AtomicUsize::new(0));
        let (up2, down2, live2) = (up.clone(), down.clone(), live.clone());
        let server = Threaded::start("counting-proxy", move |client| {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            live2.fetch_add(2, Ordering::SeqCst);
            for (from, to, counter) in [
                (client.try_clone(), server.try_clone(), up2.clone()),
                (server.try_clone(), client.try_clone(), down2.clone()),
            ] {
                let (Ok(from), Ok(to)) = (from, to) else {
                    live2.fetch_sub(1, Ordering::SeqCst);
                    continue;
                };
                let live = live2.clone();
                std::thread::spawn(move || {
                    pipe(from, to, &counter);
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            port: server.port,
            up,
            down,
            live,
            _server: server,
        }
    }

    /// `f`'s result, how long it took, and the bytes that passed meanwhile.
    fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, Duration, Wire) {
        let before = self.totals();
        let start = Instant::now();
        let out = f();
        let elapsed = start.elapsed();
        (out, elapsed, self.settle().since(before))
    }

    fn totals(&self) -> Wire {
        Wire {
            up: self.up.load(Ordering::SeqCst),
            down: self.down.load(Ordering::SeqCst),
        }
    }

    /// The totals once every connection has finished (or after 5 s).
    fn settle(&self) -> Wire {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.totals()
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

// ---- the repository ------------------------------------------------------------

/// A `fast-import` stream: the tree, then one-file commits.
fn stream(shape: &Shape) -> Vec<u8> {
    let files = shape.dirs * shape.files_per_dir;
    let mut s = Vec::with_capacity(files * 400 + shape.commits * 500);
    let msg = "a large tree\n";
    let _ = write!(
        s,
        "commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\ndata {}\n{msg}",
        msg.len()
    );
    for d in 0..shape.dirs {
        for f in 0..shape.files_per_dir {
            file_command(&mut s, d, f, 0);
        }
    }
    s.push(b'\n');
    for i in 0..shape.commits {
        let (d, f) = ((i * 7919) % shape.dirs, (i * 104_729) % shape.files_per_dir);
        let msg = format!("chore(images): update svc-{d}-{f}\n");
        let _ = write!(
            s,
            "commit refs/heads/main\ncommitter Bench <bench@example.com> {} +0000\ndata {}\n{msg}",
            1_700_000_060 + i * 60,
            msg.len()
        );
        file_command(&mut s, d, f, i + 1);
        s.push(b'\n');
    }
    s
}

fn file_command(s: &mut Vec<u8>, d: usize, f: usize, version: usize) {
    let name = format!("svc-{d:03}-{f:02}");
    let content = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {}\n  template:\n    spec:\n      containers:\n        - name: {name}\n          image: ghcr.io/acme/{name}:1.{version}.0\n          ports:\n            - containerPort: 8080\n",
        1 + (d + f) % 5
    );
    let _ = write!(
        s,
        "M 100644 inline team-{d:03}/svc-{f:02}.yaml\ndata {}\n{content}\n",
        content.len()
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
