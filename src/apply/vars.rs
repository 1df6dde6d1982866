//! What an app reads from ConfigMaps and Secrets: its substitution
//! variables, as Flux's postBuild gathers them — every `substitute-from`
//! in order (a later one overrides an earlier one of the same name), then
//! the inline `substitute` over them all; files are read by
//! [`crate::render::vars`] — and a chart's `values-from`, as Flux's
//! `valuesFrom` reads them (one key of each object, in order). A missing
//! optional source gives nothing; a missing required one fails the app,
//! naming it (retryable: it may be created).
//!
//! Values read from Secrets (and files) never appear in errors or logs:
//! messages name the source and the variable or key, not its value.

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use super::cluster::Cluster;
use crate::config::{App, VarSource};
use crate::reason::{Classify, Reason};
use crate::sops::Keys;

/// Why variables could not be gathered.
#[derive(Debug, thiserror::Error)]
#[error("{option} {source_name}: {message}")]
pub struct Error {
    /// `substitute-from` or `values-from`.
    pub option: &'static str,
    pub source_name: String,
    pub message: String,
    /// A cluster that did not answer may answer later; a missing object
    /// or a bad file stays so until something changes.
    pub retryable: bool,
}

impl Error {}

/// The variables of `app`, whose source artifact is at `root`; `cluster`
/// is needed only for ConfigMap and Secret sources.
pub async fn resolve(
    app: &App,
    root: &Path,
    cluster: Option<&Cluster>,
    keys: Option<&Keys>,
) -> Result<Vec<(String, String)>, Error> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for from in &app.substitute_from {
        let name = from.from.to_string();
        let fail = |message: String, retryable: bool| Error {
            option: "substitute-from",
            source_name: name.clone(),
            message,
            retryable,
        };
        let found = match &from.from {
            VarSource::File(path) => crate::render::vars::from_file(root, path, keys)
                .map_err(|e| fail(e.to_string(), e.retryable()))?,
            VarSource::ConfigMap { namespace, name } | VarSource::Secret { namespace, name } => {
                let Some(cluster) = cluster else {
                    return Err(fail("needs an app on a cluster".into(), false));
                };
                let secret = matches!(from.from, VarSource::Secret { .. });
                from_cluster(cluster, namespace, name, secret, None)
                    .await
                    .map_err(|(message, retryable)| fail(message, retryable))?
            }
        };
        let Some(found) = found else {
            if from.optional {
                continue;
            }
            return Err(fail(
                "not found".into(),
                matches!(from.from, VarSource::ConfigMap { .. } | VarSource::Secret { .. }),
            ));
        };
        for (k, v) in found {
            if !is_var_name(&k) {
                return Err(fail(
                    format!(
                        "`{k}` is not a valid variable name: letters, digits and `_`, not starting with a digit (Flux refuses it too)"
                    ),
                    false,
                ));
            }
            vars.push((k, v));
        }
    }
    vars.extend(app.substitute.iter().cloned());
    Ok(vars)
}

/// The values of `app`'s `values-from` (Flux's `valuesFrom`), in order,
/// as values layers for [`crate::render::chart`]: the `values-key` of each
/// ConfigMap or Secret of `cluster`.
pub async fn values(app: &App, cluster: Option<&Cluster>) -> Result<Vec<crate::helm::Layer>, Error> {
    let mut layers = Vec::new();
    for from in &app.helm.values_from {
        let key = &from.values_key;
        let fail = |message: String, retryable: bool| Error {
            option: "values-from",
            source_name: from.from.to_string(),
            message,
            retryable,
        };
        let (VarSource::ConfigMap { namespace, name } | VarSource::Secret { namespace, name }) = &from.from
        else {
            return Err(fail("is not a ConfigMap or a Secret".into(), false));
        };
        let Some(cluster) = cluster else {
            return Err(fail("needs an app on a cluster".into(), false));
        };
        let secret = matches!(from.from, VarSource::Secret { .. });
        let found = from_cluster(cluster, namespace, name, secret, Some(key))
            .await
            .map_err(|(message, retryable)| fail(message, retryable))?;
        let value = match found {
            Some(mut data) if !data.is_empty() => data.swap_remove(0).1,
            Some(_) if from.optional => continue,
            Some(_) => return Err(fail(format!("has no key `{key}`"), true)),
            None if from.optional => continue,
            None => return Err(fail("not found".into(), true)),
        };
        layers.push(crate::render::chart::layer(
            format!("{} key `{key}`", from.from),
            from.target_path.as_deref(),
            value,
            secret,
        ));
    }
    Ok(layers)
}

/// Flux's `^[_[:alpha:]][_[:alpha:][:digit:]]*$`.
fn is_var_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The data of a ConfigMap or Secret (only the key `only`, when given);
/// `None` when it does not exist.
async fn from_cluster(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    secret: bool,
    only: Option<&str>,
) -> Result<Option<Vec<(String, String)>>, (String, bool)> {
    let wanted = |k: &String| only.is_none_or(|o| o == k);
    let client = cluster.client().clone();
    let failed = |e: kube::Error| {
        let retryable = !matches!(&e, kube::Error::Api(s) if s.code == 403 || s.code == 401);
        (format!("cannot read it: {}", super::kube::message(&e)), retryable)
    };
    if secret {
        let Some(s) = Api::<Secret>::namespaced(client, namespace)
            .get_opt(name)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (k, v) in s.data.unwrap_or_default().into_iter().filter(|(k, _)| wanted(k)) {
            let Ok(v) = String::from_utf8(v.0) else {
                return Err((format!("the value of `{k}` is not UTF-8 text"), false));
            };
            out.push((k, v));
        }
        Ok(Some(out))
    } else {
        let Some(c) = Api::<ConfigMap>::namespaced(client, namespace)
            .get_opt(name)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        Ok(Some(
            c.data
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| wanted(k))
                .collect(),
        ))
    }
}

impl Classify for Error {
    fn retryable(&self) -> bool {
        self.retryable
    }

    fn reason(&self) -> Reason {
        if self.option == "values-from" {
            Reason::RenderFailed
        } else {
            Reason::SubstituteFailed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_names() {
        for ok in ["a", "_A1", "cluster_name"] {
            assert!(is_var_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "ä"] {
            assert!(!is_var_name(bad), "{bad}");
        }
    }
}
