//! What this agent last applied to each object, so that a pass over an app
//! whose objects neither git nor anyone else changed sends no write.
//!
//! A stamp keeps a digest of the body sent (with the options that change
//! what the server does with it) and what the server answered: the
//! object's resourceVersion, generation and a digest of its labels and
//! annotations. An object is *untouched* when its live resourceVersion is
//! still the one answered, or — since controllers bump the resourceVersion
//! with every status write — when it has a generation (which only changes
//! with the spec) and neither that nor its labels and annotations moved.
//! Anything else (a hand edit, a delete, a new body, a failed apply, a new
//! connection) means the object is applied again. Stamps live in memory
//! only: a restarted agent applies everything once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::api::ObjectMeta;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::render::ObjectId;

/// The digest of what is sent, or of the metadata that was answered.
pub type Digest = [u8; 32];

/// One object as the server answered the last apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub sent: Digest,
    /// `None` while an apply is in flight, and once a watch saw someone
    /// else change the object (it is applied again at the next pass).
    pub live: Option<Live>,
    pub at: Instant,
}

/// The parts of a live object that tell whether anyone changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub resource_version: String,
    pub generation: Option<i64>,
    pub meta: Digest,
}

impl Live {
    pub fn of(meta: &ObjectMeta) -> Live {
        let mut h = Sha256::new();
        for map in [&meta.labels, &meta.annotations] {
            for (k, v) in map.iter().flatten() {
                h.update((k.len() as u64).to_le_bytes());
                h.update(k);
                h.update((v.len() as u64).to_le_bytes());
                h.update(v);
            }
            h.update([0xff]);
        }
        Live {
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            generation: meta.generation,
            meta: h.finalize().into(),
        }
    }

    /// `self` (the object now) is what `then` (the last answer) left.
    fn untouched_since(&self, then: &Live) -> bool {
        self.resource_version == then.resource_version
            || (self.generation.is_some() && self.generation == then.generation && self.meta == then.meta)
    }
}

/// The digest of a body as sent with these options.
pub fn sent(body: &Value, field_manager: &str, force: bool) -> Digest {
    let mut h = Sha256::new();
    h.update(field_manager);
    h.update([force as u8]);
    // serde_json writes maps in key order: equal bodies, equal bytes,
    // hashed as they are written.
    struct Hashing<'a>(&'a mut Sha256);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(Hashing(&mut h), body);
    h.finalize().into()
}

/// Stamps by app and object.
#[derive(Default)]
pub struct Stamps {
    map: Mutex<HashMap<String, HashMap<ObjectId, Stamp>>>,
}

impl Stamps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<ObjectId, Stamp>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `id` may be left alone: the same body was applied last time,
    /// no longer ago than `reapply` (when set), and `live` (the object as
    /// listed now, `None` when it is gone or could not be listed) is what
    /// that apply left.
    pub fn unchanged(
        &self,
        app: &str,
        id: &ObjectId,
        sent: &Digest,
        live: Option<&Live>,
        reapply: Option<Duration>,
    ) -> bool {
        let map = self.lock();
        let Some(stamp) = map.get(app).and_then(|m| m.get(id)) else {
            return false;
        };
        stamp.sent == *sent
            && reapply.is_none_or(|r| stamp.at.elapsed() < r)
            && live
                .zip(stamp.live.as_ref())
                .is_some_and(|(l, then)| l.untouched_since(then))
    }

    /// An apply of `id` is about to be sent: until it is recorded, changes
    /// seen to the object are its own, not drift.
    pub fn applying(&self, app: &str, id: &ObjectId) {
        if let Some(stamp) = self.lock().get_mut(app).and_then(|m| m.get_mut(id)) {
            stamp.live = None;
        }
    }

    /// Whether `app` applied `id` and someone changed (`live`) or deleted
    /// (`None`) it since: then the stamp no longer vouches for the object,
    /// and the same drift is not reported twice.
    pub fn drift(&self, app: &str, id: &ObjectId, live: Option<&Live>) -> bool {
        let mut map = self.lock();
        let Some(stamp) = map.get_mut(app).and_then(|m| m.get_mut(id)) else {
            return false;
        };
        let Some(then) = &stamp.live else { return false };
        let drifted = live.is_none_or(|l| !l.untouched_since(then));
        if drifted {
            stamp.live = None;
        }
        drifted
    }

    /// What the server last answered for `id`, when the stamp still
    /// vouches for it and a pass would leave it alone: the same body, no
    /// drift seen since, and (with `reapply`) not yet due. Only as good as
    /// the watch that clears stamps on drift: callers ask it only while
    /// that watch is live.
    pub fn vouched(
        &self,
        app: &str,
        id: &ObjectId,
        sent: &Digest,
        reapply: Option<Duration>,
    ) -> Option<Live> {
        let map = self.lock();
        let stamp = map.get(app)?.get(id)?;
        (stamp.sent == *sent && reapply.is_none_or(|r| stamp.at.elapsed() < r))
            .then(|| stamp.live.clone())
            .flatten()
    }

    /// Of the applied objects of one kind, those `listed` (app, object,
    /// live) shows changed or does not show.
    pub fn drifted(
        &self,
        api_version: &str,
        kind: &str,
        listed: &[(String, ObjectId, Live)],
    ) -> Vec<(String, ObjectId)> {
        let now: HashMap<(&str, &ObjectId), &Live> =
            listed.iter().map(|(a, id, l)| ((a.as_str(), id), l)).collect();
        let map = self.lock();
        let mut out = Vec::new();
        for (app, stamps) in map.iter() {
            for (id, stamp) in stamps {
                let Some(then) = &stamp.live else { continue };
                if id.api_version != api_version || id.kind != kind {
                    continue;
                }
                if now
                    .get(&(app.as_str(), id))
                    .is_none_or(|l| !l.untouched_since(then))
                {
                    out.push((app.clone(), id.clone()));
                }
            }
        }
        out.sort();
        out
    }

    pub fn record(&self, app: &str, id: &ObjectId, sent: Digest, live: Live) {
        let stamp = Stamp {
            sent,
            live: Some(live),
            at: Instant::now(),
        };
        self.lock()
            .entry(app.to_string())
            .or_default()
            .insert(id.clone(), stamp);
    }

    pub fn forget(&self, app: &str, id: &ObjectId) {
        if let Some(m) = self.lock().get_mut(app) {
            m.remove(id);
        }
    }

    /// Keep only the stamps of `app`'s objects in `keep`.
    pub fn retain(&self, app: &str, keep: impl Fn(&ObjectId) -> bool) {
        let mut map = self.lock();
        if let Some(m) = map.get_mut(app) {
            m.retain(|id, _| keep(id));
            if m.is_empty() {
                map.remove(app);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ObjectId {
        ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("demo".into()),
            name: name.into(),
        }
    }

    fn live(rv: &str, generation: Option<i64>, label: &str) -> Live {
        let meta = ObjectMeta {
            resource_version: Some(rv.into()),
            generation,
            labels: Some([("l".to_string(), label.to_string())].into()),
            ..ObjectMeta::default()
        };
        Live::of(&meta)
    }

    #[test]
    fn an_object_is_left_alone_only_while_nobody_changed_it() {
        let stamps = Stamps::default();
        let body = serde_json::json!({"spec": {"replicas": 2}});
        let sent = super::sent(&body, "mooring", false);
        let (web, api) = (id("web"), id("api"));
        assert!(!stamps.unchanged("a", &web, &sent, Some(&live("5", Some(1), "x")), None));
        stamps.record("a", &web, sent, live("5", Some(1), "x"));
        // Same answer; or a status write (new resourceVersion, same generation).
        assert!(stamps.unchanged("a", &web, &sent, Some(&live("5", Some(1), "x")), None));
        assert!(stamps.unchanged("a", &web, &sent, Some(&live("9", Some(1), "x")), None));
        // A spec edit, a label edit, a delete, another body, another app.
        assert!(!stamps.unchanged("a", &web, &sent, Some(&live("9", Some(2), "x")), None));
        assert!(!stamps.unchanged("a", &web, &sent, Some(&live("9", Some(1), "y")), None));
        assert!(!stamps.unchanged("a", &web, &sent, None, None));
        let other = super::sent(&serde_json::json!({"spec": {"replicas": 3}}), "mooring", false);
        assert!(!stamps.unchanged("a", &web, &other, Some(&live("5", Some(1), "x")), None));
        assert!(!stamps.unchanged(
            "a",
            &web,
            &super::sent(&body, "mooring", true),
            Some(&live("5", Some(1), "x")),
            None
        ));
        assert!(!stamps.unchanged("b", &web, &sent, Some(&live("5", Some(1), "x")), None));
        // Without a generation (a ConfigMap), only the same resourceVersion.
        stamps.record("a", &api, sent, live("7", None, "x"));
        assert!(stamps.unchanged("a", &api, &sent, Some(&live("7", None, "x")), None));
        assert!(!stamps.unchanged("a", &api, &sent, Some(&live("8", None, "x")), None));
        // Drift, as a watch lists it.
        let listed = [("a".to_string(), web.clone(), live("9", Some(2), "x"))];
        assert_eq!(
            stamps.drifted("apps/v1", "Deployment", &listed),
            [("a".to_string(), api.clone()), ("a".to_string(), web.clone())]
        );
        assert_eq!(stamps.drifted("v1", "ConfigMap", &listed), []);
        // Drift, as a watch sees it: reported once, and the stamp no
        // longer vouches for the object.
        assert_eq!(
            stamps.vouched("a", &web, &sent, None),
            Some(live("5", Some(1), "x"))
        );
        assert_eq!(stamps.vouched("a", &web, &other, None), None);
        assert!(!stamps.drift("a", &web, Some(&live("9", Some(1), "x"))));
        assert!(stamps.drift("a", &web, Some(&live("9", Some(2), "x"))));
        assert!(!stamps.drift("a", &web, None));
        assert_eq!(stamps.vouched("a", &web, &sent, None), None);
        assert!(!stamps.unchanged("a", &web, &sent, Some(&live("9", Some(2), "x")), None));
        stamps.record("a", &web, sent, live("5", Some(1), "x"));
        assert!(stamps.drift("a", &web, None));
        assert!(!stamps.drift("a", &id("never"), None));
        // While an apply is in flight, its own changes are not drift.
        stamps.record("a", &web, sent, live("5", Some(1), "x"));
        stamps.applying("a", &web);
        assert!(!stamps.drift("a", &web, None));
        assert_eq!(stamps.vouched("a", &web, &sent, None), None);
        assert!(!stamps.unchanged("a", &web, &sent, Some(&live("5", Some(1), "x")), None));
        stamps.record("a", &web, sent, live("5", Some(1), "x"));
        // A periodic full apply.
        assert!(!stamps.unchanged(
            "a",
            &web,
            &sent,
            Some(&live("5", Some(1), "x")),
            Some(Duration::ZERO)
        ));
        assert_eq!(stamps.vouched("a", &web, &sent, Some(Duration::ZERO)), None);
        stamps.retain("a", |i| *i == api);
        assert!(!stamps.unchanged("a", &web, &sent, Some(&live("5", Some(1), "x")), None));
        stamps.forget("a", &api);
        assert!(!stamps.unchanged("a", &api, &sent, Some(&live("7", None, "x")), None));
    }
}
