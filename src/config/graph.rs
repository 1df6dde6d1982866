//! The config as a graph: for every object, what it reads (its inputs) and
//! who reads it (its readers), built once per config with hashed lookups.
//! The agent wakes readers and closes `once` over inputs with it, and
//! `mooring graph` draws it as Mermaid, Graphviz dot or a tree.
//!
//! Edges, input → reader: a source → each app and automation that reads
//! it; an app → each app that `depends-on` it; an image → each automation
//! (an automation writes every policy's pick that its markers name).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::diff::Key;
use super::{Config, Kind};

/// Inputs and readers of every object of a config.
#[derive(Debug, Default)]
pub struct Graph {
    keys: Vec<Key>,
    index: HashMap<Key, usize>,
    inputs: Vec<Vec<usize>>,
    readers: Vec<Vec<usize>>,
    suspended: Vec<bool>,
}

impl Graph {
    pub fn of(cfg: &Config) -> Graph {
        let keys: Vec<Key> = cfg.keys().collect();
        let index: HashMap<Key, usize> = keys.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect();
        let mut inputs = vec![Vec::new(); keys.len()];
        let mut readers = vec![Vec::new(); keys.len()];
        let mut edge = |from: &Key, to: usize| {
            if let Some(&f) = index.get(from)
                && !inputs[to].contains(&f)
            {
                inputs[to].push(f);
                readers[f].push(to);
            }
        };
        let images: Vec<Key> = cfg
            .images
            .iter()
            .map(|i| Key::new(Kind::Image, i.name.as_str()))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            for source in cfg.sources_read_by(key) {
                edge(&Key::new(Kind::Source, source), i);
            }
            match key.kind {
                Kind::App => {
                    for d in cfg
                        .app(&key.name)
                        .map(|a| a.depends_on.as_slice())
                        .unwrap_or_default()
                    {
                        edge(&Key::new(Kind::App, d.as_str()), i);
                    }
                }
                Kind::Automation => {
                    for image in &images {
                        edge(image, i);
                    }
                }
                Kind::Source | Kind::Image => {}
            }
        }
        let suspended = keys
            .iter()
            .map(|k| {
                cfg.suspensions
                    .iter()
                    .any(|s| s.kind == k.kind && s.name.value == k.name)
            })
            .collect();
        Graph {
            keys,
            index,
            inputs,
            readers,
            suspended,
        }
    }

    /// Every object, in kind order then file order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// What `key` reads.
    pub fn inputs<'g>(&'g self, key: &Key) -> impl Iterator<Item = &'g Key> + 'g {
        self.edges(key, &self.inputs)
    }

    /// Who reads `key`.
    pub fn readers<'g>(&'g self, key: &Key) -> impl Iterator<Item = &'g Key> + 'g {
        self.edges(key, &self.readers)
    }

    fn edges<'g>(&'g self, key: &Key, edges: &'g [Vec<usize>]) -> impl Iterator<Item = &'g Key> + 'g {
        self.index
            .get(key)
            .map(|&i| edges[i].as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&j| &self.keys[j])
    }

    /// `keys` and, transitively, what they read, in config order.
    pub fn with_inputs(&self, keys: &[Key]) -> Vec<Key> {
        let mut want = vec![false; self.keys.len()];
        let mut stack: Vec<usize> = keys.iter().filter_map(|k| self.index.get(k).copied()).collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut want[i], true) {
                stack.extend(&self.inputs[i]);
            }
        }
        self.keys
            .iter()
            .zip(want)
            .filter(|(_, w)| *w)
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn label(&self, i: usize) -> String {
        let suspended = if self.suspended[i] { " (suspended)" } else { "" };
        format!("{}{suspended}", self.keys[i])
    }

    /// A Mermaid flowchart, left to right.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, _) in self.keys.iter().enumerate() {
            let _ = writeln!(out, "    n{i}[\"{}\"]", self.label(i).replace('"', "#quot;"));
        }
        for (i, readers) in self.readers.iter().enumerate() {
            for r in readers {
                let _ = writeln!(out, "    n{i} --> n{r}");
            }
        }
        out
    }

    /// A Graphviz digraph.
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph mooring {\n    rankdir=LR;\n    node [shape=box];\n");
        for (i, _) in self.keys.iter().enumerate() {
            let style = if self.suspended[i] { ", style=dashed" } else { "" };
            let label = self.label(i).replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "    n{i} [label=\"{label}\"{style}];");
        }
        for (i, readers) in self.readers.iter().enumerate() {
            for r in readers {
                let _ = writeln!(out, "    n{i} -> n{r};");
            }
        }
        out.push_str("}\n");
        out
    }

    /// A tree for the terminal: every object without inputs, and under
    /// each object its readers. An object read by several is drawn under
    /// each; below its first drawing its readers are not repeated.
    pub fn tree(&self) -> String {
        let mut out = String::new();
        let mut drawn = vec![false; self.keys.len()];
        for i in (0..self.keys.len()).filter(|&i| self.inputs[i].is_empty()) {
            let _ = writeln!(out, "{}", self.label(i));
            drawn[i] = true;
            self.subtree(i, "", &mut drawn, &mut out);
        }
        out
    }

    fn subtree(&self, i: usize, prefix: &str, drawn: &mut [bool], out: &mut String) {
        let readers = &self.readers[i];
        for (n, &r) in readers.iter().enumerate() {
            let last = n + 1 == readers.len();
            let (branch, more) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            let again = drawn[r] && !self.readers[r].is_empty();
            let note = if again { " …" } else { "" };
            let _ = writeln!(out, "{prefix}{branch}{}{note}", self.label(r));
            if !drawn[r] {
                drawn[r] = true;
                self.subtree(r, &format!("{prefix}{more}"), drawn, out);
            }
        }
    }
}

/// The graph of a config text, for tests (here and of the graph's readers).
#[cfg(test)]
pub(crate) fn of_text(text: &str) -> Graph {
    match super::from_str(
        std::path::Path::new("/x/m.kdl"),
        text.to_string(),
        jiff::Timestamp::now(),
    ) {
        Ok(l) => Graph::of(&l.config),
        Err(e) => panic!("{e:?}"),
    }
}

/// Two sources, three apps (one depending on another), an image and an
/// automation: a small fleet for tests.
#[cfg(test)]
pub(crate) const FLEET: &str = r#"
        source "platform" { git "https://example.com/p.git"; }
        source "other" { git "https://example.com/o.git"; }
        app "infra" { source "platform"; target dir="/o/i"; }
        app "web" { source "platform"; target dir="/o/w"; depends-on "infra"; }
        app "lone" { source "other"; target dir="/o/l"; }
        image "podinfo" { repository "ghcr.io/a/podinfo"; semver "^6"; }
        automation "bump" { source "platform"; author name="m" email="m@example.com"; }
        suspend app="web"
    "#;

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(keys: impl Iterator<Item = &'a Key>) -> Vec<String> {
        keys.map(Key::to_string).collect()
    }

    #[test]
    fn inputs_and_readers() {
        let g = of_text(FLEET);
        let web = Key::new(Kind::App, "web");
        assert_eq!(names(g.inputs(&web)), ["source/platform", "app/infra"]);
        let platform = Key::new(Kind::Source, "platform");
        assert_eq!(
            names(g.readers(&platform)),
            ["app/infra", "app/web", "automation/bump"]
        );
        assert_eq!(
            names(g.readers(&Key::new(Kind::Image, "podinfo"))),
            ["automation/bump"]
        );
        assert_eq!(
            names(g.inputs(&Key::new(Kind::App, "nope"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn closure_over_inputs_in_config_order() {
        let g = of_text(FLEET);
        let got = g.with_inputs(&[Key::new(Kind::App, "web"), Key::new(Kind::Automation, "bump")]);
        assert_eq!(
            names(got.iter()),
            [
                "source/platform",
                "app/infra",
                "app/web",
                "image/podinfo",
                "automation/bump"
            ]
        );
    }

    #[test]
    fn drawings() {
        let g = of_text(FLEET);
        assert_eq!(
            g.tree(),
            "source/platform\n├── app/infra\n│   └── app/web (suspended)\n├── app/web (suspended)\n└── automation/bump\nsource/other\n└── app/lone\nimage/podinfo\n└── automation/bump\n"
        );
        let m = g.mermaid();
        assert!(
            m.starts_with("flowchart LR\n    n0[\"source/platform\"]\n"),
            "{m}"
        );
        assert!(m.contains("    n0 --> n2\n"), "{m}");
        let d = g.dot();
        assert!(
            d.contains("[label=\"app/web (suspended)\", style=dashed];"),
            "{d}"
        );
        assert!(d.ends_with("}\n"), "{d}");
    }
}
