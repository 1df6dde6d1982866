//! What `mooring status` and `mooring events` print of a running agent's
//! status ([`Report`], as `/api/status` serves it): the table of every
//! object, one object in full, and the objects' events. Colour (the state,
//! an event's reason, headings) only when asked for: when standard output
//! is a terminal and `NO_COLOR` is unset or empty.

use std::fmt::Write as _;

use serde::Serialize;

use crate::agent::status::{Event, ObjectStatus, Report, State};
use crate::config::Kind;
use crate::reason::Reason;

/// ANSI styles, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colour: bool,
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl Style {
    pub fn new(colour: bool) -> Style {
        Style { colour }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour && !code.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

fn state_style(state: State) -> &'static str {
    match state {
        State::Ready => GREEN,
        State::Failed | State::Stalled => RED,
        State::Waiting | State::Reconciling => YELLOW,
        State::Suspended => BLUE,
        State::Pending => DIM,
    }
}

fn reason_style(reason: &str) -> &'static str {
    let waiting = [
        Reason::ArtifactNotReady,
        Reason::DependencyNotReady,
        Reason::Standby,
    ];
    if reason == Reason::Succeeded.as_str() {
        GREEN
    } else if reason == Reason::Suspended.as_str() || reason == crate::agent::RESUMED {
        BLUE
    } else if waiting.iter().any(|w| w.as_str() == reason) {
        YELLOW
    } else {
        RED
    }
}

/// A cell of a table and how to paint it.
struct Cell {
    text: String,
    style: &'static str,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, style: "" }
    }
}

/// Columns aligned on their widest cell; the last one is not padded.
fn grid(out: &mut String, style: Style, header: &[&str], rows: Vec<Vec<Cell>>) {
    let header: Vec<Cell> = header
        .iter()
        .map(|h| Cell {
            text: h.to_string(),
            style: BOLD,
        })
        .collect();
    let mut widths = vec![0usize; header.len()];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.text.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let text = if i + 1 == row.len() {
                cell.text.clone()
            } else {
                let w = widths[i];
                format!("{:<w$}  ", cell.text)
            };
            // Painted after padding: escape codes take no room.
            let trimmed = text.trim_end();
            line.push_str(&style.paint(cell.style, trimmed));
            line.push_str(&text[trimmed.len()..]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `mooring status`: a header, then one row per object.
pub fn table(r: &Report, now: jiff::Timestamp, style: Style) -> String {
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
    if let Some(le) = &r.leader_election {
        let _ = writeln!(
            out,
            "{} of lease {} for {}{}",
            le.role.as_str(),
            le.lease,
            human(now.duration_since(le.since)),
            le.holder
                .as_deref()
                .filter(|h| *h != le.identity)
                .map(|h| format!(" (held by {h})"))
                .unwrap_or_default()
        );
        if !le.shards.is_empty() {
            let mine: Vec<String> = (0..le.shards.len())
                .filter(|&i| le.shards[i].mine)
                .map(|i| i.to_string())
                .collect();
            let free = le.shards.iter().filter(|s| s.holder.is_none()).count();
            let _ = writeln!(
                out,
                "shards: {} of {} here ({}) · {free} free · {} live replicas",
                mine.len(),
                le.shards.len(),
                if mine.is_empty() {
                    "none".to_string()
                } else {
                    mine.join(" ")
                },
                le.replicas.unwrap_or(1)
            );
        }
    }
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
    let rows = r.objects.iter().map(|o| row(o, now)).collect();
    grid(
        &mut out,
        style,
        &["KIND", "NAME", "STATE", "REVISION", "NEXT", "MESSAGE"],
        rows,
    );
    out
}

fn row(o: &ObjectStatus, now: jiff::Timestamp) -> Vec<Cell> {
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
            let reason = o.reason.as_deref().filter(|r| *r != Reason::Succeeded.as_str());
            let text = o.message.clone().unwrap_or_default();
            match reason {
                Some(r) => format!("{r}: {text}"),
                None => text,
            }
        }
    };
    vec![
        o.kind.to_string().into(),
        o.name.clone().into(),
        Cell {
            text: o.state.as_str().to_string(),
            style: state_style(o.state),
        },
        revision.into(),
        next.into(),
        message.into(),
    ]
}

/// `mooring status KIND/NAME`: every field of one object, then its events.
pub fn detail(o: &ObjectStatus, now: jiff::Timestamp, style: Style) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let state = match &o.reason {
        Some(r) => format!("{} ({r})", o.state.as_str()),
        None => o.state.as_str().to_string(),
    };
    fields.push(("state", style.paint(state_style(o.state), &state)));
    let mut field = |name, value: Option<String>| {
        if let Some(v) = value {
            fields.push((name, v));
        }
    };
    let when = |t: Option<jiff::Timestamp>, rel: fn(jiff::Timestamp, jiff::Timestamp) -> String| {
        t.map(|t| format!("{t} ({})", rel(t, now)))
    };
    field("message", o.message.clone());
    field("last error", o.last_error.clone());
    field("trigger", o.trigger.map(|t| t.as_str().to_string()));
    field("revision", o.revision.clone());
    field("inputs", (!o.inputs.is_empty()).then(|| o.inputs.join(", ")));
    field(
        "suspended",
        o.suspended.as_ref().map(|s| {
            let mut m = s.reason.clone().unwrap_or_else(|| "(no reason given)".into());
            if let Some(u) = s.until {
                m.push_str(&format!(" (until {u})"));
            }
            m
        }),
    );
    field("last run", when(o.last_run, ago));
    field("last success", when(o.last_success, ago));
    field("next run", when(o.next_run, until));
    field("failures", Some(o.failures.to_string()));
    field("runs", Some(o.runs.to_string()));
    field("generation", Some(o.generation.to_string()));
    field("applied", o.applied.as_ref().map(|a| a.to_string()));
    field(
        "artifact",
        o.artifact
            .as_ref()
            .map(|a| format!("{} ({})", a.path, a.checksum)),
    );
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.paint(BOLD, &format!("{}/{}", o.kind, o.name)));
    let width = fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, value) in &fields {
        let _ = writeln!(out, "  {name:<width$}  {value}");
    }
    if !o.clusters.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", style.paint(BOLD, "Clusters:"));
        let mut table = String::new();
        let rows = o
            .clusters
            .iter()
            .map(|c| {
                let name = if c.dropped {
                    format!("{} (dropped)", c.shown())
                } else {
                    c.shown().to_string()
                };
                vec![
                    name.into(),
                    Cell {
                        text: c.state.as_str().to_string(),
                        style: state_style(c.state),
                    },
                    c.revision.as_deref().map_or("-".into(), short_revision).into(),
                    c.message.clone().unwrap_or_default().into(),
                ]
            })
            .collect();
        grid(
            &mut table,
            style,
            &["CLUSTER", "STATE", "REVISION", "MESSAGE"],
            rows,
        );
        for line in table.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", style.paint(BOLD, "Events:"));
    if o.events.is_empty() {
        let _ = writeln!(out, "  (none yet)");
    } else {
        let mut table = String::new();
        let rows = o.events.iter().map(|e| event_row(e, None, now)).collect();
        grid(
            &mut table,
            style,
            &["LAST SEEN", "REASON", "TRIGGER", "COUNT", "MESSAGE"],
            rows,
        );
        for line in table.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// One event of `mooring events --format json`: the object's event with
/// its kind and name.
#[derive(Debug, Serialize)]
pub struct Listed<'a> {
    pub kind: Kind,
    pub name: &'a str,
    #[serde(flatten)]
    pub event: &'a Event,
}

/// The events of `objects`, oldest first (by when each last happened).
pub fn events<'a>(objects: &[&'a ObjectStatus]) -> Vec<Listed<'a>> {
    let mut all: Vec<Listed> = objects
        .iter()
        .flat_map(|o| {
            o.events.iter().map(|e| Listed {
                kind: o.kind,
                name: &o.name,
                event: e,
            })
        })
        .collect();
    all.sort_by_key(|l| l.event.last_seen());
    all
}

/// `mooring events`: one row per event.
pub fn events_table(events: &[Listed], now: jiff::Timestamp, style: Style) -> String {
    let mut out = String::new();
    if events.is_empty() {
        let _ = writeln!(out, "no events yet");
        return out;
    }
    let rows = events
        .iter()
        .map(|l| event_row(l.event, Some(format!("{}/{}", l.kind, l.name)), now))
        .collect();
    grid(
        &mut out,
        style,
        &["LAST SEEN", "OBJECT", "REASON", "TRIGGER", "COUNT", "MESSAGE"],
        rows,
    );
    out
}

fn event_row(e: &Event, object: Option<String>, now: jiff::Timestamp) -> Vec<Cell> {
    let mut row: Vec<Cell> = vec![ago(e.last_seen(), now).into()];
    row.extend(object.map(Cell::from));
    let message = match &e.revision {
        Some(r) if !e.message.contains(r.as_str()) => format!("{} [{}]", e.message, short_revision(r)),
        _ => e.message.clone(),
    };
    row.extend([
        Cell {
            text: e.reason.clone(),
            style: reason_style(&e.reason),
        },
        e.trigger
            .map(|t| t.as_str().to_string())
            .unwrap_or_default()
            .into(),
        e.count.to_string().into(),
        message.into(),
    ]);
    row
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::status::Trigger;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).expect("time")
    }

    fn object() -> ObjectStatus {
        let mut o = ObjectStatus::new(Kind::App, "web", 2);
        o.state = State::Failed;
        o.reason = Some("RenderFailed".into());
        o.message = Some("web/cm.yaml:4:9: bad".into());
        o.last_error = o.message.clone();
        o.revision = Some("main@sha1:0123456789abcdef0123".into());
        o.inputs = vec!["source/repo".into()];
        o.last_run = Some(at(-5));
        o.next_run = Some(at(55));
        o.failures = 1;
        o.runs = 3;
        o.trigger = Some(Trigger::Input);
        o.record(Event::new(
            at(-100),
            "Succeeded",
            "applied",
            Some("main@sha1:aaaa".into()),
            Some(Trigger::Config),
        ));
        o.record(Event::new(
            at(-10),
            "RenderFailed",
            "web/cm.yaml:4:9: bad",
            None,
            Some(Trigger::Input),
        ));
        o.record(Event::new(
            at(-5),
            "RenderFailed",
            "web/cm.yaml:4:9: bad",
            None,
            Some(Trigger::Timer),
        ));
        o
    }

    #[test]
    fn one_object_in_full_with_its_events() {
        let text = detail(&object(), at(0), Style::new(false));
        assert_eq!(
            text,
            "app/web
  state       failed (RenderFailed)
  message     web/cm.yaml:4:9: bad
  last error  web/cm.yaml:4:9: bad
  trigger     input
  revision    main@sha1:0123456789abcdef0123
  inputs      source/repo
  last run    2027-01-15T07:59:55Z (5s ago)
  next run    2027-01-15T08:00:55Z (in 55s)
  failures    1
  runs        3
  generation  2

Events:
  LAST SEEN  REASON        TRIGGER  COUNT  MESSAGE
  1m40s ago  Succeeded     config   1      applied [main@sha1:aaaa]
  5s ago     RenderFailed  timer    2      web/cm.yaml:4:9: bad
"
        );
    }

    #[test]
    fn colour_paints_the_state_and_keeps_columns_aligned() {
        let mut r = Report {
            version: "0.1.0".into(),
            config: "m.kdl".into(),
            generation: 1,
            started: at(-60),
            last_reload: crate::agent::status::Reload {
                result: "ok".into(),
                at: at(-60),
                diagnostics: None,
                problems: None,
                restart_needed: Vec::new(),
            },
            leader_election: None,
            objects: vec![object()],
            receivers: Vec::new(),
            notifications: Vec::new(),
        };
        let mut ready = ObjectStatus::new(Kind::Source, "repo", 1);
        ready.state = State::Ready;
        r.objects.insert(0, ready);
        let plain = table(&r, at(0), Style::new(false));
        let coloured = table(&r, at(0), Style::new(true));
        assert!(coloured.contains("repo  \x1b[32mready\x1b[0m\n"), "{coloured:?}");
        assert!(coloured.contains("\x1b[31mfailed\x1b[0m  main@"), "{coloured:?}");
        let stripped = coloured
            .replace(GREEN, "")
            .replace(RED, "")
            .replace(BOLD, "")
            .replace(RESET, "");
        assert_eq!(stripped, plain);
        assert!(!plain.contains('\x1b'));
    }

    #[test]
    fn an_app_on_clusters_lists_each() {
        use crate::agent::status::ClusterStatus;
        let mut o = object();
        let cluster = |name: &str, state, dropped, message: &str| ClusterStatus {
            cluster: Some(name.into()),
            state,
            revision: Some("main@sha1:0123456789abcdef0123".into()),
            message: Some(message.into()),
            applied: None,
            last_error: None,
            dropped,
        };
        o.clusters = vec![
            cluster("new", State::Failed, false, "refused"),
            cluster("old", State::Waiting, true, "left as it is"),
        ];
        let text = detail(&o, at(0), Style::new(false));
        assert!(
            text.contains(
                "Clusters:
  CLUSTER        STATE    REVISION                MESSAGE
  new            failed   main@sha1:0123456789ab  refused
  old (dropped)  waiting  main@sha1:0123456789ab  left as it is
"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&o).expect("json");
        assert_eq!(json["clusters"][1]["dropped"], true);
        assert_eq!(json["clusters"][0].get("dropped"), None);
    }

    #[test]
    fn events_of_all_objects_oldest_first() {
        let mut other = ObjectStatus::new(Kind::Source, "repo", 1);
        other.record(Event::new(
            at(-50),
            "FetchFailed",
            "no route",
            None,
            Some(Trigger::Timer),
        ));
        let web = object();
        let listed = events(&[&web, &other]);
        assert_eq!(
            events_table(&listed, at(0), Style::new(false)),
            "LAST SEEN  OBJECT       REASON        TRIGGER  COUNT  MESSAGE
1m40s ago  app/web      Succeeded     config   1      applied [main@sha1:aaaa]
50s ago    source/repo  FetchFailed   timer    1      no route
5s ago     app/web      RenderFailed  timer    2      web/cm.yaml:4:9: bad
"
        );
        let json = serde_json::to_value(&listed[1]).expect("json");
        assert_eq!(json["kind"], "source");
        assert_eq!(json["name"], "repo");
        assert_eq!(json["reason"], "FetchFailed");
        assert_eq!(json["count"], 1);
    }
}
