//! A loopback HTTP server that records every request (method, path with
//! query, headers, body) and answers as the test says: with a canned
//! reply (optionally late), or by forwarding to another server — a
//! recording proxy that can inject faults (500, 429 with `Retry-After`)
//! in front of a real one. Runs on its own thread; stops when dropped.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// How to answer a request.
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// Wait this long before answering.
        delay: Duration,
    },
    /// Pass the request on to `http://HOST:PORT` and relay the answer.
    Forward(String),
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).expect("JSON"),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn after(mut self, wait: Duration) -> Reply {
        if let Reply::Answer { delay, .. } = &mut self {
            *delay = wait;
        }
        self
    }
}

type Respond = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    respond: Mutex<Arc<Respond>>,
    client: reqwest::Client,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct HttpRecorder {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpRecorder {
    /// Answer each request with `respond(request, its index among all)`.
    pub fn start(respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> HttpRecorder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            respond: Mutex::new(Arc::new(respond)),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback(serve).with_state(shared.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    r = axum::serve(listener, app) => r.expect("serve"),
                    _ = stopped => {}
                }
            });
        });
        HttpRecorder {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answer from now on as `respond` says.
    pub fn respond(&self, respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) {
        *lock(&self.shared.respond) = Arc::new(respond);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// Poll until `pred` holds for the requests so far, at most `within`.
    #[track_caller]
    pub fn wait(&self, within: Duration, what: &str, pred: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.requests();
            if pred(&all) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {what}; requests so far: {:#?}",
                all.iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, String::from_utf8_lossy(&r.body)))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    };
    let index = {
        let mut all = lock(&shared.requests);
        all.push(recorded.clone());
        all.len() - 1
    };
    let respond = lock(&shared.respond).clone();
    match respond(&recorded, index) {
        Reply::Answer {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut res = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    axum::http::HeaderValue::from_str(&v),
                ) {
                    res.headers_mut().insert(k, v);
                }
            }
            res
        }
        Reply::Forward(base) => {
            let mut req = shared
                .client
                .request(method, format!("{base}{}", recorded.path))
                .body(body);
            for (k, v) in &headers {
                if k != axum::http::header::HOST {
                    req = req.header(k, v);
                }
            }
            match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    let headers = res.headers().clone();
                    let body = res.bytes().await.unwrap_or_default();
                    let mut out = (status, body).into_response();
                    for (k, v) in &headers {
                        if k != axum::http::header::TRANSFER_ENCODING
                            && k != axum::http::header::CONTENT_LENGTH
                        {
                            out.headers_mut().insert(k, v.clone());
                        }
                    }
                    out
                }
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
            }
        }
    }
}
