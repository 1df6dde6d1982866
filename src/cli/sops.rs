//! `mooring sops decrypt [--key KEYFILE]… [--ignore-mac] FILE`: print the
//! plaintext of a sops-encrypted file on stdout, in its own format (picked
//! from the file name as sops does). Exit 0 when decrypted, 1 with a
//! diagnostic on stderr when not, 2 on a usage error.

use super::Exit;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::sops::{self, Keys, Options};

pub fn decrypt(file: &Path, key_files: &[PathBuf], ignore_mac: bool) -> Exit {
    let keys = match load_keys(key_files) {
        Ok(keys) => keys,
        Err(code) => return code,
    };
    let options = Options {
        verify_mac: !ignore_mac,
    };
    match sops::decrypt_file(file, &keys, &options) {
        Ok(plain) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&plain).and_then(|()| out.flush()).is_err() {
                eprintln!("error: cannot write to standard output");
                return Exit::Failure;
            }
            Exit::Success
        }
        Err(e) => {
            report(&e);
            Exit::Failure
        }
    }
}

fn report(e: &sops::Error) {
    eprintln!("error: {e}");
    if let Some(help) = e.help() {
        eprintln!("  help: {help}");
    }
}

/// `--key` files, else `$SOPS_AGE_KEY_FILE`, else `$SOPS_AGE_KEY` (the
/// identities themselves), else sops's default key file.
fn load_keys(key_files: &[PathBuf]) -> Result<Keys, Exit> {
    let mut keys = Keys::default();
    for path in key_files {
        match Keys::from_file(path) {
            Ok(k) => keys.extend(k),
            Err(e) => {
                report(&e);
                return Err(Exit::Failure);
            }
        }
    }
    if !keys.is_empty() {
        return Ok(keys);
    }
    if std::env::var_os("SOPS_AGE_KEY_FILE").is_none_or(|v| v.is_empty())
        && let Some(inline) = std::env::var_os("SOPS_AGE_KEY").filter(|v| !v.is_empty())
    {
        return Keys::parse("$SOPS_AGE_KEY", inline.as_encoded_bytes()).map_err(|e| {
            report(&e);
            Exit::Failure
        });
    }
    match sops::default_key_file() {
        Some(path) => Keys::from_file(&path).map_err(|e| {
            report(&e);
            Exit::Failure
        }),
        None => {
            eprintln!("error: no age key to decrypt with");
            eprintln!("  help: pass --key KEYFILE, or set SOPS_AGE_KEY_FILE (or SOPS_AGE_KEY)");
            Err(Exit::Error)
        }
    }
}
