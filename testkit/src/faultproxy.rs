//! A TCP proxy on loopback that passes bytes to a real server until told
//! to fail: refuse new connections, cut every open one, or let a set
//! number of the server's bytes through and then cut (a server that dies
//! in the middle of an answer), or the client's (a server that dies while
//! it receives). Threads per connection; stops when dropped.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::server::{Threaded, lock};

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Pass,
    /// Accept, then close at once.
    Refuse,
    /// Pass the first N bytes the server sends on each connection, then
    /// close both sides.
    CutServerAfter(usize),
    /// On connections whose first bytes from the client (up to 512, over
    /// however many reads) hold the text (`git-receive-pack`: a push), pass
    /// those and N more bytes of the client's, then close both sides.
    CutClientAfterIf(&'static str, usize),
}

struct State {
    behaviour: Behaviour,
    open: Vec<TcpStream>,
    /// Connections cut by a `Cut…` behaviour so far.
    cuts: usize,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    _server: Threaded,
}

impl FaultProxy {
    /// A proxy to `127.0.0.1:upstream`, passing everything for now.
    pub fn start(upstream: u16) -> FaultProxy {
        let state = Arc::new(Mutex::new(State {
            behaviour: Behaviour::Pass,
            open: Vec::new(),
            cuts: 0,
        }));
        let st = state.clone();
        let server = Threaded::start("fault-proxy", move |client| {
            let behaviour = lock(&st).behaviour;
            if behaviour == Behaviour::Refuse {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            {
                let mut s = lock(&st);
                for c in [&client, &server] {
                    if let Ok(c) = c.try_clone() {
                        s.open.push(c);
                    }
                }
            }
            let (server_limit, client_limit) = match behaviour {
                Behaviour::CutServerAfter(n) => (Some(Limit::Bytes(n)), None),
                Behaviour::CutClientAfterIf(text, n) => (None, Some(Limit::AfterFirst(text, n))),
                _ => (None, None),
            };
            for (from, to, limit) in [
                (server.try_clone(), client.try_clone(), server_limit),
                (client.try_clone(), server.try_clone(), client_limit),
            ] {
                let (Ok(from), Ok(to)) = (from, to) else { continue };
                let st = st.clone();
                std::thread::spawn(move || pipe(from, to, limit, &st));
            }
        });
        FaultProxy {
            port: server.port,
            state,
            _server: server,
        }
    }

    /// From now on, `behaviour`; open connections are cut unless it is
    /// [`Behaviour::Pass`].
    pub fn set(&self, behaviour: Behaviour) {
        let mut s = lock(&self.state);
        s.behaviour = behaviour;
        if behaviour != Behaviour::Pass {
            for c in s.open.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// How many connections a `Cut…` behaviour has cut.
    pub fn cuts(&self) -> usize {
        lock(&self.state).cuts
    }
}

/// How much of a direction passes.
#[derive(Clone, Copy)]
enum Limit {
    Bytes(usize),
    /// If the first read holds the text: it, then N more bytes.
    AfterFirst(&'static str, usize),
}

/// Copy `from` → `to` within `limit`; then close both.
fn pipe(mut from: TcpStream, mut to: TcpStream, limit: Option<Limit>, state: &Mutex<State>) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(60)));
    let mut passed = 0usize;
    let mut buf = [0u8; 16 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let (mut cap, mut first_if) = match limit {
        Some(Limit::Bytes(n)) => (Some(n), None),
        Some(Limit::AfterFirst(text, more)) => (None, Some((text, more))),
        None => (None, None),
    };
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // The client's first bytes may come in several reads (a pkt-line's
        // length written apart from its text): look at the first 512.
        if let Some((text, more)) = first_if {
            head.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&head).contains(text) {
                cap = Some(passed + n + more);
                first_if = None;
            } else if head.len() >= 512 {
                first_if = None;
            }
        }
        let n = match cap {
            Some(l) if passed + n >= l => {
                let _ = to.write_all(&buf[..l - passed]);
                lock(state).cuts += 1;
                break;
            }
            _ => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        passed += n;
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Cut what is open; the accept loop stops after this.
        self.set(Behaviour::Refuse);
    }
}
