//! age, as far as sops needs it: identity files (X25519 `AGE-SECRET-KEY-1…`
//! and the post-quantum hybrid `AGE-SECRET-KEY-PQ-1…` of age 1.3) and the
//! decryption of a small armored age file (a sops data key) with them.
//!
//! Takes an identity file's text and an armored age file; gives the file's
//! plaintext. Both are untrusted: every length is checked, nothing here
//! panics, and errors never hold key material or plaintext. Secret bytes
//! live in [`Zeroizing`] buffers.

mod bech32;
mod format;
mod pq;

use std::fmt;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};
use zeroize::Zeroizing;

/// The age file key size.
const FILE_KEY_BYTES: usize = 16;

/// One secret key from an identity file.
pub enum Identity {
    X25519 {
        secret: Zeroizing<[u8; 32]>,
        /// The `age1…` recipient of this identity.
        recipient: String,
    },
    Hybrid(Box<pq::HybridIdentity>),
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.recipient())
    }
}

impl Identity {
    /// The public recipient string (`age1…` or `age1pq1…`).
    pub fn recipient(&self) -> &str {
        match self {
            Identity::X25519 { recipient, .. } => recipient,
            Identity::Hybrid(h) => h.recipient(),
        }
    }

    /// Parse one `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…` line.
    pub fn parse(line: &str) -> Result<Identity, String> {
        let upper = line.starts_with("AGE-SECRET-KEY-");
        if !upper && !line.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
            return Err(
                "this is not an age identity: lines must start with AGE-SECRET-KEY-1 (X25519) \
                 or AGE-SECRET-KEY-PQ-1 (post-quantum); SSH keys and plugin identities are not supported"
                    .into(),
            );
        }
        let (hrp, data) = bech32::decode(line).map_err(|e| format!("the key {e}"))?;
        match hrp.as_str() {
            "age-secret-key-" => {
                let secret: [u8; 32] = data[..]
                    .try_into()
                    .map_err(|_| format!("an X25519 key has 32 bytes, this one {}", data.len()))?;
                let secret = Zeroizing::new(secret);
                let public = x25519(*secret, X25519_BASEPOINT_BYTES);
                Ok(Identity::X25519 {
                    secret,
                    recipient: bech32::encode("age", &public),
                })
            }
            "age-secret-key-pq-" => Ok(Identity::Hybrid(Box::new(pq::HybridIdentity::from_seed(&data)?))),
            other => Err(format!(
                "unknown identity type \"{}\"",
                other.to_ascii_uppercase()
            )),
        }
    }

    /// Unwrap the file key from one stanza; `Ok(None)` when the stanza is
    /// not for this identity.
    fn unwrap(&self, stanza: &format::Stanza) -> Result<Option<Zeroizing<[u8; FILE_KEY_BYTES]>>, AgeError> {
        match self {
            Identity::X25519 { secret, recipient } => unwrap_x25519(secret, recipient, stanza),
            Identity::Hybrid(h) => h.unwrap(stanza),
        }
    }
}

/// Why an age file could not be decrypted. Never holds secret bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgeError {
    /// The data is not a well-formed (armored) age file.
    Malformed(String),
    /// No identity unwraps any stanza.
    NoMatch { stanzas: Vec<String> },
    /// The file key was found but the header MAC or payload does not verify.
    Corrupt(&'static str),
    /// An age feature sops files do not use (passphrases).
    Unsupported(&'static str),
}

impl fmt::Display for AgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgeError::Malformed(why) => write!(f, "the age-encrypted data key is malformed: {why}"),
            AgeError::NoMatch { stanzas } => write!(
                f,
                "no identity matches (the data key is wrapped as {})",
                stanzas.join(", ")
            ),
            AgeError::Corrupt(why) => write!(f, "the age-encrypted data key is corrupt: {why}"),
            AgeError::Unsupported(why) => f.write_str(why),
        }
    }
}

/// HKDF-SHA256 with a 32-byte output.
fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out[..]);
    out
}

/// ChaCha20-Poly1305 open with a zero nonce, as age wraps file keys.
fn open_file_key(key: &[u8; 32], body: &[u8], nonce: &[u8; 12]) -> Option<Zeroizing<[u8; FILE_KEY_BYTES]>> {
    if body.len() != FILE_KEY_BYTES + 16 {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(key.into());
    let mut buf = Zeroizing::new([0u8; FILE_KEY_BYTES]);
    buf.copy_from_slice(&body[..FILE_KEY_BYTES]);
    let tag = chacha20poly1305::Tag::try_from(&body[FILE_KEY_BYTES..]).ok()?;
    cipher
        .decrypt_inout_detached(nonce.into(), &[], (&mut buf[..]).into(), &tag)
        .ok()?;
    Some(buf)
}

fn unwrap_x25519(
    secret: &Zeroizing<[u8; 32]>,
    recipient: &str,
    stanza: &format::Stanza,
) -> Result<Option<Zeroizing<[u8; FILE_KEY_BYTES]>>, AgeError> {
    if stanza.kind != "X25519" {
        return Ok(None);
    }
    let [share] = stanza.args.as_slice() else {
        return Err(AgeError::Malformed(
            "an X25519 stanza must have one argument".into(),
        ));
    };
    let share: [u8; 32] = format::decode_b64(share)
        .ok()
        .and_then(|s| <[u8; 32]>::try_from(&s[..]).ok())
        .ok_or_else(|| AgeError::Malformed("the X25519 share is not 32 bytes of base64".into()))?;
    if stanza.body.len() != FILE_KEY_BYTES + 16 {
        return Err(AgeError::Malformed(
            "the X25519 stanza body has the wrong size".into(),
        ));
    }
    let shared = Zeroizing::new(x25519(**secret, share));
    if shared.iter().all(|&b| b == 0) {
        return Err(AgeError::Malformed(
            "the X25519 share is a low-order point".into(),
        ));
    }
    // The recipient's public key, raw: decode our own bech32 string.
    let public = match bech32::decode(recipient) {
        Ok((_, p)) => p,
        Err(_) => return Ok(None),
    };
    let mut salt = Vec::with_capacity(64);
    salt.extend_from_slice(&share);
    salt.extend_from_slice(&public);
    let key = hkdf32(&salt, &shared[..], b"age-encryption.org/v1/X25519");
    Ok(open_file_key(&key, &stanza.body, &[0u8; 12]))
}

/// Decrypt an armored (or binary) age file with any of `identities`.
pub fn decrypt(data: &[u8], identities: &[Identity]) -> Result<Zeroizing<Vec<u8>>, AgeError> {
    let binary = format::dearmor(data)?;
    let header = format::Header::parse(&binary)?;
    if header.stanzas.iter().any(|s| s.kind == "scrypt") {
        return Err(AgeError::Unsupported(
            "the data key is encrypted with an age passphrase (scrypt), which sops does not write and mooring does not support",
        ));
    }
    let mut file_key = None;
    'search: for stanza in &header.stanzas {
        for identity in identities {
            if let Some(key) = identity.unwrap(stanza)? {
                file_key = Some(key);
                break 'search;
            }
        }
    }
    let Some(file_key) = file_key else {
        return Err(AgeError::NoMatch {
            stanzas: header.stanzas.iter().map(|s| s.kind.clone()).collect(),
        });
    };
    header.verify_mac_over(&binary, &file_key[..])?;
    format::decrypt_payload(&file_key[..], &binary[header.len..])
}
