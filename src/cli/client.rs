//! `mooring status`, `mooring events` and `mooring reconcile`: clients of
//! a running agent's HTTP API ([`super::status`] renders what they get). The address comes from `--addr`, else `$MOORING_ADDR`, else the
//! `listen` of the config file (when one is found), else 127.0.0.1:9797.

use super::Exit;
use std::io::IsTerminal as _;
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
        .unwrap_or(config::Settings::default().listen);
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

/// `GET /api/status`: the body, and the report it holds.
fn fetch(addr: &str) -> Result<(String, Report), Exit> {
    let client = client()?;
    let url = format!("http://{addr}/api/status");
    let response = client.get(&url).send().and_then(|r| r.error_for_status());
    let body = match response.and_then(|r| r.text()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot get the status from {url}: {}", without_url(&e));
            eprintln!("  help: is `mooring run` running? Pass --addr HOST:PORT or -c FILE to find it");
            return Err(Exit::Error);
        }
    };
    match serde_json::from_str::<Report>(&body) {
        Ok(report) => Ok((body, report)),
        Err(e) => {
            eprintln!("error: {url} answered something that is not a mooring status: {e}");
            Err(Exit::Error)
        }
    }
}

/// The object `target` of `report`, or the error that says it has none.
fn find<'r>(report: &'r Report, (kind, name): &(Kind, String)) -> Result<&'r ObjectStatus, Exit> {
    if let Some(o) = report.objects.iter().find(|o| o.kind == *kind && o.name == *name) {
        return Ok(o);
    }
    let names = report
        .objects
        .iter()
        .filter(|o| o.kind == *kind)
        .map(|o| o.name.as_str());
    let hint = config::value::suggest(name, names)
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default();
    eprintln!("error: the agent runs no {kind} named \"{name}\"{hint}");
    Err(Exit::Failure)
}

fn style() -> super::status::Style {
    super::status::Style::new(super::colour(std::io::stdout().is_terminal()))
}

/// `mooring status [KIND/NAME]`.
pub fn status(addr: &str, target: Option<&(Kind, String)>, json: bool) -> Exit {
    let (body, report) = match fetch(addr) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let now = jiff::Timestamp::now();
    let Some(target) = target else {
        if json {
            println!("{}", body.trim_end());
        } else {
            print!("{}", super::status::table(&report, now, style()));
        }
        return Exit::Success;
    };
    let object = match find(&report, target) {
        Ok(o) => o,
        Err(code) => return code,
    };
    if json {
        // As served, fields this client does not know included.
        let all: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let served = all["objects"]
            .as_array()
            .and_then(|objects| {
                objects
                    .iter()
                    .find(|o| o["kind"] == object.kind.as_str() && o["name"] == object.name.as_str())
            })
            .cloned()
            .unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&served).unwrap_or_default());
    } else {
        print!("{}", super::status::detail(object, now, style()));
    }
    Exit::Success
}

/// `mooring events [KIND/NAME]`.
pub fn events(addr: &str, target: Option<&(Kind, String)>, json: bool) -> Exit {
    let (_, report) = match fetch(addr) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let objects: Vec<&ObjectStatus> = match target {
        Some(t) => match find(&report, t) {
            Ok(o) => vec![o],
            Err(code) => return code,
        },
        None => report.objects.iter().collect(),
    };
    let events = super::status::events(&objects);
    if json {
        super::print_json_list(&events);
    } else {
        print!(
            "{}",
            super::status::events_table(&events, jiff::Timestamp::now(), style())
        );
    }
    Exit::Success
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
