//! Importers: another tool's objects in, the equivalent mooring config out
//! (as text, with a comment on every node saying where it came from).
//! `flux` reads a Flux repository. The files read are the user's own, but
//! they are read with the render rules for untrusted input all the same
//! (size caps, no symlinks, nothing outside the root).

pub mod flux;
mod kdl;
