//! Stub, to be listed in fuzz/Cargo.toml once src/helm/ is on main: feed
//! the bytes as a chart archive (`.tgz`) to the Helm chart loader and
//! template it with empty values; it must return an error or manifests,
//! never panic, stay within its caps and never write outside its temp dir.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|_data: &[u8]| {});
