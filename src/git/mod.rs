//! Git, as sources and automations both speak it: takes a configured git
//! source (URL, `auth`, `ca-file`, `timeout`, `limits`), gives a bare
//! repository fetched from it and the one [`Error`] every git step
//! fails with, classified once for status ([`crate::reason::Classify`]).
//!
//! - [`remote`]: the URL as it may be shown ([`redact`]), credentials only
//!   to the configured origin and in clear text only to this machine
//!   ([`credentials_allowed`]), the one way to connect;
//! - [`secrets`]: credentials read from their files at each use, never
//!   written to disk, scrubbed from every message;
//! - [`timeout`]: blocking work on a thread of its own, its directory
//!   marked busy, ended with [`Error::Timeout`] at the timeout;
//! - [`error`]: the error and the one classifier of gix's errors;
//! - [`cache`]: the bare repository, its one shallow fetch and its one
//!   recovery (a damaged repository is removed and fetched again, once);
//! - [`progress`]: a fetch's phases as progress lines on a terminal;
//! - [`pktline`]: pkt-line framing for what gix does not send itself (the
//!   push's commands), through gix's packetline module.
//!
//! What a source makes of a fetch (an artifact) is in `source::git`; what
//! an automation does with its clone (worktree, commit, push) is in
//! `automation::git`. Everything from the remote is untrusted: object
//! sizes are capped while a pack is indexed (`alloc_limit`), and
//! nothing here reads the user's or the machine's git config.

pub(crate) mod cache;
mod error;
pub(crate) mod pktline;
mod progress;
pub(crate) mod refs;
pub(crate) mod remote;
pub(crate) mod secrets;
pub(crate) mod timeout;

pub use error::{Error, Stage};
pub use remote::{credentials_allowed, redact};
pub use secrets::secret_text;
