//! The status page at `/`: one HTML document, a stylesheet and a script,
//! embedded in the binary (no framework, nothing fetched from elsewhere),
//! and `/api/graph`, the config's [`Graph`] laid out in columns for the
//! page to draw. The script polls `/api/status` and builds the page with
//! DOM calls only: names, messages and errors come from the config and the
//! cluster and are hostile, so they only ever become text nodes. The
//! headers forbid inline script, framing and every origin but the agent's.
//! Actions (reconcile now) POST to the API with the bearer token the user
//! typed, kept in the tab's sessionStorage, never in a URL.

use std::collections::HashMap;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::agent::Agent;
use crate::config::Kind;
use crate::config::diff::Key;
use crate::config::graph::Graph;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");
const ICON: &str = include_str!("icon.svg");

/// What the browser may do with the page: scripts, styles and requests
/// to this origin only; no inline script, no plugins, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`.
pub async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

/// `GET /page/{file}`: the script, the stylesheet and the icon.
pub async fn file(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "page.js" => asset(SCRIPT, "text/javascript; charset=utf-8"),
        "page.css" => asset(STYLE, "text/css; charset=utf-8"),
        "icon.svg" => asset(ICON, "image/svg+xml"),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files change only with the binary; revalidating costs nothing.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /api/graph`.
pub fn graph(agent: &Agent) -> Response {
    let cfg = agent.config();
    let mut laid = layout(&Graph::of(&cfg));
    laid.generation = agent.generation();
    axum::Json(laid).into_response()
}

/// The graph as the page draws it: every object in a column (`layer`: one
/// more than the deepest of its inputs, so every edge points right) and a
/// row within it, and the edges input → reader as indexes into `nodes`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Layout {
    pub generation: u64,
    pub nodes: Vec<Node>,
    pub edges: Vec<[usize; 2]>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub name: String,
    pub layer: usize,
    pub row: usize,
}

pub fn layout(graph: &Graph) -> Layout {
    let keys = graph.keys();
    let index: HashMap<&Key, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let inputs: Vec<Vec<usize>> = keys
        .iter()
        .map(|k| graph.inputs(k).filter_map(|i| index.get(i).copied()).collect())
        .collect();
    // Longest path from an object without inputs. The config forbids
    // cycles; should one slip through, a node's depth stops at the number
    // of nodes instead of growing for ever.
    let mut layer = vec![0usize; keys.len()];
    for _ in 0..keys.len() {
        let mut changed = false;
        for (i, ins) in inputs.iter().enumerate() {
            let want = ins
                .iter()
                .map(|&j| layer[j] + 1)
                .max()
                .unwrap_or(0)
                .min(keys.len());
            if want > layer[i] {
                layer[i] = want;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Rows: column by column, each object near the mean row of its inputs
    // (so edges run mostly straight), ties in config order.
    let mut row = vec![0usize; keys.len()];
    let columns = layer.iter().max().map_or(0, |m| m + 1);
    for c in 0..columns {
        let mut members: Vec<(f64, usize)> = (0..keys.len())
            .filter(|&i| layer[i] == c)
            .map(|i| {
                let placed: Vec<usize> = inputs[i]
                    .iter()
                    .filter(|&&j| layer[j] < c)
                    .map(|&j| row[j])
                    .collect();
                let mean = if placed.is_empty() {
                    i as f64
                } else {
                    placed.iter().sum::<usize>() as f64 / placed.len() as f64
                };
                (mean, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, (_, i)) in members.into_iter().enumerate() {
            row[i] = r;
        }
    }
    let nodes = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Node {
            kind: k.kind,
            name: k.name.clone(),
            layer: layer[i],
            row: row[i],
        })
        .collect();
    let edges = inputs
        .iter()
        .enumerate()
        .flat_map(|(to, ins)| ins.iter().map(move |&from| [from, to]))
        .collect();
    Layout {
        generation: 0,
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid(text: &str) -> Layout {
        layout(&crate::config::graph::of_text(text))
    }

    fn place(l: &Layout, kind: Kind, name: &str) -> (usize, usize) {
        let n = l
            .nodes
            .iter()
            .find(|n| n.kind == kind && n.name == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} in {l:?}"));
        (n.layer, n.row)
    }

    #[test]
    fn columns_follow_the_longest_path_and_edges_point_right() {
        let l = laid(crate::config::graph::FLEET);
        assert_eq!(place(&l, Kind::Source, "platform"), (0, 0));
        assert_eq!(place(&l, Kind::Source, "other"), (0, 1));
        assert_eq!(place(&l, Kind::Image, "podinfo"), (0, 2));
        assert_eq!(place(&l, Kind::App, "infra").0, 1);
        // web reads platform (column 0) and infra (column 1): column 2.
        assert_eq!(place(&l, Kind::App, "web"), (2, 0));
        assert_eq!(place(&l, Kind::App, "lone").0, 1);
        assert_eq!(place(&l, Kind::Automation, "bump").0, 1);
        assert_eq!(l.edges.len(), 6, "{l:?}");
        for [from, to] in &l.edges {
            assert!(l.nodes[*from].layer < l.nodes[*to].layer, "{l:?}");
        }
        // Rows within a column are distinct.
        let mut seen = std::collections::HashSet::new();
        for n in &l.nodes {
            assert!(seen.insert((n.layer, n.row)), "{l:?}");
        }
    }

    #[test]
    fn readers_sit_near_their_inputs() {
        let l = laid(
            r#"
            source "a" { git "https://example.com/a.git"; }
            source "b" { git "https://example.com/b.git"; }
            app "from-b" { source "b"; target dir="/o/b"; }
            app "from-a" { source "a"; target dir="/o/a"; }
            "#,
        );
        assert_eq!(place(&l, Kind::App, "from-a"), (1, 0));
        assert_eq!(place(&l, Kind::App, "from-b"), (1, 1));
    }

    #[tokio::test]
    async fn assets_carry_a_strict_policy() {
        let r = index().await;
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap_or_default()
                .starts_with("text/html")
        );
        let r = file(Path("page.js".into())).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = file(Path("../Cargo.toml".into())).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    /// The script never hands data to the HTML parser.
    #[test]
    fn the_script_builds_the_dom_without_the_html_parser() {
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!SCRIPT.contains(bad), "page.js uses {bad}");
        }
        assert!(!INDEX.contains("<script>"), "inline script in index.html");
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"));
    }
}
