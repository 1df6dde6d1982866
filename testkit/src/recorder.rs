//! A loopback HTTP server that records every request (method, path with
//! query, headers, body) and answers as the test says: with a canned
//! reply (optionally late), or by forwarding to another server — a
//! recording proxy that can inject faults (500, 429 with `Retry-After`)
//! in front of a real one. Runs on its own thread; stops when dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::server::{self, Background, Incoming, lock};

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

pub struct HttpRecorder {
    pub port: u16,
    shared: Arc<Shared>,
    _server: Background,
}

impl HttpRecorder {
    /// Answer each request with `respond(request, its index among all)`.
    pub fn start(respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> HttpRecorder {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            respond: Mutex::new(Arc::new(respond)),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        });
        let (server, shared) = server::http("recorder", |_| shared, serve);
        HttpRecorder {
            port: server.port,
            shared,
            _server: server,
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
        crate::support::wait_for(within, what, || {
            let all = self.requests();
            if pred(&all) {
                return Ok(all);
            }
            let seen: Vec<String> = all
                .iter()
                .map(|r| format!("{} {} {}", r.method, r.path, String::from_utf8_lossy(&r.body)))
                .collect();
            Err(format!("requests so far: {seen:#?}"))
        })
    }
}

async fn serve(shared: Arc<Shared>, req: Incoming) -> axum::response::Response {
    let Incoming {
        method,
        uri,
        headers,
        body,
    } = req;
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
