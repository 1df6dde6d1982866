//! Image automation: arrives in the next change.

pub mod git;
pub mod setters;
