//! Integration tests: the real `mooring` binary, driven as a user would.
//! One module per area; `support` holds the shared `TestEnv`.

mod agent;
mod apiserver;
mod apiserver_kubectl;
mod automation;
mod diagnostics;
mod docs;
mod examples;
mod flux_image;
mod fuzz;
mod genconfig;
mod git_source;
mod gitserver;
mod helm;
mod helm_apps;
mod helm_corpus;
mod images;
mod kdl_fast;
mod kube;
mod kube_safety;
mod kustomize;
mod oci_source;
mod patch;
mod push;
mod registry;
mod rng;
mod schema;
mod security;
mod sops;
mod ssh_source;
mod support;
mod suspend_resume;
mod systemd;
mod validate;
