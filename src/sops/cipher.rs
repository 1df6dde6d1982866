//! The values sops encrypts and the MAC over them.
//!
//! A value is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`: AES-256-GCM with
//! the data key, a 32-byte IV, and the value's path (mapping keys joined
//! with `:`, plus a trailing `:`) as additional data, so a ciphertext moved
//! to another key does not decrypt. The MAC is SHA-512 over the plaintext
//! of the leaves in document order, encrypted with `lastmodified` as
//! additional data. The walk follows sops's `Tree.Decrypt` step by step.

use std::sync::LazyLock;

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use aes_gcm::aes::Aes256;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest as _, Sha512};
use zeroize::Zeroizing;

use super::metadata::Rule;
use super::tree::{Item, Key, Value, go_float_f, rfc3339_normalized};

/// The prefix of every encrypted value.
pub const ENC_PREFIX: &str = "ENC[AES256_GCM,";

/// sops's pattern, unanchored at the end as sops's is.
static ENC: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").expect("a valid regex")
});

/// Go's `base64.StdEncoding`: padding required, trailing bits allowed,
/// line breaks skipped.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

pub fn go_base64(s: &str) -> Option<Vec<u8>> {
    if s.contains(['\r', '\n']) {
        let clean: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        GO_STD.decode(clean).ok()
    } else {
        GO_STD.decode(s).ok()
    }
}

/// Why one value does not decrypt. Says nothing about the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The rule says encrypted, but the value is no `ENC[…]` string.
    NotEncrypted {
        rule: String,
        found: &'static str,
    },
    Malformed(&'static str),
    /// AES-GCM authentication failed: wrong data key, or the value (or its
    /// path) changed.
    Authentication,
    UnknownType(String),
    BadPlaintext(&'static str),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::NotEncrypted { rule, found } => write!(
                f,
                "the file's {rule} says this value is encrypted, but it is {found}, not an ENC[AES256_GCM,…] value"
            ),
            ValueError::Malformed(why) => write!(f, "the ENC[…] value is malformed: {why}"),
            ValueError::Authentication => f.write_str(
                "AES-GCM authentication failed: the encrypted value was changed, or moved from another key",
            ),
            ValueError::UnknownType(t) => write!(f, "the ENC[…] value has an unknown type \"{t}\""),
            ValueError::BadPlaintext(t) => write!(f, "the decrypted value is not a valid {t}"),
        }
    }
}

fn open<N>(key: &[u8; 32], iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), ValueError>
where
    AesGcm<Aes256, N>: aes_gcm::aead::AeadInOut + aes_gcm::aead::KeyInit,
    N: aes_gcm::aead::array::ArraySize,
{
    let cipher = <AesGcm<Aes256, N>>::new_from_slice(key).map_err(|_| ValueError::Malformed("bad key"))?;
    let nonce = aes_gcm::aead::Nonce::<AesGcm<Aes256, N>>::try_from(iv)
        .map_err(|_| ValueError::Malformed("bad iv"))?;
    let tag = aes_gcm::Tag::try_from(tag).map_err(|_| ValueError::Malformed("the tag is not 16 bytes"))?;
    cipher
        .decrypt_inout_detached(&nonce, aad, buf.into(), &tag)
        .map_err(|_| ValueError::Authentication)
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Decrypt one `ENC[…]` string with the path's additional data.
pub fn decrypt_value(enc: &str, key: &[u8; 32], aad: &str) -> Result<Value, ValueError> {
    let caps = ENC.captures(enc).ok_or(ValueError::NotEncrypted {
        rule: String::new(),
        found: "a string",
    })?;
    let field = |i: usize, what: &'static str| {
        caps.get(i)
            .and_then(|m| go_base64(m.as_str()))
            .ok_or(ValueError::Malformed(what))
    };
    let data = field(1, "its data is not base64")?;
    let iv = field(2, "its iv is not base64")?;
    let tag = field(3, "its tag is not base64")?;
    let kind = caps.get(4).map(|m| m.as_str()).unwrap_or_default();
    let mut buf = Zeroizing::new(data);
    match iv.len() {
        32 => open::<U32>(key, &iv, aad.as_bytes(), &mut buf, &tag)?,
        12 => open::<U12>(key, &iv, aad.as_bytes(), &mut buf, &tag)?,
        _ => return Err(ValueError::Malformed("its iv is neither 32 bytes (sops) nor 12")),
    }
    let text = || -> Result<Zeroizing<String>, ValueError> {
        String::from_utf8(buf.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| ValueError::BadPlaintext("UTF-8 text"))
    };
    Ok(match kind {
        "str" => Value::Str(text()?.to_string()),
        "int" | "int64" => Value::Int(text()?.parse().map_err(|_| ValueError::BadPlaintext("integer"))?),
        "float" => {
            let t = text()?;
            let f = match t.as_str() {
                "+Inf" | "Inf" | "+inf" | "inf" => f64::INFINITY,
                "-Inf" | "-inf" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| ValueError::BadPlaintext("number"))?,
            };
            Value::Float(f)
        }
        "bool" => Value::Bool(go_parse_bool(&text()?).ok_or(ValueError::BadPlaintext("boolean"))?),
        "bytes" => Value::Bytes(buf.to_vec()),
        "time" => Value::Time(rfc3339_normalized(&text()?).ok_or(ValueError::BadPlaintext("RFC 3339 time"))?),
        "comment" => Value::Comment(text()?.to_string()),
        other => return Err(ValueError::UnknownType(other.chars().take(16).collect())),
    })
}

/// sops's `ToBytes`: what the MAC hashes for a leaf.
fn mac_bytes(v: &Value) -> Option<Zeroizing<Vec<u8>>> {
    Some(Zeroizing::new(match v {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) => go_float_f(*f).into_bytes(),
        Value::Bool(true) => b"True".to_vec(),
        Value::Bool(false) => b"False".to_vec(),
        Value::Bytes(b) => b.clone(),
        Value::Time(t) => t.as_bytes().to_vec(),
        Value::Comment(_) | Value::Null | Value::Map(_) | Value::Seq(_) => return None,
    }))
}

/// One value that failed: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub path: String,
    pub error: ValueError,
}

/// The most failures collected before the walk gives up.
const MAX_FAILURES: usize = 20;

/// The state of one decryption walk.
pub struct Walk<'a> {
    key: &'a [u8; 32],
    rule: &'a Rule,
    mac_only_encrypted: bool,
    hash: Sha512,
    /// Mapping keys from the root: the additional data.
    path: Vec<String>,
    /// The same with list indexes, for messages.
    shown: Vec<String>,
    comments: Vec<Vec<String>>,
    pub failures: Vec<Failure>,
}

/// sops's fixed start of a `mac_only_encrypted` MAC: SHA-256 of "sops".
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b,
    0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

impl<'a> Walk<'a> {
    pub fn new(key: &'a [u8; 32], rule: &'a Rule, mac_only_encrypted: bool) -> Walk<'a> {
        let mut hash = Sha512::new();
        if mac_only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        Walk {
            key,
            rule,
            mac_only_encrypted,
            hash,
            path: Vec::new(),
            shown: Vec::new(),
            comments: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The MAC of everything walked, as sops prints it (upper-case hex).
    pub fn mac(self) -> String {
        self.hash.finalize().iter().map(|b| format!("{b:02X}")).collect()
    }

    fn shown_path(&self) -> String {
        let mut s = String::new();
        for part in &self.shown {
            if !part.starts_with('[') && !s.is_empty() {
                s.push('.');
            }
            s.push_str(part);
        }
        if s.is_empty() { "(top level)".into() } else { s }
    }

    fn fail(&mut self, error: ValueError) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(Failure {
                path: self.shown_path(),
                error,
            });
        }
    }

    fn aad(path: &[String]) -> String {
        let mut s = path.join(":");
        s.push(':');
        s
    }

    /// A comment the rule encrypts: decrypted if it decrypts, else kept.
    /// sops attaches comments to a depth by yaml.v3's rules; shallower
    /// paths are tried too, so placement differences cost nothing.
    fn comment(&mut self, text: &mut String) {
        if !self.rule.encrypts(&self.path, &self.comments, true) || !text.starts_with(ENC_PREFIX) {
            return;
        }
        for depth in (0..=self.path.len()).rev() {
            if let Ok(Value::Comment(plain) | Value::Str(plain)) =
                decrypt_value(text, self.key, &Self::aad(&self.path[..depth]))
            {
                *text = plain;
                return;
            }
        }
    }

    fn leaf(&mut self, v: &mut Value) {
        let encrypted = self.rule.encrypts(&self.path, &self.comments, false);
        if encrypted {
            match v {
                Value::Str(s) if s.is_empty() => {}
                Value::Str(s) => match decrypt_value(s, self.key, &Self::aad(&self.path)) {
                    Ok(plain) => {
                        let mut old = std::mem::replace(v, plain);
                        old.wipe();
                    }
                    Err(ValueError::NotEncrypted { .. }) => {
                        let rule = self.rule.describe();
                        self.fail(ValueError::NotEncrypted {
                            rule,
                            found: "a plain string",
                        });
                        return;
                    }
                    Err(e) => {
                        self.fail(e);
                        return;
                    }
                },
                other => {
                    let rule = self.rule.describe();
                    let found = other.kind();
                    self.fail(ValueError::NotEncrypted { rule, found });
                    return;
                }
            }
        }
        if (!self.mac_only_encrypted || encrypted)
            && let Some(bytes) = mac_bytes(v)
        {
            self.hash.update(&bytes[..]);
        }
    }

    fn value(&mut self, v: &mut Value) {
        match v {
            Value::Map(items) => self.branch(items),
            Value::Seq(values) => self.seq(values),
            Value::Null => {}
            Value::Comment(text) => self.comment(text),
            _ => self.leaf(v),
        }
    }

    fn seq(&mut self, values: &mut [Value]) {
        self.comments.push(Vec::new());
        for (i, v) in values.iter_mut().enumerate() {
            let is_comment = matches!(v, Value::Comment(_));
            if let Value::Comment(c) = v {
                let c = c.clone();
                if let Some(level) = self.comments.last_mut() {
                    level.push(c);
                }
            }
            self.shown.push(format!("[{i}]"));
            self.value(v);
            self.shown.pop();
            if !is_comment && let Some(level) = self.comments.last_mut() {
                level.clear();
            }
        }
        self.comments.pop();
    }

    pub fn branch(&mut self, items: &mut [Item]) {
        self.comments.push(Vec::new());
        for item in items.iter_mut() {
            match &mut item.key {
                Key::Comment(c) => {
                    let seen = c.clone();
                    if let Some(level) = self.comments.last_mut() {
                        level.push(seen);
                    }
                    self.comment(c);
                    continue;
                }
                Key::Str(k) => {
                    let value_is_comment = matches!(item.value, Value::Comment(_));
                    if let Value::Comment(c) = &item.value {
                        let c = c.clone();
                        if let Some(level) = self.comments.last_mut() {
                            level.push(c);
                        }
                    }
                    self.path.push(k.clone());
                    self.shown.push(k.clone());
                    self.value(&mut item.value);
                    self.path.pop();
                    self.shown.pop();
                    if !value_is_comment && let Some(level) = self.comments.last_mut() {
                        level.clear();
                    }
                }
            }
        }
        self.comments.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let key = [7u8; 32];
        for bad in [
            "ENC[AES256_GCM,data:,iv:,tag:,type:str]",
            "ENC[AES256_GCM,data:!!,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAA,type:str]",
            "ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]",
            "plain",
        ] {
            assert!(decrypt_value(bad, &key, "a:").is_err(), "{bad}");
        }
    }
}
