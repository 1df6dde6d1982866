//! A static file server on loopback (GET only, one request per
//! connection) that wants basic auth or a bearer token: a Helm chart
//! repository as `helm package` and `helm repo index` leave it, served
//! under `/charts/`. Paths with `..` are not served. Stopped on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::server::{Threaded, lock, read_request, respond};
use crate::support::base64;

pub struct StaticServer {
    pub port: u16,
    /// The paths asked for so far.
    seen: Arc<Mutex<Vec<String>>>,
    _server: Threaded,
}

impl StaticServer {
    /// Serve `root` to whoever sends `user`:`password` or `Bearer token`.
    pub fn start(root: &Path, user: &str, password: &str, token: &str) -> StaticServer {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = [
            format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            format!("Bearer {token}"),
        ];
        let (root, seen2) = (root.to_path_buf(), seen.clone());
        let server = Threaded::start("static-http", move |conn| {
            let _ = serve(&conn, &root, &accepted, &seen2);
        });
        StaticServer {
            port: server.port,
            seen,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT/charts`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/charts", self.port)
    }

    /// The paths asked for since the last call.
    pub fn take_seen(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.seen))
    }
}

fn serve(
    conn: &TcpStream,
    root: &Path,
    accepted: &[String],
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let req = read_request(conn)?;
    lock(seen).push(req.target.clone());
    let authorized = req
        .header("authorization")
        .is_some_and(|a| accepted.iter().any(|e| e == a));
    let file: Option<PathBuf> = req
        .target
        .strip_prefix("/charts/")
        .filter(|p| !p.contains(".."))
        .map(|p| root.join(p));
    let (status, body) = match (authorized, file.and_then(|f| std::fs::read(f).ok())) {
        (false, _) => ("401 Unauthorized", b"authentication required\n".to_vec()),
        (true, Some(bytes)) => ("200 OK", bytes),
        (true, None) => ("404 Not Found", b"not found\n".to_vec()),
    };
    respond(conn, status, &[], &body)
}
