//! A loopback server on its own thread with its own current-thread tokio
//! runtime, stopped (its runtime and open connections dropped) when the
//! [`Background`] is dropped; and [`http`], such a server answering every
//! request with one handler. The test API server, the recorder and the TLS
//! front run on it.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

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
