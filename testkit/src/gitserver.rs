//! Real git servers on loopback for the source tests: a work repository
//! built with the `git` CLI and published into a bare one, served by
//! `git daemon` (git://), by `git http-backend` behind a small HTTP/1.1
//! server (smart HTTP, optionally with basic auth), by sshd (ssh://), or
//! as `file://`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::server::{Threaded, read_request, respond};
use crate::support::{base64, checked, tool, wait_for};

/// A `git` command isolated from the machine's and user's config.
pub fn git_cmd(home: &Path) -> Command {
    program_cmd(home, "git")
}

/// `git ARGS…` in `dir` ([`git_cmd`]); its trimmed stdout. Panics with
/// git's stderr when it fails.
pub fn git(home: &Path, dir: &Path, args: &[&str]) -> String {
    checked(git_cmd(home).current_dir(dir).args(args))
        .trim()
        .to_string()
}

/// The helpers of this module for one `HOME`, and what the benches do with
/// git besides: repositories from `git fast-import` streams, archives.
pub struct Git {
    pub home: PathBuf,
}

impl Git {
    /// [`git_cmd`] in `dir`.
    pub fn cmd(&self, dir: &Path) -> Command {
        let mut cmd = git_cmd(&self.home);
        cmd.current_dir(dir);
        cmd
    }

    /// [`git`]: `git ARGS…` in `dir`, its trimmed stdout.
    pub fn run(&self, dir: &Path, args: &[&str]) -> String {
        git(&self.home, dir, args)
    }

    /// A bare repository at `repo` holding what `stream` (a `git
    /// fast-import` stream) imports, repacked as a server's would be.
    pub fn fast_import(&self, repo: &Path, stream: &[u8]) {
        let parent = repo.parent().expect("parent");
        let path = repo.to_str().expect("temp paths are UTF-8");
        self.run(parent, &["init", "-q", "--bare", "-b", "main", path]);
        let mut child = self
            .cmd(repo)
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("start git fast-import");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stream)
            .expect("feed git fast-import");
        let status = child.wait().expect("wait for git fast-import");
        assert!(status.success(), "git fast-import failed: {status}");
        self.run(repo, &["repack", "-adq"]);
    }

    /// `git archive --format=tar HEAD | tar -x -C out`, in `repo`.
    pub fn archive_to(&self, repo: &Path, out: &Path) {
        std::fs::create_dir_all(out).expect("create out dir");
        let mut archive = self
            .cmd(repo)
            .args(["archive", "--format=tar", "HEAD"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start git archive");
        let tar = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(out)
            .stdin(archive.stdout.take().expect("stdout"))
            .status()
            .expect("run tar");
        let status = archive.wait().expect("wait for git archive");
        assert!(status.success() && tar.success(), "git archive | tar failed");
    }
}

/// `program` with the machine's git configuration kept out.
fn program_cmd(home: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    cmd
}

/// A work repository and the bare repository it publishes to.
pub struct Repo {
    home: PathBuf,
    pub work: PathBuf,
    /// The directory servers export (`<root>/repo.git` is the bare repo).
    pub root: PathBuf,
}

impl Repo {
    /// An empty `main` branch in a work dir under `dir`, published to
    /// `dir/srv/repo.git`.
    pub fn new(dir: &Path) -> Repo {
        let repo = Repo {
            home: dir.to_path_buf(),
            work: dir.join("work"),
            root: dir.join("srv"),
        };
        std::fs::create_dir_all(&repo.root).expect("create server root");
        repo.git_in(dir, &["init", "-q", "-b", "main", "work"]);
        repo.git_in(dir, &["init", "-q", "--bare", "-b", "main", "srv/repo.git"]);
        repo.git(&["remote", "add", "origin", "../srv/repo.git"]);
        repo
    }

    pub fn bare(&self) -> PathBuf {
        self.root.join("repo.git")
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare().display())
    }

    fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        git(&self.home, dir, args)
    }

    /// Run `git ARGS…` in the work dir; its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.work, args)
    }

    /// Write files (path, content) into the work tree.
    pub fn write(&self, files: &[(&str, &str)]) {
        for (path, content) in files {
            let p = self.work.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, content).expect("write");
        }
    }

    /// Commit everything in the work tree; the new commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.rev("HEAD")
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// Run `git ARGS…` in the bare repository (what the servers serve);
    /// its trimmed stdout.
    pub fn served(&self, args: &[&str]) -> String {
        self.git_in(&self.bare(), args)
    }

    /// `path` as the bare repository holds it at `rev`, byte for byte.
    pub fn served_file(&self, rev: &str, path: &str) -> String {
        let mut cmd = git_cmd(&self.home);
        checked(
            cmd.current_dir(self.bare())
                .args(["show", &format!("{rev}:{path}")]),
        )
    }

    /// Make the bare repository's refs equal the work repository's
    /// (forced: history rewrites and deleted refs included).
    pub fn publish(&self) {
        self.git(&["push", "-q", "--force", "--mirror", "origin"]);
    }
}

pub use crate::support::free_port;

/// Poll until something accepts on `port`.
fn wait_for_port(port: u16, child: &mut Child) {
    wait_for(
        Duration::from_secs(20),
        &format!("a listener on port {port}"),
        || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the server exited early: {status}");
            }
            TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        },
    );
}

/// `git daemon` serving a directory on a free port; killed on drop.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
}

impl GitDaemon {
    pub fn start(home: &Path, root: &Path) -> GitDaemon {
        GitDaemon::serve(home, root, &[])
    }

    /// With `extra` arguments, such as `--enable=receive-pack`.
    fn serve(home: &Path, root: &Path, extra: &[&str]) -> GitDaemon {
        let port = free_port();
        // `git daemon` runs `git-daemon` as a child and, killed, would leave
        // it behind: run the daemon program itself.
        let exec_path = git_cmd(home)
            .arg("--exec-path")
            .output()
            .expect("git --exec-path");
        let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_string();
        let child = program_cmd(home, Path::new(&exec_path).join("git-daemon"))
            .args([
                "--reuseaddr",
                &format!("--base-path={}", root.display()),
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
            ])
            .args(extra)
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        // The guard exists before the wait: a daemon that never listens is
        // killed too.
        let mut daemon = GitDaemon { child, port };
        wait_for_port(port, &mut daemon.child);
        daemon
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the HTTP server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Whether the body asked for a pack (`command=fetch` in protocol v2,
    /// `want` lines in v0).
    pub fetch: bool,
}

/// `git http-backend` behind a tiny HTTP/1.1 server (one request per
/// connection). Stopped on drop.
pub struct HttpGit {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: Threaded,
}

impl HttpGit {
    /// Serve `root`; with `auth`, every request needs that user and password.
    pub fn start(home: &Path, root: &Path, auth: Option<(&str, &str)>) -> HttpGit {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let expected = auth.map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())));
        let (home, root, seen2) = (home.to_path_buf(), root.to_path_buf(), seen.clone());
        let server = Threaded::start("http-git", move |conn| {
            let (home, root, expected, seen) = (home.clone(), root.clone(), expected.clone(), seen2.clone());
            std::thread::spawn(move || {
                let _ = serve(conn, &home, &root, expected.as_deref(), &seen);
            });
        });
        HttpGit {
            port: server.port,
            seen,
            _server: server,
        }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }

    /// The requests seen so far; cleared.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

fn serve(
    conn: TcpStream,
    home: &Path,
    root: &Path,
    expected_auth: Option<&str>,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let req = read_request(&conn)?;
    let (method, target, body) = (req.method.clone(), req.target.clone(), req.body.clone());
    let header = |name: &str| req.header(name).map(str::to_string);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let plain = if header("content-encoding").is_some_and(|e| e.contains("gzip")) {
        let mut d = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut d)?;
        d
    } else {
        body.clone()
    };
    let text = String::from_utf8_lossy(&plain);
    seen.lock().expect("lock").push(Seen {
        method: method.clone(),
        path: path.to_string(),
        fetch: text.contains("command=fetch") || text.contains("want "),
    });

    if let Some(expected) = expected_auth
        && header("authorization").as_deref() != Some(expected)
    {
        let headers = [
            "WWW-Authenticate: Basic realm=\"git\"",
            "Content-Type: text/plain",
        ]
        .map(String::from);
        return respond(&conn, "401 Unauthorized", &headers, b"authentication required\n");
    }

    let mut cmd = git_cmd(home);
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", if expected_auth.is_some() { "user" } else { "" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = header("git-protocol") {
        cmd.env("GIT_PROTOCOL", &p).env("HTTP_GIT_PROTOCOL", p);
    }
    if let Some(e) = header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output()?;
    let _ = writer.join();
    let raw = output.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, cgi_body) = match split {
        Some((i, n)) => (String::from_utf8_lossy(&raw[..i]).into_owned(), &raw[i + n..]),
        None => (String::new(), &raw[..]),
    };
    let mut status = "200 OK".to_string();
    let mut response = Vec::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            Some(_) => response.push(h.trim_end().to_string()),
            None => {}
        }
    }
    respond(&conn, &status, &response, cgi_body)
}

/// `git daemon` serving `root` with `receive-pack` enabled (pushes
/// allowed to every repository under it); killed on drop.
pub fn git_daemon_with_receive_pack(home: &Path, root: &Path) -> GitDaemon {
    GitDaemon::serve(home, root, &["--enable=receive-pack"])
}

const SSHD: &str = "/usr/sbin/sshd";

/// A fresh ed25519 key pair `dir/name` and `dir/name.pub`.
pub fn keygen(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    tool(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path),
    )?;
    Ok(path)
}

/// The `type base64` part of a public key file.
pub fn public_key(private: &Path) -> String {
    let text = std::fs::read_to_string(private.with_extension("pub")).expect("read public key");
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// `/usr/sbin/sshd -D -e` on a free loopback port (git over ssh: the
/// server runs `git-upload-pack` and `git-receive-pack` from its PATH),
/// logging in the user the tests run as with a key of its own; killed on
/// drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub user: String,
    pub log: PathBuf,
    /// The client key the server accepts.
    pub key: PathBuf,
    /// A client key the server does not know.
    pub wrong_key: PathBuf,
    /// known_hosts vouching for this server's host key.
    pub known_hosts: PathBuf,
    /// known_hosts giving another host key for the same `[127.0.0.1]:PORT`.
    pub wrong_known_hosts: PathBuf,
}

impl Sshd {
    /// Start a server with keys and config under `dir`; `Err` says why
    /// sshd cannot run on this machine.
    pub fn start(dir: &Path) -> Result<Sshd, String> {
        if !Path::new(SSHD).is_file() {
            return Err(format!("{SSHD} is not installed"));
        }
        tool(Command::new("ssh").arg("-V"))?;
        std::fs::create_dir_all(dir).expect("create ssh dir");
        // sshd refuses to start without its privilege separation directory.
        let privsep = Path::new("/run/sshd");
        if !privsep.is_dir() {
            std::fs::create_dir_all(privsep)
                .map_err(|e| format!("cannot create {}: {e}", privsep.display()))?;
        }
        let user = tool(Command::new("id").arg("-un"))?;
        let host_key = keygen(dir, "hostkey")?;
        let other_host_key = keygen(dir, "other-hostkey")?;
        let key = keygen(dir, "client")?;
        let wrong_key = keygen(dir, "wrong-client")?;
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, format!("{}\n", public_key(&key))).expect("write authorized_keys");
        let log = dir.join("sshd.log");

        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let config = dir.join("sshd_config");
            let mut text = format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {}\n\
                 AuthorizedKeysFile {}\n\
                 PidFile {}\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 AuthenticationMethods publickey\n\
                 PermitRootLogin prohibit-password\n\
                 PermitUserEnvironment no\n\
                 AllowUsers {user}\n\
                 AcceptEnv GIT_PROTOCOL\n\
                 LogLevel VERBOSE\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display(),
            );
            // Newer sshd (9.8+) blocks a source address after failed
            // logins; the tests fail logins on purpose, then log in again.
            let with_penalties = format!("{text}PerSourcePenalties no\n");
            std::fs::write(&config, &with_penalties).expect("write sshd_config");
            let check = Command::new(SSHD).arg("-t").arg("-f").arg(&config).output();
            if check.is_ok_and(|o| o.status.success()) {
                text = with_penalties;
            } else {
                std::fs::write(&config, &text).expect("write sshd_config");
            }
            let check = Command::new(SSHD)
                .arg("-t")
                .arg("-f")
                .arg(&config)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e}"));
            assert!(
                check.status.success(),
                "sshd rejects the test's config:\n{text}\n{}",
                String::from_utf8_lossy(&check.stderr)
            );

            let log_file = std::fs::File::create(&log).expect("create sshd log");
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(20);
            let listening = loop {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                    break true;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd does not listen on port {port} after 20s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            if listening {
                let host_line = |k: &Path| format!("[127.0.0.1]:{port} {}\n", public_key(k));
                let known_hosts = dir.join("known_hosts");
                std::fs::write(&known_hosts, host_line(&host_key)).expect("write known_hosts");
                let wrong_known_hosts = dir.join("wrong_known_hosts");
                std::fs::write(&wrong_known_hosts, host_line(&other_host_key)).expect("write known_hosts");
                return Ok(Sshd {
                    child,
                    port,
                    user,
                    log,
                    key,
                    wrong_key,
                    known_hosts,
                    wrong_known_hosts,
                });
            }
            let _ = child.wait();
            last = std::fs::read_to_string(&log).unwrap_or_default();
            // Another process took the port between free_port() and sshd's bind.
            if !last.contains("Address already in use") {
                break;
            }
        }
        panic!("sshd exited at start:\n{last}");
    }

    pub fn url(&self, repo: &Path) -> String {
        format!("ssh://{}@127.0.0.1:{}{}", self.user, self.port, repo.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many logins the server has accepted so far.
    pub fn logins(&self) -> usize {
        self.log().matches("Accepted publickey for").count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
