//! Which replica runs what: takes the agent's config, an object's key and
//! the shards held; gives the object's shard (a jump consistent hash of
//! its key, stable across runs and builds), whether this replica owns it,
//! the names of the shards' Leases, and, from the live replicas and the
//! shards' holders, the fair-share [`plan`] of what to give up and take.
//! All pure: no I/O here.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::diff::Key;
use crate::config::{self, Config, Kind};

/// Which shards this replica holds, by index; `None` without leader
/// election (every object is this replica's).
pub type Held = Option<Arc<Vec<bool>>>;

/// Whether the holder of `held` reconciles `key` of `cfg`.
pub fn owns(held: &Held, cfg: &Config, key: &Key) -> bool {
    let Some(shards) = held else { return true };
    if shards.len() <= 1 {
        return shards.first().copied().unwrap_or(false);
    }
    if matches!(key.kind, Kind::Source | Kind::Image) {
        return shards.iter().any(|h| *h);
    }
    shards
        .get(shard_of(&shard_key(cfg, key), shards.len()))
        .copied()
        .unwrap_or(false)
}

/// The shards whose holders run `key` for this replica (which holds
/// `held`): the object's shard when this replica does not hold it; for a
/// source or an image (every holder runs them), every shard it does not
/// hold.
pub fn elsewhere(held: &Held, cfg: &Config, key: &Key) -> Vec<usize> {
    let Some(shards) = held else { return Vec::new() };
    let others = |i: &usize| !shards.get(*i).copied().unwrap_or(false);
    if shards.len() <= 1 {
        return [0].into_iter().filter(others).collect();
    }
    if matches!(key.kind, Kind::Source | Kind::Image) {
        return (0..shards.len()).filter(others).collect();
    }
    Some(shard_of(&shard_key(cfg, key), shards.len()))
        .filter(others)
        .into_iter()
        .collect()
}

/// The key an object is sharded by: an app's is the first app, by name,
/// of the apps `depends-on` ties it to (directly or not, either way), so
/// that they run on one replica; any other object's is its own.
pub(super) fn shard_key(cfg: &Config, key: &Key) -> Key {
    let tied = |a: &config::App, name: &str| {
        a.name.as_str() == name || a.depends_on.iter().any(|d| d.as_str() == name)
    };
    let alone = cfg.app(&key.name).is_none_or(|a| a.depends_on.is_empty())
        && !cfg
            .apps
            .iter()
            .any(|a| a.name.as_str() != key.name && tied(a, &key.name));
    if key.kind != Kind::App || alone {
        return key.clone();
    }
    let mut seen: BTreeSet<&str> = BTreeSet::from([key.name.as_str()]);
    let mut todo = vec![key.name.as_str()];
    while let Some(name) = todo.pop() {
        for a in cfg.apps.iter().filter(|&a| tied(a, name)) {
            let names = std::iter::once(a.name.as_str()).chain(a.depends_on.iter().map(|d| d.as_str()));
            for t in names {
                if seen.insert(t) {
                    todo.push(t);
                }
            }
        }
    }
    let first = seen.first().copied().unwrap_or(key.name.as_str());
    Key::new(Kind::App, first)
}

/// The shard of `key` among `n` (jump consistent hash: growing `n` by one
/// moves only a 1/n share of the objects).
pub(super) fn shard_of(key: &Key, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    // FNV-1a, mixed (splitmix64's finalizer): names that differ in one
    // character spread as well as any.
    let mut h = fnv(&key.to_string());
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        h = h.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b as f64 + 1.0) * ((1u64 << 31) as f64 / ((h >> 33) as f64 + 1.0))) as i64;
    }
    b.max(0) as usize
}

/// FNV-1a: stable across runs and builds.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The name of shard `i`'s Lease among `n`: `LEASE` alone, else `LEASE-i`.
pub(super) fn lease_name(lease: &str, i: usize, n: usize) -> String {
    if n <= 1 {
        lease.to_string()
    } else {
        format!("{lease}-{i}")
    }
}

/// What a replica does after a look: the shards it gives up and the free
/// ones it takes.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Plan {
    pub(super) give: Vec<usize>,
    pub(super) take: Vec<usize>,
}

/// The plan of replica `me` among the `live` replicas (`me` among them),
/// the shards' live holders being `holders` (`None`: free). See the
/// parent module's doc.
pub(super) fn plan(me: &str, live: &BTreeSet<String>, holders: &[Option<String>], stuck: &[bool]) -> Plan {
    let n = holders.len();
    let m = live.len().max(1);
    let (lo, hi) = (n / m, n.div_ceil(m));
    let count = |id: &str| holders.iter().filter(|h| h.as_deref() == Some(id)).count();
    let mine: Vec<usize> = (0..n).filter(|&i| holders[i].as_deref() == Some(me)).collect();
    let free: Vec<usize> = (0..n).filter(|&i| holders[i].is_none()).collect();
    if mine.len() > hi {
        return Plan {
            give: mine[hi..].to_vec(),
            take: Vec::new(),
        };
    }
    let starved = live.iter().any(|id| id != me && count(id) < lo);
    // Free for a whole lease: whoever should have gone first did not.
    let free = if mine.len() < hi && mine.len() >= lo && starved {
        free.into_iter()
            .filter(|&i| stuck.get(i).copied().unwrap_or(false))
            .collect()
    } else {
        free
    };
    if mine.len() < hi && !free.is_empty() {
        // Start at a place of its own, so that replicas looking at once
        // mostly go for different shards.
        let start = if free.is_empty() {
            0
        } else {
            (fnv(me) % free.len() as u64) as usize
        };
        let take = free
            .iter()
            .cycle()
            .skip(start)
            .take(free.len().min(hi - mine.len()))
            .copied()
            .collect();
        return Plan {
            give: Vec::new(),
            take,
        };
    }
    let top = live.iter().max_by(|a, b| (count(a), a).cmp(&(count(b), b)));
    let none_free = holders.iter().all(Option::is_some);
    if starved && none_free && mine.len() > lo && top.is_some_and(|t| t == me) {
        return Plan {
            give: mine.last().copied().into_iter().collect(),
            take: Vec::new(),
        };
    }
    Plan::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        let path = std::path::Path::new("/x/m.kdl");
        match crate::config::from_str(path, text.to_string(), jiff::Timestamp::now()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    fn live(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn holders(h: &[Option<&str>]) -> Vec<Option<String>> {
        h.iter().map(|h| h.map(str::to_string)).collect()
    }

    /// The plan when no shard has been free for a whole lease.
    fn look(me: &str, live: &BTreeSet<String>, holders: &[Option<String>]) -> Plan {
        plan(me, live, holders, &vec![false; holders.len()])
    }

    #[test]
    fn one_shard_holds_everything_and_none_is_no_election() {
        let c = Config::default();
        let key = Key::new(Kind::App, "web");
        let source = Key::new(Kind::Source, "repo");
        assert!(owns(&None, &c, &key));
        assert!(owns(&Some(Arc::new(vec![true])), &c, &key));
        assert!(!owns(&Some(Arc::new(vec![false])), &c, &key));
        assert!(!owns(&Some(Arc::new(vec![false])), &c, &source));
        assert_eq!(shard_of(&key, 1), 0);
        assert_eq!(elsewhere(&Some(Arc::new(vec![false])), &c, &source), vec![0]);
        assert_eq!(
            elsewhere(&Some(Arc::new(vec![true])), &c, &key),
            Vec::<usize>::new()
        );
        assert_eq!(lease_name("mooring", 0, 1), "mooring");
        assert_eq!(lease_name("mooring", 3, 4), "mooring-3");
    }

    #[test]
    fn with_shards_sources_and_images_run_on_every_holder() {
        let c = Config::default();
        let source = Key::new(Kind::Source, "repo");
        let image = Key::new(Kind::Image, "app");
        let some: Held = Some(Arc::new(vec![false, true, false]));
        assert!(owns(&some, &c, &source) && owns(&some, &c, &image));
        assert!(!owns(&Some(Arc::new(vec![false; 3])), &c, &source));
        // A hook for a source reaches the holders of the other shards too.
        assert_eq!(elsewhere(&some, &c, &source), vec![0, 2]);
        let app = Key::new(Kind::App, "web");
        let shard = shard_of(&app, 3);
        assert_eq!(owns(&some, &c, &app), shard == 1);
        assert_eq!(
            elsewhere(&some, &c, &app),
            if shard == 1 { vec![] } else { vec![shard] }
        );
    }

    #[test]
    fn apps_tied_by_depends_on_share_a_shard() {
        let c = cfg(r#"
            source "s" { git "https://example.com/r.git"; }
            app "web" { source "s"; path "w"; target dir="/o/w"; depends-on "db"; }
            app "db" { source "s"; path "d"; target dir="/o/d"; depends-on "infra"; }
            app "infra" { source "s"; path "i"; target dir="/o/i"; }
            app "api" { source "s"; path "a"; target dir="/o/a"; depends-on "db"; }
            app "alone" { source "s"; path "x"; target dir="/o/x"; }
        "#);
        for name in ["web", "db", "infra", "api"] {
            assert_eq!(
                shard_key(&c, &Key::new(Kind::App, name)),
                Key::new(Kind::App, "api"),
                "{name}"
            );
        }
        let alone = Key::new(Kind::App, "alone");
        assert_eq!(shard_key(&c, &alone), alone);
        let source = Key::new(Kind::Source, "s");
        assert_eq!(shard_key(&c, &source), source);
    }

    #[test]
    fn shards_spread_and_move_little_when_one_is_added() {
        let keys: Vec<Key> = (0..2000)
            .map(|i| Key::new(Kind::App, format!("app-{i}")))
            .collect();
        let mut counts = [0usize; 4];
        for k in &keys {
            counts[shard_of(k, 4)] += 1;
        }
        assert!(counts.iter().all(|c| (350..650).contains(c)), "{counts:?}");
        let moved = keys.iter().filter(|k| shard_of(k, 4) != shard_of(k, 5)).count();
        // A fifth of them should move to the new shard, and no more.
        assert!((300..500).contains(&moved), "{moved}");
        assert!(keys.iter().all(|k| shard_of(k, 5) < 5));
    }

    #[test]
    fn a_lone_replica_takes_every_free_shard() {
        let p = look("a", &live(&["a"]), &holders(&[None, None, None, None]));
        let mut take = p.take.clone();
        take.sort();
        assert_eq!((p.give, take), (vec![], vec![0, 1, 2, 3]));
    }

    #[test]
    fn a_replica_above_its_share_gives_the_extra_up() {
        // Two replicas, four shards: two each; "a" holds all four.
        let h = holders(&[Some("a"), Some("a"), Some("a"), Some("a")]);
        assert_eq!(
            look("a", &live(&["a", "b"]), &h),
            Plan {
                give: vec![2, 3],
                take: vec![]
            }
        );
        // "b" waits for them to be free.
        assert_eq!(look("b", &live(&["a", "b"]), &h), Plan::default());
        let freed = holders(&[Some("a"), Some("a"), None, None]);
        let mut take = look("b", &live(&["a", "b"]), &freed).take;
        take.sort();
        assert_eq!(take, vec![2, 3]);
        assert_eq!(look("a", &live(&["a", "b"]), &freed), Plan::default());
    }

    #[test]
    fn a_replica_with_none_gets_one_from_the_replica_with_most() {
        // Three replicas, four shards: 2, 2, 0. Only the greatest of the
        // two with most gives one up, and neither takes it back.
        let h = holders(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        let all = live(&["a", "b", "c"]);
        assert_eq!(look("a", &all, &h), Plan::default());
        assert_eq!(
            look("b", &all, &h),
            Plan {
                give: vec![3],
                take: vec![]
            }
        );
        let freed = holders(&[Some("a"), Some("a"), Some("b"), None]);
        assert_eq!(look("b", &all, &freed), Plan::default());
        assert_eq!(look("a", &all, &freed), Plan::default());
        assert_eq!(
            look("c", &all, &freed),
            Plan {
                give: vec![],
                take: vec![3]
            }
        );
    }

    #[test]
    fn nothing_moves_when_shares_are_within_bounds() {
        let all = live(&["a", "b", "c"]);
        for h in [
            holders(&[Some("a"), Some("a"), Some("b"), Some("c")]),
            holders(&[Some("c"), Some("a"), Some("b"), Some("c")]),
        ] {
            for me in ["a", "b", "c"] {
                assert_eq!(look(me, &all, &h), Plan::default(), "{me} {h:?}");
            }
        }
        // Fewer shards than replicas: one each, the rest stand by.
        let h = holders(&[Some("a"), Some("b")]);
        for me in ["a", "b", "c"] {
            assert_eq!(look(me, &all, &h), Plan::default(), "{me}");
        }
        // One shard: today's single leader.
        assert_eq!(look("b", &live(&["b"]), &holders(&[Some("a")])), Plan::default());
    }

    #[test]
    fn the_shards_of_a_dead_replica_go_to_those_below_the_ceiling() {
        // "c" died: its shard is free. While "c" still counts as live (it
        // has none: it would go first), "b" waits; once it is gone, "b"
        // (one, below two) takes it, "a" (two) does not.
        let h = holders(&[Some("a"), Some("a"), Some("b"), None]);
        assert_eq!(look("b", &live(&["a", "b", "c"]), &h), Plan::default());
        let two = live(&["a", "b"]);
        assert_eq!(look("a", &two, &h), Plan::default());
        assert_eq!(
            look("b", &two, &h),
            Plan {
                give: vec![],
                take: vec![3]
            }
        );
        // Free for a whole lease, it goes to "b" even while "c" counts.
        let stuck = [false, false, false, true];
        assert_eq!(plan("b", &live(&["a", "b", "c"]), &h, &stuck).take, vec![3]);
        assert_eq!(plan("a", &live(&["a", "b", "c"]), &h, &stuck), Plan::default());
        // "c" held two: once it is seen gone, "a" and "b" take one each.
        let h = holders(&[Some("a"), None, Some("b"), None]);
        assert_eq!(look("a", &two, &h).take.len(), 1);
        assert_eq!(look("b", &two, &h).take.len(), 1);
    }
}
