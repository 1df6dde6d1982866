//! Markers and setters: arrive in the next change.
