//! Reload as a diff: takes the running config and a newly loaded one, gives
//! which objects were added, changed or removed, keyed by `(kind, name)`.
//! Only those restart; everything else keeps its status and backoff.
//!
//! An object "changed" when anything its reconcile reads changed: its own
//! node, its suspension, the cluster an app targets, the field manager or
//! inventory namespace, or the source it reads (a new URL means a new artifact for its apps).

use std::collections::{BTreeSet, HashMap};

use super::{Config, Kind, Suspension};

/// One object of the config: `app/podinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub name: String,
}

impl Key {
    pub fn new(kind: Kind, name: impl Into<String>) -> Key {
        Key {
            kind,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What a reload changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigDiff {
    pub added: Vec<Key>,
    pub changed: Vec<Key>,
    pub removed: Vec<Key>,
    /// Agent settings that changed but only take effect after a restart.
    pub restart_needed: Vec<&'static str>,
}

impl ConfigDiff {
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let (old_ix, new_ix) = (Index::of(old), Index::of(new));
        let old_keys: BTreeSet<&Key> = old_ix.objects.keys().collect();
        let new_keys: BTreeSet<&Key> = new_ix.objects.keys().collect();
        let mut diff = ConfigDiff {
            added: new_keys.difference(&old_keys).map(|k| (*k).clone()).collect(),
            removed: old_keys.difference(&new_keys).map(|k| (*k).clone()).collect(),
            ..ConfigDiff::default()
        };
        let changed_sources: BTreeSet<&str> = new
            .sources
            .iter()
            .filter(|s| {
                let key = Key::new(Kind::Source, s.name.as_str());
                matches!(old_ix.objects.get(&key), Some(Object::Source(o)) if o != s)
            })
            .map(|s| s.name.as_str())
            .collect();
        for key in new_keys.intersection(&old_keys) {
            let reads_changed_source = new_ix
                .objects
                .get(*key)
                .is_some_and(|o| o.sources().iter().any(|s| changed_sources.contains(s)));
            if reads_changed_source || !same_object(old, new, &old_ix, &new_ix, key) {
                diff.changed.push((*key).clone());
            }
        }
        let (a, b) = (&old.agent, &new.agent);
        for (name, differs) in [
            ("agent.listen", a.listen != b.listen),
            ("agent.state-dir", a.state_dir != b.state_dir),
            ("agent.log", a.log != b.log),
            ("agent.log-file", a.log_file != b.log_file),
            ("agent.leader-election", a.leader_election != b.leader_election),
        ] {
            if differs {
                diff.restart_needed.push(name);
            }
        }
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl std::fmt::Display for ConfigDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} changed, {} removed",
            self.added.len(),
            self.changed.len(),
            self.removed.len()
        )
    }
}

/// One object of a config, by reference.
#[derive(PartialEq)]
enum Object<'a> {
    Source(&'a super::Source),
    App(&'a super::App),
    Image(&'a super::Image),
    Automation(&'a super::Automation),
}

impl<'a> Object<'a> {
    /// The sources it reads.
    fn sources(&self) -> Vec<&'a str> {
        match self {
            Object::App(a) => a.sources(),
            Object::Automation(a) => vec![a.source.as_str()],
            Object::Source(_) | Object::Image(_) => Vec::new(),
        }
    }
}

/// A config's objects and suspensions by key, so that a diff is linear.
struct Index<'a> {
    objects: HashMap<Key, Object<'a>>,
    suspensions: HashMap<Key, &'a Suspension>,
}

impl<'a> Index<'a> {
    fn of(c: &'a Config) -> Index<'a> {
        let mut objects = HashMap::new();
        for s in &c.sources {
            objects.insert(Key::new(Kind::Source, s.name.as_str()), Object::Source(s));
        }
        for a in &c.apps {
            objects.insert(Key::new(Kind::App, a.name.as_str()), Object::App(a));
        }
        for i in &c.images {
            objects.insert(Key::new(Kind::Image, i.name.as_str()), Object::Image(i));
        }
        for a in &c.automations {
            objects.insert(Key::new(Kind::Automation, a.name.as_str()), Object::Automation(a));
        }
        let suspensions = c
            .suspensions
            .iter()
            .map(|s| (Key::new(s.kind, s.name.as_str()), s))
            .collect();
        Index { objects, suspensions }
    }
}

fn same_object(old: &Config, new: &Config, old_ix: &Index, new_ix: &Index, key: &Key) -> bool {
    let same_suspension =
        old_ix.suspensions.get(key).map(|s| strip(s)) == new_ix.suspensions.get(key).map(|s| strip(s));
    let (a, b) = (old_ix.objects.get(key), new_ix.objects.get(key));
    same_suspension
        && a == b
        && match (a, b) {
            (Some(Object::App(x)), Some(Object::App(y))) => {
                // The clusters it applies to, as defined: another list
                // (`default-cluster` included) or definition restarts it.
                let clusters = |c: &Config, app: &super::App| {
                    c.app_clusters(app)
                        .map(|names| names.iter().map(|n| c.cluster(n).cloned()).collect::<Vec<_>>())
                };
                clusters(old, x) == clusters(new, y)
                    && old.agent.field_manager == new.agent.field_manager
                    && old.agent.inventory_namespace == new.agent.inventory_namespace
            }
            _ => true,
        }
}

/// A suspension without where it was written.
fn strip(s: &Suspension) -> (Option<&str>, Option<jiff::Timestamp>) {
    (s.reason.as_deref(), s.until.as_ref().map(|u| u.value))
}

impl Config {
    /// Every object, in kind order then file order.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        Kind::ALL
            .into_iter()
            .flat_map(move |kind| self.names(kind).into_iter().map(move |n| Key::new(kind, n)))
    }

    /// The source an app or automation reads.
    /// Every source `key` reads: an app's own and those of its values
    /// files; an automation's.
    pub fn sources_read_by(&self, key: &Key) -> Vec<&str> {
        match key.kind {
            Kind::App => self.app(&key.name).map(|a| a.sources()).unwrap_or_default(),
            Kind::Automation => self.source_of(key).into_iter().collect(),
            Kind::Source | Kind::Image => Vec::new(),
        }
    }

    pub fn source_of(&self, key: &Key) -> Option<&str> {
        match key.kind {
            Kind::App => self.app(&key.name).map(|a| a.source.as_str()),
            Kind::Automation => self.automation(&key.name).map(|a| a.source.as_str()),
            Kind::Source | Kind::Image => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        match super::super::from_str(Path::new("/x/m.kdl"), text.to_string(), jiff::Timestamp::now()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    const BASE: &str = r#"
        source "a" { git "https://example.com/a.git" }
        source "b" { git "https://example.com/b.git" }
        app "one" { source "a"; target dir="/o1" }
        app "two" { source "b"; target dir="/o2" }
    "#;

    fn keys(v: &[Key]) -> Vec<String> {
        v.iter().map(Key::to_string).collect()
    }

    #[test]
    fn moving_and_reformatting_changes_nothing() {
        let moved = r#"
            app "two" { source "b"
                target dir="/o2" }
            source "b" { git "https://example.com/b.git"; }
            // a comment
            source "a" { git "https://example.com/a.git" }
            app "one" { source "a"; target dir="/o1"; }
        "#;
        let d = ConfigDiff::between(&cfg(BASE), &cfg(moved));
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn added_changed_removed_and_dependents_of_a_changed_source() {
        let new = r#"
            source "a" { git "https://example.com/a2.git" }
            app "one" { source "a"; target dir="/o1" }
            app "three" { source "a"; target dir="/o3" }
        "#;
        let d = ConfigDiff::between(&cfg(BASE), &cfg(new));
        assert_eq!(keys(&d.added), ["app/three"]);
        assert_eq!(keys(&d.changed), ["source/a", "app/one"]);
        assert_eq!(keys(&d.removed), ["source/b", "app/two"]);
    }

    #[test]
    fn a_suspension_changes_its_object_only() {
        let new = format!("{BASE}\nsuspend app=\"one\" reason=\"debugging\"");
        let d = ConfigDiff::between(&cfg(BASE), &cfg(&new));
        assert_eq!(keys(&d.changed), ["app/one"]);
    }

    #[test]
    fn default_cluster_changes_the_apps_that_follow_it() {
        let base = r#"
            cluster "old" {}
            cluster "new" {}
            source "a" { git "https://example.com/a.git" }
            app "follows" { source "a" }
            app "own" { source "a"; cluster "old" }
            app "dir" { source "a"; target dir="/o" }
        "#;
        let moved = format!("agent {{ default-cluster \"old\" \"new\" }}\n{base}");
        let d = ConfigDiff::between(&cfg(base), &cfg(&moved));
        assert_eq!(keys(&d.changed), ["app/follows"]);
        assert!(d.restart_needed.is_empty());
        let listed = base.replace("cluster \"old\" }", "cluster \"old\" \"new\" }");
        let d = ConfigDiff::between(&cfg(base), &cfg(&listed));
        assert_eq!(keys(&d.changed), ["app/own"]);
    }

    #[test]
    fn agent_settings_that_need_a_restart() {
        let new = format!("agent {{ listen \"127.0.0.1:9999\"; concurrency 2 }}\n{BASE}");
        let d = ConfigDiff::between(&cfg(BASE), &cfg(&new));
        assert!(d.is_empty());
        assert_eq!(d.restart_needed, ["agent.listen"]);
    }
}
