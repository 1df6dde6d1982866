//! Output order: kustomize's legacy order (by kind, namespaces and RBAC
//! first, webhooks last, then by group/version/kind, namespace and name) or
//! `fifo` (the order the build made).

use std::collections::HashMap;

use super::error::{Error, Result, code};
use super::kustomization::SortOptions;
use super::resource::{ResId, Resource};

pub use super::kustomization::Order;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

/// Sort as the kustomization's `sortOptions` say (legacy when absent).
pub fn sort(list: &mut [Resource], options: Option<&SortOptions>) -> Result<()> {
    let (order, first, last) = match options {
        None => (Order::Legacy, None, None),
        Some(o) => {
            let order = match o.order {
                Some(order) => order,
                None if o.has_legacy_options => {
                    return Err(Error::new(
                        code::INVALID,
                        "the field 'sortOptions.order' must be one of [legacy, fifo], got ''",
                    )
                    .help("set `order: legacy` to use legacySortOptions"));
                }
                None => {
                    return Err(Error::new(
                        code::INVALID,
                        "the field 'sortOptions.order' must be one of [legacy, fifo], got ''",
                    ));
                }
            };
            if order != Order::Legacy && o.has_legacy_options {
                return Err(Error::new(
                    code::INVALID,
                    "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'",
                )
                .help("remove legacySortOptions, or set `order: legacy`"));
            }
            (order, o.order_first.as_deref(), o.order_last.as_deref())
        }
    };
    if order == Order::Fifo {
        return Ok(());
    }
    let (first, last): (Vec<&str>, Vec<&str>) = if options.is_some_and(|o| o.has_legacy_options) {
        (
            first.unwrap_or_default().iter().map(String::as_str).collect(),
            last.unwrap_or_default().iter().map(String::as_str).collect(),
        )
    } else {
        (ORDER_FIRST.to_vec(), ORDER_LAST.to_vec())
    };
    let mut rank: HashMap<&str, i64> = HashMap::new();
    for (i, k) in first.iter().enumerate() {
        rank.insert(k, i as i64 - first.len() as i64);
    }
    for (i, k) in last.iter().enumerate() {
        rank.insert(k, 1 + i as i64);
    }
    let keys: Vec<(i64, String, String)> = list
        .iter()
        .map(|r| {
            let id = r.cur_id();
            let gvk = id.gvk.legacy_string();
            (
                *rank.get(id.gvk.kind.as_str()).unwrap_or(&0),
                gvk,
                legacy_sort_string(&id),
            )
        })
        .collect();
    let mut idx: Vec<usize> = (0..list.len()).collect();
    idx.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut sorted: Vec<Resource> = idx.iter().map(|&i| std::mem::take(&mut list[i])).collect();
    for (slot, r) in list.iter_mut().zip(sorted.drain(..)) {
        *slot = r;
    }
    Ok(())
}

fn legacy_sort_string(id: &ResId) -> String {
    let ns = if id.namespace.is_empty() {
        "~X"
    } else {
        &id.namespace
    };
    let name = if id.name.is_empty() { "~N" } else { &id.name };
    format!("{}|{ns}|{name}", id.gvk.legacy_string())
}
