//! Loopback servers for tests. [`Background`]: a server on its own thread
//! with its own current-thread tokio runtime, stopped (its runtime and open
//! connections dropped) when dropped; [`http`], such a server answering
//! every request with one handler (the test API server, the recorder, the
//! TLS front run on them). [`Threaded`]: a blocking accept loop on its own
//! thread (the git HTTP server, the static file server, the proxies), with
//! [`read_request`] and [`respond`] for one HTTP/1.1 exchange a
//! connection.

use std::future::Future;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};

/// A server on `127.0.0.1:port`; stops when dropped.
pub struct Background {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Bind a free loopback port and run `serve(listener)` on a thread
    /// named `name` until dropped.
    pub fn start<F, Fut>(name: &str, serve: F) -> Background
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {name}: {e}"));
        Background::run(name, listener, serve)
    }

    fn run<F, Fut>(name: &str, listener: std::net::TcpListener, serve: F) -> Background
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        () = serve(listener) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime ends the open connections' tasks.
            })
            .unwrap_or_else(|e| panic!("spawn the {name} thread: {e}"));
        Background {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One HTTP request as received.
pub struct Incoming {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    /// The value of header `name`, empty if absent or not text.
    pub fn header(&self, name: impl axum::http::header::AsHeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

/// An HTTP/1.1 server answering every request with `handle(state,
/// request)`, its state made by `state(port)`; the server and the state.
pub fn http<S, F, Fut>(name: &str, state: impl FnOnce(u16) -> S, handle: F) -> (Background, S)
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, Incoming) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = axum::response::Response> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {name}: {e}"));
    let port = listener.local_addr().expect("local address").port();
    let state = state(port);
    let shared = state.clone();
    let app =
        axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (handle, state) = (handle.clone(), shared.clone());
            async move {
                let req = Incoming {
                    method,
                    uri,
                    headers,
                    body,
                };
                handle(state, req).await
            }
        });
    let what = name.to_string();
    let server = Background::run(name, listener, move |listener| async move {
        if let Err(e) = axum::serve(listener, app).await {
            panic!("serve {what}: {e}");
        }
    });
    (server, state)
}

/// Lock `m`, even after a thread panicked holding it (a failed test's
/// server must still answer the next assertion's question).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking accept loop on a loopback port, on its own thread:
/// `handle(connection)` on that thread for each one (spawn a thread for
/// long work). Stops and joins when dropped.
pub struct Threaded {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Threaded {
    pub fn start(name: &str, mut handle: impl FnMut(TcpStream) + Send + 'static) -> Threaded {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {name}: {e}"));
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{port}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        handle(conn);
                    }
                }
            })
            .unwrap_or_else(|e| panic!("spawn the {name} thread: {e}"));
        Threaded {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One HTTP/1.1 request as read by [`read_request`].
pub struct Request1 {
    pub method: String,
    /// The path and query.
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    /// With chunked transfer encoding undone.
    pub body: Vec<u8>,
}

impl Request1 {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read one request from `conn`: the request line, the headers, and a body
/// of `Content-Length` bytes or in chunks.
pub fn read_request(conn: &TcpStream) -> std::io::Result<Request1> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut req = Request1 {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        req.body.resize(len, 0);
        reader.read_exact(&mut req.body)?;
    }
    Ok(req)
}

/// Answer with `status` (`"200 OK"`), `headers` (whole lines) and `body`,
/// then close.
pub fn respond(mut out: &TcpStream, status: &str, headers: &[String], body: &[u8]) -> std::io::Result<()> {
    write!(out, "HTTP/1.1 {status}\r\n")?;
    for h in headers {
        write!(out, "{h}\r\n")?;
    }
    write!(out, "Content-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    out.write_all(body)?;
    out.flush()
}
