//! mooring: a single-binary GitOps agent. One KDL file describes sources,
//! apps, image policies, automations, receivers, notifications and
//! suspensions; the agent runs
//! fetch → patch → commit → apply loops against Kubernetes or a directory.
//!
//! Stages live in their own modules; see `docs/` for the user-facing
//! reference.
// Module docs are written for the engineers who read them with
// `cargo doc --document-private-items`, and link to private items.
#![allow(rustdoc::private_intra_doc_links)]

pub mod agent;
pub mod apply;
pub mod atomic;
pub mod automation;
pub mod backoff;
mod busy;
pub mod cli;
pub mod config;
pub mod git;
pub mod gomatch;
pub mod goyaml;
pub mod helm;
pub mod image;
pub mod import;
pub mod kustomize;
pub mod notify;
pub mod progress;
pub mod quoted;
pub mod reason;
pub mod render;
pub mod server;
pub mod sops;
pub mod source;
pub mod tags;
pub mod tls;
pub mod walk;
