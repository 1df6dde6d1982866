//! What mooring's integration tests (`tests/it`) and benches (`benches/`)
//! share: the test environment and the one skip rule ([`support`]), real
//! servers started on loopback by the test itself — git daemon and
//! `git http-backend` ([`gitserver`]), the distribution registry
//! ([`registry`]), the project's own Kubernetes API server ([`apiserver`]),
//! TLS fronts for them ([`tls`]), a recording HTTP server ([`recorder`]), a
//! TCP fault proxy ([`faultproxy`]), a Helm repository's static file server
//! ([`statichttp`]) — generated configs ([`genconfig`],
//! [`rng`]), the Helm conformance corpus ([`helm_corpus`]) and bench timing
//! ([`bench`]).
//!
//! It does not link the mooring library: tests drive the real binary
//! ([`support::mooring_bin`]). Everything here panics with a message on a
//! broken setup: it is test code.

// `new` makes temp dirs, certificates, servers: not a `Default`.
#![allow(clippy::new_without_default)]

pub mod apiserver;
pub mod bench;
pub mod faultproxy;
pub mod genconfig;
pub mod gitserver;
pub mod helm_corpus;
pub mod recorder;
pub mod registry;
pub mod rng;
pub mod server;
pub mod statichttp;
pub mod support;
pub mod tls;
