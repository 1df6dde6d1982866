//! The schema and the decoder must describe the same language: the
//! committed schema is what `mooring schema` prints, every node and
//! property it lists is accepted (examples/full.kdl uses them all and is
//! valid), and anything it does not list is rejected.

use std::collections::BTreeSet;
use std::path::Path;

use kdl::{KdlDocument, KdlNode};

use crate::support::{TestEnv, repo_root};

fn committed_schema() -> KdlDocument {
    let text = std::fs::read_to_string(repo_root().join("schema/mooring.kdl-schema")).expect("schema file");
    KdlDocument::parse_v2(&text).expect("the schema is KDL v2")
}

#[test]
fn committed_schema_is_what_mooring_schema_prints() {
    let env = TestEnv::new();
    let run = env.run(&["schema"]);
    run.expect_code(0);
    let committed = std::fs::read_to_string(repo_root().join("schema/mooring.kdl-schema")).unwrap();
    assert!(
        run.stdout == committed,
        "schema/mooring.kdl-schema is stale: run `cargo run -- schema > schema/mooring.kdl-schema`"
    );
}

/// What the schema says may appear at one place in a document.
#[derive(Debug, Default)]
struct Place {
    /// Path of node names from the top, e.g. ["source", "auth"].
    path: Vec<String>,
    props: Vec<String>,
    children: Vec<String>,
    /// Children with free names (`substitute`).
    free_children: bool,
}

/// Walk `node "NAME" { prop "…"; children { node … } }` recursively.
fn places(schema: &KdlDocument) -> Vec<Place> {
    fn walk(node: &KdlNode, path: Vec<String>, out: &mut Vec<Place>) {
        let mut place = Place {
            path: path.clone(),
            ..Place::default()
        };
        let body = node.children().map(|c| c.nodes()).unwrap_or_default();
        for item in body {
            match item.name().value() {
                "prop" => place.props.push(arg(item)),
                "children" => {
                    for child in item.children().map(|c| c.nodes()).unwrap_or_default() {
                        match child.name().value() {
                            "node" if child.entries().iter().any(|e| e.name().is_none()) => {
                                let name = arg(child);
                                place.children.push(name.clone());
                                let mut p = path.clone();
                                p.push(name);
                                walk(child, p, out);
                            }
                            "node" | "node-names" => place.free_children = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(place);
    }
    let doc_node = schema
        .nodes()
        .iter()
        .find(|n| n.name().value() == "document")
        .expect("document node");
    let mut out = Vec::new();
    let mut top = Place::default();
    for n in doc_node.children().map(|c| c.nodes()).unwrap_or_default() {
        if n.name().value() == "node" {
            let name = arg(n);
            top.children.push(name.clone());
            walk(n, vec![name], &mut out);
        }
    }
    out.push(top);
    out
}

fn arg(node: &KdlNode) -> String {
    node.entries()
        .iter()
        .find(|e| e.name().is_none())
        .and_then(|e| e.value().as_string())
        .unwrap_or_default()
        .to_string()
}

/// Every node path and `path@prop` used in a document.
fn used(doc: &KdlDocument) -> BTreeSet<String> {
    fn walk(nodes: &[KdlNode], prefix: &str, out: &mut BTreeSet<String>) {
        for n in nodes {
            let path = if prefix.is_empty() {
                n.name().value().to_string()
            } else {
                format!("{prefix}/{}", n.name().value())
            };
            for e in n.entries() {
                if let Some(k) = e.name() {
                    out.insert(format!("{path}@{}", k.value()));
                }
            }
            out.insert(path.clone());
            if let Some(c) = n.children() {
                walk(c.nodes(), &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(doc.nodes(), "", &mut out);
    out
}

fn full_example() -> (String, KdlDocument) {
    let text = std::fs::read_to_string(repo_root().join("examples/full.kdl")).expect("examples/full.kdl");
    let doc = KdlDocument::parse_v2(&text).expect("full.kdl is KDL v2");
    (text, doc)
}

#[test]
fn full_example_uses_everything_the_schema_lists() {
    let (_, doc) = full_example();
    let used = used(&doc);
    let mut missing = Vec::new();
    for place in places(&committed_schema()) {
        let base = place.path.join("/");
        for child in &place.children {
            let p = if base.is_empty() {
                child.clone()
            } else {
                format!("{base}/{child}")
            };
            if !used.contains(&p) {
                missing.push(p);
            }
        }
        for prop in &place.props {
            let p = format!("{base}@{prop}");
            if !used.contains(&p) {
                missing.push(p);
            }
        }
    }
    assert!(missing.is_empty(), "examples/full.kdl does not use: {missing:#?}");
}

#[test]
fn full_example_is_valid_without_warnings() {
    let (text, _) = full_example();
    let (config, diags) = mooring::config::check(Path::new("full.kdl"), text, jiff::Timestamp::now());
    assert!(config.is_some());
    assert!(diags.items.is_empty(), "{}", diags.render(false, 100));
}

/// Add an unknown property and an unknown child to every node the schema
/// describes (the first instance of it in full.kdl): both are rejected.
#[test]
fn anything_the_schema_lacks_is_rejected() {
    let (_, doc) = full_example();
    let mut checked = 0;
    for place in places(&committed_schema()) {
        if place.path.is_empty() {
            continue;
        }
        for (inject_child, code) in [
            (false, "mooring::config::unknown-property"),
            (true, "mooring::config::unknown-node"),
        ] {
            let mut doc = doc.clone();
            let Some(node) = find_mut(doc.nodes_mut(), &place.path) else {
                panic!("full.kdl has no {:?}", place.path);
            };
            let expected = if inject_child {
                if place.free_children {
                    continue; // any child name is allowed there
                }
                node.ensure_children()
                    .nodes_mut()
                    .push(KdlNode::new("zz-not-in-schema"));
                code
            } else {
                node.entries_mut()
                    .push(kdl::KdlEntry::new_prop("zz-not-in-schema", 1));
                code
            };
            doc.autoformat();
            let text = doc.to_string();
            let (_, diags) = mooring::config::check(Path::new("x.kdl"), text, jiff::Timestamp::now());
            let codes: Vec<&str> = diags.items.iter().map(|d| d.code).collect();
            // A value node that gains a children block is told it takes no block instead.
            let ok = codes.contains(&expected) || codes.contains(&"mooring::config::unexpected-children");
            assert!(ok, "{:?} with an injected {}: {codes:?}", place.path, expected);
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} injections checked");
}

/// The first node along `path` whose subtree has the rest of the path
/// (the first `source` may be OCI while the path wants a git-only child).
fn find_mut<'a>(nodes: &'a mut [KdlNode], path: &[String]) -> Option<&'a mut KdlNode> {
    let (first, rest) = path.split_first()?;
    let index = nodes
        .iter()
        .position(|n| n.name().value() == first && has_path(n, rest))?;
    let node = &mut nodes[index];
    if rest.is_empty() {
        return Some(node);
    }
    find_mut(node.children_mut().as_mut()?.nodes_mut(), rest)
}

fn has_path(node: &KdlNode, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    node.children()
        .map(|c| c.nodes())
        .unwrap_or_default()
        .iter()
        .any(|n| n.name().value() == first && has_path(n, rest))
}
