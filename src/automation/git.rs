//! Commit and push: arrive in the next change.
