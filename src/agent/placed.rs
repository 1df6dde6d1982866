//! Which clusters each app has applied to, kept in the state directory as
//! `clusters/APP.json`, so that a cluster dropped from an app's list is
//! pruned even when the agent restarted between the config edit and the
//! run. A cluster enters the record before anything is applied to it and
//! leaves it only once its objects are pruned (or left, without `prune`).
//! A removed app keeps its record and prunes nothing.
//!
//! The file is the agent's own, written atomically; one that does not
//! parse is an error naming it, never an empty record (that would forget
//! clusters silently).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One cluster the app has applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// `None`: the default connection.
    pub cluster: Option<String>,
    /// The revision last applied there; `None` before the first apply
    /// finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    app: String,
    clusters: Vec<Placed>,
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct Error {
    path: PathBuf,
    message: String,
}

impl crate::reason::Classify for Error {
    fn reason(&self) -> crate::reason::Reason {
        crate::reason::Reason::ApplyFailed
    }

    fn retryable(&self) -> bool {
        true
    }
}

fn path(state_dir: &Path, app: &str) -> PathBuf {
    // App names are declared names: no `/`, never starting with `.`.
    state_dir.join("clusters").join(format!("{app}.json"))
}

/// The clusters `app` has applied to; none without a record.
pub fn load(state_dir: &Path, app: &str) -> Result<Vec<Placed>, Error> {
    let path = path(state_dir, app);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error {
                path,
                message: e.to_string(),
            });
        }
    };
    let file: File = serde_json::from_slice(&text).map_err(|e| Error {
        path: path.clone(),
        message: format!(
            "not a record of the clusters app \"{app}\" applied to ({e}); delete it to forget them"
        ),
    })?;
    Ok(file.clusters)
}

/// Record `clusters` as those `app` has applied to.
pub fn save(state_dir: &Path, app: &str, clusters: &[Placed]) -> Result<(), Error> {
    let path = path(state_dir, app);
    let failed = |e: std::io::Error| Error {
        path: path.clone(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let file = File {
        app: app.to_string(),
        clusters: clusters.to_vec(),
    };
    let text = serde_json::to_vec_pretty(&file).unwrap_or_default();
    crate::atomic::write(&path, &text).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_round_trip_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(load(dir.path(), "web").expect("no record"), []);
        let placed = vec![
            Placed {
                cluster: Some("old".into()),
                revision: Some("main@sha1:aa".into()),
            },
            Placed {
                cluster: None,
                revision: None,
            },
        ];
        save(dir.path(), "web", &placed).expect("save");
        assert_eq!(load(dir.path(), "web").expect("load"), placed);
        std::fs::write(dir.path().join("clusters/web.json"), "{").expect("write");
        let e = load(dir.path(), "web").expect_err("a bad record");
        assert!(e.to_string().contains("delete it to forget them"), "{e}");
    }
}
