//! Integration tests: the real `mooring` binary, driven as a user would.
//! One module per area. The servers and helpers they share live in the
//! `mooring-testkit` crate (testkit/), re-exported here under the names
//! the tests use (`crate::support::TestEnv`, `crate::gitserver::Repo`…).

pub use mooring_testkit::{
    apiserver, faultproxy, genconfig, gitserver, helm_corpus, recorder, registry, rng, statichttp, support,
    tls,
};

mod agent;
mod apiserver_kubectl;
mod automation;
mod completions;
mod diagnostics;
mod docs;
mod events;
mod examples;
mod faults;
mod flux_apps;
mod flux_image;
mod friendly;
mod fuzz;
mod git_source;
mod graph;
mod helm;
mod helm_apps;
mod hooks;
mod https;
mod idle;
mod images;
mod import_flux;
mod kdl_syntax;
mod kube;
mod kube_safety;
mod kustomize;
mod layering;
mod leader;
mod multicluster;
mod notify;
mod oci_source;
mod page;
mod patch;
mod push;
mod schema;
mod security;
mod sops;
mod ssh_source;
mod suspend_resume;
mod systemd;
mod validate;
