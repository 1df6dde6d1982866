//! Applying: takes an app's rendered manifests ([`crate::render::Manifest`])
//! and puts them where they belong — into a directory ([`dir`], for
//! `target dir=…`, e.g. k3s' auto-deploy manifests) or onto a Kubernetes
//! cluster ([`kube`]: server-side apply, [`inventory`], prune, [`health`])
//! — pruning what the app no longer holds, and gives a [`Summary`] of what
//! changed.

pub mod cluster;
pub mod diff;
pub mod dir;
pub mod health;
pub mod inventory;
pub mod kube;
pub mod names;
pub mod stamps;
pub mod vars;
pub mod watch;

use std::fmt;

/// What one apply changed, counted in objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub created: usize,
    pub configured: usize,
    pub unchanged: usize,
    pub pruned: usize,
    /// Objects deleted and created again (`recreate`): named in the
    /// message, not in the JSON counts.
    #[serde(skip)]
    pub recreated: Vec<String>,
}

impl Summary {
    /// Whether anything was created, configured or pruned.
    pub fn changed(&self) -> bool {
        self.created + self.configured + self.pruned > 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} created, {} configured, {} unchanged, {} pruned",
            self.created, self.configured, self.unchanged, self.pruned
        )?;
        if !self.recreated.is_empty() {
            write!(f, "; recreated {}", self.recreated.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_display() {
        let s = Summary {
            created: 2,
            configured: 1,
            unchanged: 3,
            pruned: 0,
            recreated: Vec::new(),
        };
        assert_eq!(s.to_string(), "2 created, 1 configured, 3 unchanged, 0 pruned");
        let r = Summary {
            configured: 1,
            recreated: vec!["Job/demo/migrate".into()],
            ..Summary::default()
        };
        assert_eq!(
            r.to_string(),
            "0 created, 1 configured, 0 unchanged, 0 pruned; recreated Job/demo/migrate"
        );
        assert!(s.changed());
        assert!(!Summary::default().changed());
    }
}
