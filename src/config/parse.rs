//! Text → [`Config`](super::Config). Three passes, each collecting every
//! problem it sees:
//!
//! 1. KDL v2 syntax, into a compact tree ([`syntax`](super::syntax));
//! 2. [`shape`], against the [`schema`](super::schema) table: unknown nodes
//!    and properties, counts, value types and formats, exclusive options;
//! 3. [`decode()`] into the typed model, with the checks that need more than
//!    one value (an OCI-only option on a git source, a filter's `extract`).
//!
//! Decoding never stops at a problem: a bad value is reported and replaced
//! by its default, so that later checks (references, cycles) still run and
//! the user sees everything in one go.

mod decode;
mod shape;
mod spans;

pub use decode::decode;
pub use shape::check_shape;
pub(super) use shape::find_spec;
