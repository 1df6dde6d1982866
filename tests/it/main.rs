//! Integration tests: the real `mooring` binary, driven as a user would.
//! One module per area; `support` holds the shared `TestEnv`.

mod diagnostics;
mod examples;
mod fuzz;
mod schema;
mod support;
mod suspend_resume;
mod validate;
