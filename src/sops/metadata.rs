//! The `sops` metadata of a file: its key groups (the data key encrypted
//! for each recipient), the rule saying which values are encrypted, the
//! MAC and when it was written. Read strictly: a field sops does not write
//! is an error naming it, so that no future rule is silently ignored.

use super::tree::{Item, Value, go_float_f, rfc3339_normalized};

/// Metadata fields sops writes (sops 3.12), besides the key-type lists and
/// [`RULES`].
const FIELDS: &[&str] = &[
    "shamir_threshold",
    "key_groups",
    "lastmodified",
    "mac",
    "mac_only_encrypted",
    "version",
];

/// The fields that say which values are encrypted (at most one is set).
const RULES: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

/// Key types a group may hold, with how to name one key of each.
const KEY_TYPES: &[(&str, &str, &[&str])] = &[
    ("age", "age", &["recipient"]),
    ("pgp", "PGP", &["fp"]),
    ("kms", "AWS KMS", &["arn"]),
    ("gcp_kms", "GCP KMS", &["resource_id"]),
    ("azure_kv", "Azure Key Vault", &["vault_url", "name"]),
    (
        "hc_vault",
        "HashiCorp Vault",
        &["vault_address", "engine_path", "key_name"],
    ),
];

/// One age recipient of the data key.
#[derive(Debug, Clone)]
pub struct AgeKey {
    pub recipient: String,
    /// The armored age file holding the data key (or a Shamir share of it).
    pub enc: String,
}

/// A key group: any one of its keys yields the group's part of the data key.
#[derive(Debug, Clone, Default)]
pub struct KeyGroup {
    pub age: Vec<AgeKey>,
    /// Keys of other types: the type's name and the key, abbreviated
    /// (listed in errors only).
    pub others: Vec<(&'static str, String)>,
}

/// Which values the file encrypts.
#[derive(Debug, Clone)]
pub enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex::Regex),
    EncryptedRegex(regex::Regex),
    UnencryptedCommentRegex(regex::Regex),
    EncryptedCommentRegex(regex::Regex),
}

impl Rule {
    /// How the rule reads in the file, for messages.
    pub fn describe(&self) -> String {
        match self {
            Rule::UnencryptedSuffix(s) => format!("unencrypted_suffix \"{s}\""),
            Rule::EncryptedSuffix(s) => format!("encrypted_suffix \"{s}\""),
            Rule::UnencryptedRegex(r) => format!("unencrypted_regex \"{}\"", r.as_str()),
            Rule::EncryptedRegex(r) => format!("encrypted_regex \"{}\"", r.as_str()),
            Rule::UnencryptedCommentRegex(r) => format!("unencrypted_comment_regex \"{}\"", r.as_str()),
            Rule::EncryptedCommentRegex(r) => format!("encrypted_comment_regex \"{}\"", r.as_str()),
        }
    }

    /// sops's `shouldBeEncrypted`: `path` is the mapping keys down to the
    /// value, `comments` the comment lines seen before it at each depth.
    pub fn encrypts(&self, path: &[String], comments: &[Vec<String>], is_comment: bool) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
            Rule::UnencryptedCommentRegex(r) => !comments.iter().flatten().any(|c| r.is_match(c)),
            Rule::EncryptedCommentRegex(r) => {
                // The comment line that matches is itself left in clear.
                let last = comments.len().checked_sub(1);
                comments.iter().enumerate().any(|(i, cs)| {
                    cs.iter().enumerate().any(|(j, c)| {
                        let own = is_comment && Some(i) == last && j + 1 == cs.len();
                        !own && r.is_match(c)
                    })
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Metadata {
    pub groups: Vec<KeyGroup>,
    pub shamir_threshold: usize,
    /// `lastmodified` re-rendered as Go's RFC 3339: the MAC's additional data.
    pub last_modified: String,
    pub mac: String,
    pub rule: Rule,
    pub mac_only_encrypted: bool,
}

impl Metadata {
    /// Every age recipient, in file order.
    pub fn age_recipients(&self) -> impl Iterator<Item = &AgeKey> {
        self.groups.iter().flat_map(|g| g.age.iter())
    }
}

/// Why metadata is unusable: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> MetadataError {
    MetadataError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A scalar as text (YAML may type `version: 3.9` as a number).
fn text(field: &str, v: &Value) -> Result<String, MetadataError> {
    match v {
        Value::Str(s) | Value::Time(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(go_float_f(*f)),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(err(field, format!("is {}, not text", other.kind()))),
    }
}

fn entries<'a>(field: &str, v: &'a Value) -> Result<&'a [Value], MetadataError> {
    match v {
        Value::Seq(values) => Ok(values),
        Value::Null => Ok(&[]),
        other => Err(err(field, format!("is {}, not a list", other.kind()))),
    }
}

fn entry_field<'a>(entry: &'a [Item], name: &str) -> Option<&'a Value> {
    entry.iter().find(|i| i.key_str() == Some(name)).map(|i| &i.value)
}

fn abbreviate(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 20 {
        return s.to_string();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

/// Read one group's key lists from `items` (the metadata or a `key_groups` entry).
fn group(items: &[Item], prefix: &str) -> Result<KeyGroup, MetadataError> {
    let mut g = KeyGroup::default();
    for (field, label, names) in KEY_TYPES {
        let Some(v) = entry_field(items, field) else {
            continue;
        };
        let path = format!("{prefix}{field}");
        for (n, entry) in entries(&path, v)?.iter().enumerate() {
            let entry_path = format!("{path}[{n}]");
            let Value::Map(entry) = entry else {
                return Err(err(&entry_path, format!("is {}, not a mapping", entry.kind())));
            };
            if *field == "age" {
                let recipient = entry_field(entry, "recipient")
                    .map(|v| text(&format!("{entry_path}.recipient"), v))
                    .transpose()?
                    .unwrap_or_default();
                let enc = entry_field(entry, "enc")
                    .map(|v| text(&format!("{entry_path}.enc"), v))
                    .transpose()?
                    .unwrap_or_default();
                if enc.is_empty() {
                    return Err(err(&format!("{entry_path}.enc"), "is missing or empty"));
                }
                g.age.push(AgeKey { recipient, enc });
            } else {
                let id: Vec<String> = names
                    .iter()
                    .filter_map(|name| entry_field(entry, name).and_then(|v| text(name, v).ok()))
                    .filter(|s| !s.is_empty())
                    .collect();
                g.others.push((label, abbreviate(&id.join("/"))));
            }
        }
    }
    Ok(g)
}

fn regex(field: &str, pattern: &str) -> Result<regex::Regex, MetadataError> {
    regex::Regex::new(pattern)
        .map_err(|e| err(field, format!("is not a regular expression mooring can use: {e}")))
}

/// Read the `sops` metadata tree.
pub fn parse(tree: &Value) -> Result<Metadata, MetadataError> {
    let Value::Map(items) = tree else {
        return Err(err("sops", format!("is {}, not a mapping", tree.kind())));
    };
    for item in items {
        let Some(k) = item.key_str() else { continue };
        if !FIELDS.contains(&k) && !RULES.contains(&k) && !KEY_TYPES.iter().any(|(f, _, _)| *f == k) {
            return Err(err(
                &format!("sops.{k}"),
                "is not a field sops writes (as of sops 3.12): this file may need a newer mooring",
            ));
        }
    }
    let get = |name: &str| entry_field(items, name);
    let string = |name: &str| -> Result<String, MetadataError> {
        get(name)
            .map(|v| text(&format!("sops.{name}"), v))
            .transpose()
            .map(Option::unwrap_or_default)
    };

    let raw_modified = string("lastmodified")?;
    let last_modified = rfc3339_normalized(&raw_modified).ok_or_else(|| {
        err(
            "sops.lastmodified",
            if raw_modified.is_empty() {
                "is missing".to_string()
            } else {
                "is not an RFC 3339 time such as 2024-11-12T13:33:42Z".to_string()
            },
        )
    })?;

    let mut groups = Vec::new();
    let top = group(items, "sops.")?;
    if !top.age.is_empty() || !top.others.is_empty() {
        groups.push(top);
    } else if let Some(kg) = get("key_groups") {
        for (n, g) in entries("sops.key_groups", kg)?.iter().enumerate() {
            let Value::Map(g) = g else {
                return Err(err(&format!("sops.key_groups[{n}]"), "is not a mapping"));
            };
            groups.push(group(g, &format!("sops.key_groups[{n}]."))?);
        }
    }
    if groups.is_empty() {
        return Err(err("sops", "lists no keys at all (no age, pgp, kms, … entries)"));
    }

    let shamir_threshold = match get("shamir_threshold") {
        None | Some(Value::Null) => 0,
        Some(Value::Int(i)) => {
            usize::try_from(*i).map_err(|_| err("sops.shamir_threshold", "is negative"))?
        }
        Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 && *f < 256.0 => *f as usize,
        Some(Value::Str(s)) => s
            .parse()
            .map_err(|_| err("sops.shamir_threshold", "is not an integer"))?,
        Some(other) => {
            return Err(err(
                "sops.shamir_threshold",
                format!("is {}, not an integer", other.kind()),
            ));
        }
    };

    let mac_only_encrypted = match get("mac_only_encrypted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        // dotenv and INI store it as text; sops reads anything but "true" as false.
        Some(Value::Str(s)) => s == "true",
        Some(other) => {
            return Err(err(
                "sops.mac_only_encrypted",
                format!("is {}, not a boolean", other.kind()),
            ));
        }
    };

    let mut rules = Vec::new();
    for name in RULES {
        let value = string(name)?;
        if value.is_empty() {
            continue;
        }
        let field = format!("sops.{name}");
        rules.push(match name {
            "unencrypted_suffix" => Rule::UnencryptedSuffix(value),
            "encrypted_suffix" => Rule::EncryptedSuffix(value),
            "unencrypted_regex" => Rule::UnencryptedRegex(regex(&field, &value)?),
            "encrypted_regex" => Rule::EncryptedRegex(regex(&field, &value)?),
            "unencrypted_comment_regex" => Rule::UnencryptedCommentRegex(regex(&field, &value)?),
            _ => Rule::EncryptedCommentRegex(regex(&field, &value)?),
        });
    }
    if rules.len() > 1 {
        return Err(err(
            "sops",
            "sets more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, \
             encrypted_comment_regex and unencrypted_comment_regex",
        ));
    }
    let rule = rules
        .pop()
        .unwrap_or_else(|| Rule::UnencryptedSuffix("_unencrypted".into()));

    // Optional (rops's files have none) and not needed to decrypt; read to check its type.
    string("version")?;
    Ok(Metadata {
        groups,
        shamir_threshold,
        last_modified,
        mac: string("mac")?,
        rule,
        mac_only_encrypted,
    })
}

/// Keys of other types grouped by type, for messages: `PGP FBC7…B4, D722…74; AWS KMS arn:…`.
pub fn describe_others<'a>(others: impl Iterator<Item = &'a (&'static str, String)>) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (label, id) in others {
        match groups.iter_mut().find(|(l, _)| l == label) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((label, vec![id])),
        }
    }
    groups
        .into_iter()
        .map(|(label, ids)| format!("{label} ({})", ids.join(", ")))
        .collect()
}

/// Abbreviate a recipient for messages: `age1se5ghfyc…ch4569`.
pub fn short(recipient: &str) -> String {
    abbreviate(recipient)
}
