//! SOPS envelopes on any bytes, in every format: loading, the metadata,
//! `ENC[…]` values, age stanzas, key files and whole decryptions (with no
//! key: everything up to the data key) return an error or a value, never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mooring::sops::{self, Format, Keys, Options};

fuzz_target!(|data: &[u8]| {
    let keys = Keys::default();
    for format in [
        Format::Yaml,
        Format::Json,
        Format::Dotenv,
        Format::Ini,
        Format::Binary,
    ] {
        let _ = sops::is_encrypted(data, format);
        if let Err(e) = sops::decrypt("fuzz", data, format, &keys, &Options::default()) {
            let _ = e.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sops::decrypt_manifest("fuzz.yaml", text, &keys, &Options::default());
    }
    let _ = Keys::parse("fuzz.agekey", data);
});
