//! SOPS decryption with age keys, as Flux's kustomize-controller does it.
//!
//! Takes a sops-encrypted file (YAML with one or more documents, JSON,
//! dotenv, INI or binary) and age identities ([`Keys`], from key files as
//! age writes them), and gives the plaintext document in any of those
//! formats ([`decrypt`]). For Kubernetes objects after a build,
//! [`decrypt_manifest`] decrypts an object encrypted as a whole and the
//! sops documents Flux finds base64'd inside a Secret's `data`. Files a
//! kustomization's `secretGenerator` reads are decrypted before the build,
//! as Flux's `DecryptSources` does: when [`is_encrypted`] in
//! [`Format::for_path`] (`envs` files: [`Format::for_env_file`]),
//! [`decrypt`] them in that format.
//!
//! Steps, as sops's library path runs them: load the file and its `sops`
//! metadata; unwrap the data key from the age recipients (several key
//! groups are combined with Shamir's scheme); decrypt every value the
//! file's rule marks as encrypted, with the value's path as AES-GCM
//! additional data; and, unless [`Options::verify_mac`] is off, check the
//! MAC over the whole tree (Flux skips this by default; mooring does not).
//! Files whose data key has no age recipient (PGP, KMS, Vault only) are
//! refused, naming the key types they have.
//!
//! Rules for untrusted input: files are capped at [`MAX_FILE_BYTES`],
//! nothing here panics on any input, and errors name the file and the path
//! of the failing value, never a value. Plaintext exists only in memory:
//! in [`Zeroizing`] buffers and trees wiped on drop.

mod age;
mod cipher;
mod format;
#[cfg(test)]
mod fuzz;
mod metadata;
mod object;
mod shamir;
mod tree;

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use format::Format;
pub use object::{decrypt_manifest, decrypt_object, is_encrypted_object};

use metadata::Metadata;
use tree::Document;

/// The largest file decrypted (Flux's limit is 5 MiB).
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// The largest age identity file read (age's own limit).
pub const MAX_KEY_FILE_BYTES: u64 = 16 << 20;

/// How to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Check the file's MAC (sops does; Flux does not by default). With it
    /// off, values that were edited outside sops — unencrypted ones, or
    /// whole added or removed values — go unnoticed.
    pub verify_mac: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { verify_mac: true }
    }
}

/// age identities to decrypt with.
#[derive(Default)]
pub struct Keys {
    identities: Vec<age::Identity>,
    /// Where the identities came from, for messages.
    sources: Vec<String>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recipients: Vec<String> = self.recipients().map(metadata::short).collect();
        f.debug_struct("Keys")
            .field("recipients", &recipients)
            .field("sources", &self.sources)
            .finish()
    }
}

impl Keys {
    /// Read an age identity file: one `AGE-SECRET-KEY-1…` or
    /// `AGE-SECRET-KEY-PQ-1…` per line; empty lines and lines starting with
    /// `#` are skipped.
    pub fn from_file(path: &Path) -> Result<Keys, Error> {
        let name = path.display().to_string();
        let bytes = read_capped(path, MAX_KEY_FILE_BYTES).map_err(|kind| Error::new(&name, kind))?;
        Keys::parse(&name, &bytes)
    }

    /// Parse identity-file text; `source` names it in messages.
    pub fn parse(source: &str, text: &[u8]) -> Result<Keys, Error> {
        let text = std::str::from_utf8(text).map_err(|_| {
            Error::new(
                source,
                ErrorKind::KeyFile {
                    line: None,
                    reason: "the key file is not UTF-8 text".into(),
                },
            )
        })?;
        let mut keys = Keys::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::Identity::parse(line).map_err(|reason| {
                Error::new(
                    source,
                    ErrorKind::KeyFile {
                        line: Some(n + 1),
                        reason,
                    },
                )
            })?;
            keys.identities.push(identity);
        }
        if keys.identities.is_empty() {
            return Err(Error::new(
                source,
                ErrorKind::KeyFile {
                    line: None,
                    reason: "the key file holds no age identity".into(),
                },
            ));
        }
        keys.sources.push(source.to_string());
        Ok(keys)
    }

    /// Add the identities of `other` (e.g. a global key file and an app's).
    pub fn extend(&mut self, other: Keys) {
        let mut other = other;
        self.identities.append(&mut other.identities);
        self.sources.append(&mut other.sources);
    }

    /// The public recipients of these identities.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.identities.iter().map(age::Identity::recipient)
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }
}

/// A decryption failure: the file (or object) and what went wrong.
#[derive(Debug)]
pub struct Error {
    pub file: String,
    pub kind: ErrorKind,
}

/// What went wrong. No variant holds a secret or a decrypted value.
#[derive(Debug)]
pub enum ErrorKind {
    Read(std::io::Error),
    TooLarge {
        limit: u64,
    },
    KeyFile {
        line: Option<usize>,
        reason: String,
    },
    Parse {
        format: Format,
        error: format::ParseError,
    },
    NotEncrypted {
        format: Format,
    },
    Metadata(metadata::MetadataError),
    /// The data key has no age recipient at all.
    NoAgeRecipient {
        keys: Vec<String>,
    },
    /// None of our identities is a recipient of the data key.
    NoMatchingKey {
        file_recipients: Vec<String>,
        our_recipients: Vec<String>,
        other_keys: Vec<String>,
    },
    /// A key group could not be opened although it names one of our recipients.
    DataKey {
        reason: String,
    },
    Values {
        failures: Vec<cipher::Failure>,
    },
    Mac(MacError),
    Emit {
        format: Format,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacError {
    Missing,
    Undecryptable,
    Mismatch,
}

impl Error {
    fn new(file: &str, kind: ErrorKind) -> Error {
        Error {
            file: file.to_string(),
            kind,
        }
    }

    /// How to fix it, when there is something to say.
    pub fn help(&self) -> Option<String> {
        Some(match &self.kind {
            ErrorKind::KeyFile { .. } => {
                "write one age identity per line (age-keygen output: AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1…); lines starting with # are comments".into()
            }
            ErrorKind::NotEncrypted { format } => format!(
                "this {format} file has no sops metadata; encrypt it with `sops encrypt`, or check that its extension matches its format"
            ),
            ErrorKind::NoAgeRecipient { .. } => {
                "mooring decrypts with age keys only: add an age recipient with `sops updatekeys` (after adding it to .sops.yaml) or `sops rotate --add-age RECIPIENT`".into()
            }
            ErrorKind::NoMatchingKey { .. } => {
                "use the key file holding the identity of one of the file's recipients, or re-encrypt the file for your key with `sops rotate --add-age RECIPIENT`".into()
            }
            ErrorKind::Values { failures } if failures.iter().any(|f| matches!(f.error, cipher::ValueError::NotEncrypted { .. })) => {
                "a value meant to be encrypted was written in clear: re-encrypt the file with `sops encrypt`, not by hand".into()
            }
            ErrorKind::Values { .. } => {
                "the file was changed after it was encrypted: restore it from version control, or edit it with `sops edit`".into()
            }
            ErrorKind::Mac(MacError::Missing) => {
                "the file has no MAC; re-encrypt it with sops, or (at your own risk) turn off MAC verification as Flux does by default".into()
            }
            ErrorKind::Mac(_) => {
                "the file was changed after it was encrypted (a value edited, added or removed, or a build step such as kustomize's namespace or labels changed it): edit encrypted files with `sops edit`, encrypt with `--mac-only-encrypted` so that only encrypted values count, or turn off MAC verification as Flux does by default".into()
            }
            ErrorKind::Metadata(_) | ErrorKind::Parse { .. } => {
                "the file's sops metadata or structure is damaged: restore it from version control".into()
            }
            ErrorKind::DataKey { .. } => "the file's encrypted data key is damaged: restore the file from version control".into(),
            _ => return None,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match &self.kind {
            ErrorKind::Read(e) => write!(f, "cannot read: {e}"),
            ErrorKind::TooLarge { limit } => write!(f, "the file is larger than {limit} bytes"),
            ErrorKind::KeyFile {
                line: Some(l),
                reason,
            } => write!(f, "line {l}: {reason}"),
            ErrorKind::KeyFile { line: None, reason } => f.write_str(reason),
            ErrorKind::Parse { format, error } => write!(f, "not a valid {format} file: {error}"),
            ErrorKind::NotEncrypted { format } => {
                write!(f, "not a sops-encrypted {format} file (no sops metadata)")
            }
            ErrorKind::Metadata(e) => write!(f, "the sops metadata is invalid: `{}` {}", e.field, e.reason),
            ErrorKind::NoAgeRecipient { keys } => write!(
                f,
                "the data key is encrypted only for {}, not for any age recipient; only age is supported",
                keys.join(" and ")
            ),
            ErrorKind::NoMatchingKey {
                file_recipients,
                our_recipients,
                other_keys,
            } => {
                write!(
                    f,
                    "no age identity matches: the file is encrypted for {}",
                    file_recipients.join(", ")
                )?;
                if !other_keys.is_empty() {
                    write!(f, " and {}", other_keys.join(" and "))?;
                }
                if our_recipients.is_empty() {
                    f.write_str("; no age identity was given")
                } else {
                    write!(f, "; the key file holds {}", our_recipients.join(", "))
                }
            }
            ErrorKind::DataKey { reason } => write!(f, "cannot decrypt the data key: {reason}"),
            ErrorKind::Values { failures } => {
                let n = failures.len();
                if n == 1 {
                    write!(f, "cannot decrypt `{}`: {}", failures[0].path, failures[0].error)
                } else {
                    write!(f, "cannot decrypt {n} values:")?;
                    for fail in failures {
                        write!(f, "\n  `{}`: {}", fail.path, fail.error)?;
                    }
                    Ok(())
                }
            }
            ErrorKind::Mac(MacError::Missing) => {
                f.write_str("the file has no MAC, so its integrity cannot be verified")
            }
            ErrorKind::Mac(MacError::Undecryptable) => {
                f.write_str("the MAC does not decrypt: it, or `sops.lastmodified`, was changed")
            }
            ErrorKind::Mac(MacError::Mismatch) => f.write_str(
                "MAC mismatch: the values decrypted, but the document is not the one that was encrypted",
            ),
            ErrorKind::Emit { format, reason } => write!(f, "cannot write the result as {format}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

fn read_capped(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, ErrorKind> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(ErrorKind::Read)?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(ErrorKind::Read)?;
    if buf.len() as u64 > limit {
        return Err(ErrorKind::TooLarge { limit });
    }
    Ok(buf)
}

/// Whether `data` looks sops-encrypted in `format` (Flux's marker bytes).
pub fn is_encrypted(data: &[u8], format: Format) -> bool {
    let marker = format.marker();
    data.windows(marker.len()).any(|w| w == marker)
}

/// Unwrap the data key from the metadata's key groups.
fn data_key(file: &str, meta: &Metadata, keys: &Keys) -> Result<Zeroizing<[u8; 32]>, Error> {
    let ours: Vec<&str> = keys.recipients().collect();
    if meta.age_recipients().next().is_none() {
        let keys = metadata::describe_others(meta.groups.iter().flat_map(|g| g.others.iter()));
        return Err(Error::new(file, ErrorKind::NoAgeRecipient { keys }));
    }
    let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut damaged: Option<String> = None;
    for group in &meta.groups {
        for key in &group.age {
            match age::decrypt(key.enc.as_bytes(), &keys.identities) {
                Ok(part) => {
                    parts.push(part);
                    break;
                }
                Err(age::AgeError::NoMatch { .. }) if !ours.contains(&key.recipient.as_str()) => {}
                Err(e) => {
                    // The recipient is ours (or the age data is unreadable): the file is damaged.
                    damaged.get_or_insert_with(|| {
                        format!("the key for {}: {e}", metadata::short(&key.recipient))
                    });
                }
            }
        }
    }
    let key = if meta.groups.len() == 1 {
        parts.pop()
    } else if parts.len() >= meta.shamir_threshold.max(1) && parts.len() >= 2 {
        Some(shamir::combine(&parts).map_err(|e| Error::new(file, ErrorKind::DataKey { reason: e.into() }))?)
    } else if !parts.is_empty() {
        return Err(Error::new(
            file,
            ErrorKind::DataKey {
                reason: format!(
                    "the data key is split between {} key groups and {} of them are needed; your keys open {}",
                    meta.groups.len(),
                    meta.shamir_threshold.max(2),
                    parts.len()
                ),
            },
        ));
    } else {
        None
    };
    let Some(key) = key else {
        if let Some(reason) = damaged {
            return Err(Error::new(file, ErrorKind::DataKey { reason }));
        }
        return Err(Error::new(
            file,
            ErrorKind::NoMatchingKey {
                file_recipients: meta
                    .age_recipients()
                    .map(|k| metadata::short(&k.recipient))
                    .collect(),
                our_recipients: ours.iter().map(|r| metadata::short(r)).collect(),
                other_keys: metadata::describe_others(meta.groups.iter().flat_map(|g| g.others.iter())),
            },
        ));
    };
    <[u8; 32]>::try_from(&key[..]).map(Zeroizing::new).map_err(|_| {
        Error::new(
            file,
            ErrorKind::DataKey {
                reason: format!("the data key has {} bytes, not 32", key.len()),
            },
        )
    })
}

/// Decrypt the data documents of a loaded file in place and check the MAC.
fn decrypt_tree(
    file: &str,
    doc: &mut Document,
    meta: &Metadata,
    keys: &Keys,
    options: &Options,
) -> Result<(), Error> {
    let key = data_key(file, meta, keys)?;
    decrypt_tree_with(file, doc, meta, &key, options)
}

fn decrypt_tree_with(
    file: &str,
    doc: &mut Document,
    meta: &Metadata,
    key: &[u8; 32],
    options: &Options,
) -> Result<(), Error> {
    let mut walk = cipher::Walk::new(key, &meta.rule, meta.mac_only_encrypted);
    for branch in &mut doc.branches {
        walk.branch(branch);
    }
    if !walk.failures.is_empty() {
        let failures = std::mem::take(&mut walk.failures);
        return Err(Error::new(file, ErrorKind::Values { failures }));
    }
    let computed = walk.mac();
    if !options.verify_mac {
        return Ok(());
    }
    if meta.mac.is_empty() {
        return Err(Error::new(file, ErrorKind::Mac(MacError::Missing)));
    }
    match cipher::decrypt_value(&meta.mac, key, &meta.last_modified) {
        Ok(tree::Value::Str(stored)) if stored == computed => Ok(()),
        Ok(_) => Err(Error::new(file, ErrorKind::Mac(MacError::Mismatch))),
        Err(_) => Err(Error::new(file, ErrorKind::Mac(MacError::Undecryptable))),
    }
}

/// Load and decrypt a file into its plaintext tree.
fn decrypt_document(
    file: &str,
    data: &[u8],
    input: Format,
    keys: &Keys,
    options: &Options,
) -> Result<Document, Error> {
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::new(
            file,
            ErrorKind::TooLarge {
                limit: MAX_FILE_BYTES,
            },
        ));
    }
    let loaded = format::load(data, input)
        .map_err(|error| Error::new(file, ErrorKind::Parse { format: input, error }))?;
    let Some(meta_tree) = &loaded.metadata else {
        return Err(Error::new(file, ErrorKind::NotEncrypted { format: input }));
    };
    let meta = metadata::parse(meta_tree).map_err(|e| Error::new(file, ErrorKind::Metadata(e)))?;
    let mut doc = loaded.doc;
    decrypt_tree(file, &mut doc, &meta, keys, options)?;
    Ok(doc)
}

/// Decrypt `data` (a sops file in `input` format, named `file` in errors)
/// and write the plaintext in `output` format.
pub fn decrypt_as(
    file: &str,
    data: &[u8],
    input: Format,
    output: Format,
    keys: &Keys,
    options: &Options,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let doc = decrypt_document(file, data, input, keys, options)?;
    format::emit(&doc, output).map_err(|reason| {
        Error::new(
            file,
            ErrorKind::Emit {
                format: output,
                reason,
            },
        )
    })
}

/// Decrypt `data`, a sops file in `format`, into the same format.
pub fn decrypt(
    file: &str,
    data: &[u8],
    format: Format,
    keys: &Keys,
    options: &Options,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    decrypt_as(file, data, format, format, keys, options)
}

/// Read and decrypt the file at `path`, its format taken from its name as
/// sops does.
pub fn decrypt_file(path: &Path, keys: &Keys, options: &Options) -> Result<Zeroizing<Vec<u8>>, Error> {
    let name = path.display().to_string();
    let data = read_capped(path, MAX_FILE_BYTES).map_err(|kind| Error::new(&name, kind))?;
    decrypt(&name, &data, Format::for_file(path), keys, options)
}

/// Where sops looks for age identities when none is given: `$SOPS_AGE_KEY_FILE`,
/// else `$XDG_CONFIG_HOME/sops/age/keys.txt` (`~/.config/…`).
pub fn default_key_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SOPS_AGE_KEY_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let path = config.join("sops/age/keys.txt");
    path.is_file().then_some(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The conformance corpus beside the repository, when present.
    pub(crate) fn corpus() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/sops");
        if dir.is_dir() {
            return Some(dir);
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {} is missing",
            dir.display()
        );
        eprintln!("note: {} is absent; skipping", dir.display());
        None
    }

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// sops's own example files, which are encrypted for PGP only: their data
    /// keys were unwrapped once with gpg and sops's published test key, so the
    /// tree walk, comments and MAC of every format are checked against
    /// files sops wrote.
    #[test]
    fn sops_example_files_of_every_format_verify() {
        let Some(dir) = corpus() else { return };
        let cases = [
            (
                "sops-comments-enc-yaml/encrypted.yaml",
                "61bec946f5783fd4cea3d1b1ce407fce2b6e81fc301cc539c422015e27f6d1be",
            ),
            (
                "sops-example-ini/encrypted.ini",
                "110e4d601e66ac7039e9ef32e6e8bb93fb1dbf833fb42003c93877ece3003575",
            ),
            (
                "sops-example-json/encrypted.json",
                "faf6a891866fac550ef548b4e5f6fbc98fccc6827cd943cc8d7539747f1d87bd",
            ),
            (
                "sops-example-txt/encrypted.bin",
                "67788979caa78ea7c5ae7adae47eb9161bfd15c94a2f3d88c708bcfa19a85dd7",
            ),
            (
                "sops-example-yaml/encrypted.yaml",
                "8c68886c50b5b72965a3cb99c5172e1d74a8aca27b39ee880b535d6907e59f68",
            ),
            (
                "sops-format-2-enc-ini/encrypted.ini",
                "200b251d35608cb3451d26d95d0f6c4580575d8f61d908b6d224fc488c65263f",
            ),
            (
                "sops-format-enc-env/encrypted.env",
                "322d9a97997823fb2bf42f55a6c26100cbaf0520cf88bb7ebee1cf47dd6d318d",
            ),
            (
                "sops-no-mac-yaml/encrypted.yaml",
                "87f9ee7ab041cfd1946fb50e6166b29858fcb4224ae3816186a129248558461f",
            ),
        ];
        for (file, key) in cases {
            let path = dir.join("unsupported").join(file);
            let data = std::fs::read(&path).unwrap();
            let format = Format::for_file(&path);
            let loaded = format::load(&data, format).unwrap_or_else(|e| panic!("{file}: {e}"));
            let meta = metadata::parse(loaded.metadata.as_ref().unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e:?}"));
            let mut doc = loaded.doc;
            let result = decrypt_tree_with(file, &mut doc, &meta, &hex(key), &Options::default());
            if file.starts_with("sops-no-mac") {
                assert!(
                    matches!(
                        result,
                        Err(Error {
                            kind: ErrorKind::Mac(MacError::Missing),
                            ..
                        })
                    ),
                    "{file}"
                );
            } else {
                result.unwrap_or_else(|e| panic!("{e}"));
            }
            let out = format::emit(&doc, format).unwrap();
            let text = String::from_utf8(out.to_vec()).unwrap();
            assert!(
                !text.contains("ENC["),
                "{file}: an encrypted value or comment is left:\n{text}"
            );
            assert!(!text.is_empty(), "{file}");
        }
    }

    /// Each corpus key file names its public key in a comment; the
    /// recipients computed from the identities (X25519 and post-quantum)
    /// must be those.
    #[test]
    fn identities_give_their_published_recipients() {
        let Some(dir) = corpus() else { return };
        for entry in std::fs::read_dir(dir.join("keys")).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let published: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# public key: "))
                .collect();
            let keys = Keys::from_file(&entry.path()).unwrap();
            assert_eq!(
                keys.recipients().collect::<Vec<_>>(),
                published,
                "{}",
                entry.path().display()
            );
        }
    }

    #[test]
    fn key_files_parse_like_age() {
        let keys = Keys::parse(
            "test",
            b"# created: 2021-03-31\n# public key: age1l44x...\nAGE-SECRET-KEY-1RH87A5Z54ZGUR9S0AS3R6WHFSEFNPLYMAKF5Z2CEU7R06VRJ0A3Q7242AM\n\n",
        )
        .unwrap();
        assert_eq!(
            keys.recipients().collect::<Vec<_>>(),
            ["age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29"]
        );
        let debug = format!("{keys:?}");
        assert!(!debug.contains("AGE-SECRET-KEY"), "{debug}");
        let err = Keys::parse("k.txt", b"# c\nAGE-SECRET-KEY-1QQQ\n").unwrap_err();
        assert!(err.to_string().starts_with("k.txt: line 2: "), "{err}");
        assert!(!err.to_string().contains("QQQ"), "{err}");
        assert!(Keys::parse("k.txt", b"# only comments\n").is_err());
        assert!(Keys::parse("k.txt", b"ssh-ed25519 AAAA\n").is_err());
    }
}
