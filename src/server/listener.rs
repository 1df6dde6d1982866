//! Connections on the listener, bounded: anyone who can reach the port
//! must not be able to hold the agent's descriptors or its attention. A
//! client has [`HEADER_TIMEOUT`] to send each request's headers (a new
//! connection and an idle keep-alive alike), at most a share of the open
//! file limit is ever spent on connections, and when that share is full the
//! connection idle the longest is closed to make room for the new one —
//! so a flood of idle connections cannot keep `/healthz` from answering.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Notify;

/// Time to send a request's headers, from the connection's start or the
/// end of the previous response.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most connections ever open at once.
const MAX_CONNECTIONS: usize = 512;

/// Raise the soft limit on open files to the hard limit (systemd and most
/// shells start processes with 1,024); the soft limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// How many connections to allow with `nofile` descriptors: a quarter of
/// them, so that fetches, applies and config reads always find some.
pub fn connection_cap(nofile: u64) -> usize {
    usize::try_from(nofile / 4)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_CONNECTIONS)
}

/// Accept and serve `router` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    cap: usize,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Open::new(cap));
    let mut last_accept_error: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors (or a connection reset before it
                    // was accepted): say so at most once a minute, pause.
                    if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        tracing::warn!("cannot accept a connection: {e}");
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = Open::admit(&open) else {
            continue; // every connection is busy with a request: close this one
        };
        let service = TowerToHyperService::new(router.clone());
        let busy = slot.busy.clone();
        let service = hyper::service::service_fn(move |request| {
            let guard = Busy::enter(&busy);
            let response = hyper::service::Service::call(&service, request);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = slot.close.notified() => {}
            }
            drop(slot);
        });
    }
}

/// The open connections, by the order they were accepted.
struct Open {
    cap: usize,
    next: AtomicUsize,
    conns: Mutex<BTreeMap<usize, Conn>>,
}

#[derive(Clone)]
struct Conn {
    /// Requests in progress on the connection.
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// A connection's place among the open ones, given up when dropped.
struct Slot {
    id: usize,
    open: Arc<Open>,
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

impl Open {
    fn new(cap: usize) -> Open {
        Open {
            cap,
            next: AtomicUsize::new(0),
            conns: Mutex::new(BTreeMap::new()),
        }
    }

    /// A place for a new connection, closing the oldest idle one when all
    /// are taken; `None` when every open connection is serving a request.
    fn admit(open: &Arc<Open>) -> Option<Slot> {
        let mut conns = open.conns.lock().unwrap_or_else(|p| p.into_inner());
        if conns.len() >= open.cap {
            let idle = conns
                .iter()
                .find(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id)?;
            if let Some(evicted) = conns.remove(&idle) {
                evicted.close.notify_one();
            }
        }
        let id = open.next.fetch_add(1, Ordering::SeqCst);
        let conn = Conn {
            busy: Arc::new(AtomicUsize::new(0)),
            close: Arc::new(Notify::new()),
        };
        conns.insert(id, conn.clone());
        Some(Slot {
            id,
            open: open.clone(),
            busy: conn.busy,
            close: conn.close,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut conns = self.open.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.remove(&self.id);
    }
}

/// One request in progress on a connection.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(busy: &Arc<AtomicUsize>) -> Busy {
        busy.fetch_add(1, Ordering::SeqCst);
        Busy(busy.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room() {
        let open = Arc::new(Open::new(2));
        let first = Open::admit(&open).expect("room");
        let second = Open::admit(&open).expect("room");
        let _serving = Busy::enter(&first.busy);
        let third = Open::admit(&open).expect("the idle second one makes room");
        let len = open.conns.lock().unwrap().len();
        assert_eq!(len, 2);
        assert!(!open.conns.lock().unwrap().contains_key(&second.id));
        let _also_serving = Busy::enter(&third.busy);
        assert!(Open::admit(&open).is_none(), "all busy: the new one is refused");
        drop(first);
        assert!(Open::admit(&open).is_some());
    }

    #[test]
    fn the_cap_leaves_most_descriptors_for_the_work() {
        assert_eq!(connection_cap(1024), 256);
        assert_eq!(connection_cap(20), 16);
        assert_eq!(connection_cap(1 << 20), MAX_CONNECTIONS);
    }
}
