//! `mooring status` and `mooring reconcile`: clients of a running agent's
//! HTTP API. The address comes from `--addr`, else `$MOORING_ADDR`, else the
//! `listen` of the config file (when one is found), else 127.0.0.1:9797.

use super::Exit;
use std::path::Path;
use std::time::Duration;

use crate::agent::status::{ObjectStatus, Report};
use crate::config::{self, Kind};

/// Where the agent listens, as a client should dial it.
pub fn address(flag: Option<&str>, config_flag: Option<&Path>) -> String {
    if let Some(a) = flag {
        return a.to_string();
    }
    if let Some(a) = std::env::var("MOORING_ADDR").ok().filter(|a| !a.is_empty()) {
        return a;
    }
    // The file may be broken (that is when status matters most): take
    // `listen` from whatever part of it decodes.
    let path = config::resolve_path(config_flag);
    let listen = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| config::check(&path, text, jiff::Timestamp::now()).0)
        .map(|c| c.agent.listen)
        .unwrap_or(config::Agent::default().listen);
    // An agent listening on every address is reachable on loopback.
    let ip = if listen.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        listen.ip()
    };
    std::net::SocketAddr::new(ip, listen.port()).to_string()
}

fn client() -> Result<reqwest::blocking::Client, Exit> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot build an HTTP client: {e}");
            Exit::Error
        })
}

pub fn status(addr: &str, json: bool) -> Exit {
    let client = match client() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = format!("http://{addr}/api/status");
    let response = client.get(&url).send().and_then(|r| r.error_for_status());
    let body = match response.and_then(|r| r.text()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot get the status from {url}: {}", without_url(&e));
            eprintln!("  help: is `mooring run` running? Pass --addr HOST:PORT or -c FILE to find it");
            return Exit::Error;
        }
    };
    if json {
        println!("{}", body.trim_end());
        return Exit::Success;
    }
    match serde_json::from_str::<Report>(&body) {
        Ok(report) => {
            print!("{}", table(&report, jiff::Timestamp::now()));
            Exit::Success
        }
        Err(e) => {
            eprintln!("error: {url} answered something that is not a mooring status: {e}");
            Exit::Error
        }
    }
}

pub fn reconcile(
    addr: &str,
    kind: Kind,
    name: &str,
    token_file: Option<&Path>,
    config_flag: Option<&Path>,
) -> Exit {
    let client = match client() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let token_file = token_file.map(Path::to_path_buf).or_else(|| {
        let path = config::resolve_path(config_flag);
        let text = std::fs::read_to_string(&path).ok()?;
        config::check(&path, text, jiff::Timestamp::now())
            .0?
            .agent
            .api_token_file
    });
    let mut request = client.post(format!("http://{addr}/api/reconcile/{kind}/{name}"));
    if let Some(file) = token_file {
        match std::fs::read_to_string(&file) {
            Ok(t) => request = request.bearer_auth(t.trim()),
            Err(e) => {
                eprintln!("error: cannot read the API token from {}: {e}", file.display());
                return Exit::Error;
            }
        }
    }
    let response = match request.send() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot reach the agent at {addr}: {}", without_url(&e));
            eprintln!("  help: is `mooring run` running? Pass --addr HOST:PORT or -c FILE to find it");
            return Exit::Error;
        }
    };
    let code = response.status();
    let body: serde_json::Value = response.json().unwrap_or_default();
    if code.is_success() {
        println!("{kind}/{name}: reconcile requested");
        return Exit::Success;
    }
    let msg = body["error"].as_str().unwrap_or("no reason given");
    eprintln!("error: the agent refused ({code}): {msg}");
    if code == reqwest::StatusCode::NOT_FOUND || code == reqwest::StatusCode::CONFLICT {
        Exit::Failure
    } else {
        Exit::Error
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s = format!("{s}: {inner}");
        source = inner.source();
    }
    s
}

/// The human status table.
pub fn table(r: &Report, now: jiff::Timestamp) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mooring {} · {} · generation {} · last reload {} {}",
        r.version,
        r.config,
        r.generation,
        r.last_reload.result,
        ago(r.last_reload.at, now)
    );
    if !r.last_reload.restart_needed.is_empty() {
        let _ = writeln!(
            out,
            "restart needed for: {}",
            r.last_reload.restart_needed.join(", ")
        );
    }
    if let Some(d) = &r.last_reload.diagnostics {
        let _ = writeln!(out);
        for line in d.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out);
    let rows: Vec<[String; 6]> = r.objects.iter().map(|o| row(o, now)).collect();
    let header = ["KIND", "NAME", "STATE", "REVISION", "NEXT", "MESSAGE"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(row) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        line.push_str(&row[5]);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn row(o: &ObjectStatus, now: jiff::Timestamp) -> [String; 6] {
    let revision = o.revision.as_deref().map(short_revision).unwrap_or_default();
    let next = o.next_run.map(|t| until(t, now)).unwrap_or_default();
    let message = match &o.suspended {
        Some(s) => {
            let mut m = s.reason.clone().unwrap_or_else(|| "suspended".into());
            if let Some(u) = s.until {
                m.push_str(&format!(" (until {u})"));
            }
            m
        }
        None => {
            let reason = o
                .reason
                .as_deref()
                .filter(|r| *r != crate::reason::Reason::Succeeded.as_str());
            let text = o.message.clone().unwrap_or_default();
            match reason {
                Some(r) => format!("{r}: {text}"),
                None => text,
            }
        }
    };
    [
        o.kind.to_string(),
        o.name.clone(),
        o.state.as_str().to_string(),
        revision,
        next,
        message,
    ]
}

/// `main@sha1:0123456789ab…` → `main@sha1:0123456789ab`.
fn short_revision(r: &str) -> String {
    match r.split_once(':') {
        Some((head, hash)) if hash.len() > 12 => {
            format!("{head}:{}", hash.chars().take(12).collect::<String>())
        }
        _ => r.to_string(),
    }
}

fn ago(t: jiff::Timestamp, now: jiff::Timestamp) -> String {
    format!("{} ago", human(now.duration_since(t)))
}

fn until(t: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let d = t.duration_since(now);
    if d.is_negative() {
        "now".into()
    } else {
        format!("in {}", human(d))
    }
}

fn human(d: jiff::SignedDuration) -> String {
    let s = d.as_secs().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}
