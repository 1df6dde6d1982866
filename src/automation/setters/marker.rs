//! The `$imagepolicy` marker: its grammar (`NAME`, `NAME:tag`, Flux's
//! `NAMESPACE:NAME:…`), the checks on a policy's pick, and the value a
//! marker's field gets from it.

use super::*;

/// Which part of the reference a marker sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `repository:tag[@digest]`
    Reference,
    Tag,
    /// The repository.
    Name,
    Digest,
}

/// A marker's value, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Flux's form names the policy's namespace too.
    pub namespace: Option<String>,
    /// The image policy's name.
    pub image: String,
    pub field: Field,
}

pub(super) fn field(word: &str) -> Option<Field> {
    match word {
        "tag" => Some(Field::Tag),
        "name" => Some(Field::Name),
        "digest" => Some(Field::Digest),
        _ => None,
    }
}

/// Read a marker's value: `NAME`, `NAME:tag|name|digest`, or Flux's
/// `NAMESPACE:NAME` and `NAMESPACE:NAME:tag|name|digest`. Of two parts,
/// the second is a field when it is one of the words `tag`, `name`,
/// `digest`, and the image's name otherwise.
pub fn parse_marker(value: &str) -> Result<Marker, String> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.iter().any(|p| p.trim().is_empty() || p.trim() != *p) {
        return Err(format!("marker \"{value}\" has an empty or blank-padded part"));
    }
    let marker = |namespace: Option<&str>, image: &str, field: Field| Marker {
        namespace: namespace.map(str::to_string),
        image: image.to_string(),
        field,
    };
    match parts.as_slice() {
        [name] => Ok(marker(None, name, Field::Reference)),
        [name, word] => Ok(match field(word) {
            Some(f) => marker(None, name, f),
            None => marker(Some(name), word, Field::Reference),
        }),
        [namespace, name, word] => match field(word) {
            Some(f) => Ok(marker(Some(namespace), name, f)),
            None => Err(format!(
                "marker \"{value}\": the last part must be tag, name or digest, not \"{word}\""
            )),
        },
        _ => Err(format!(
            "marker \"{value}\" has too many parts; write NAME, NAME:tag, NAME:name or NAME:digest"
        )),
    }
}

/// The marker's value in a comment's text (after the `#`): a JSON object
/// with the one key `$imagepolicy` and a string value.
pub(super) fn marker_value(comment: &str) -> Result<String, String> {
    let malformed = || {
        format!(
            "malformed marker `#{comment}`: expected # {{\"$imagepolicy\": \"NAME\"}} \
             (or \"NAME:tag\", \"NAME:name\", \"NAME:digest\")"
        )
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(comment.trim()).map_err(|_| malformed())?;
    match (object.len(), object.get(TOKEN)) {
        (1, Some(serde_json::Value::String(value))) => Ok(value.clone()),
        _ => Err(malformed()),
    }
}

/// The characters a value may hold: those of an image reference. They
/// never need escaping in quotes and never end a plain scalar.
pub(super) fn valid_chars(value: &str, extra: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
}

/// A selection's parts are those of an image reference: a repository of
/// `[A-Za-z0-9._-/:]` (a registry port is allowed), a tag of
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, a digest `ALGORITHM:ENCODED`.
pub fn check_selection(selection: &Selection) -> Result<(), String> {
    let repo = &selection.repository;
    if !valid_chars(repo, "/:")
        || !repo.starts_with(|c: char| c.is_ascii_alphanumeric())
        || repo.ends_with(['/', ':'])
        || repo.contains("//")
    {
        return Err(format!("\"{repo}\" is not an image repository"));
    }
    let tag = &selection.tag;
    if !valid_chars(tag, "") || tag.len() > 128 || tag.starts_with(['.', '-']) {
        return Err(format!(
            "\"{tag}\" is not an image tag (letters, digits, _ . -; at most 128; not starting with . or -)"
        ));
    }
    if let Some(digest) = &selection.digest {
        let ok = digest.split_once(':').is_some_and(|(algorithm, encoded)| {
            valid_chars(algorithm, "+")
                && algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
                && valid_chars(encoded, "=")
        });
        if !ok {
            return Err(format!(
                "\"{digest}\" is not a digest (ALGORITHM:HEX, such as sha256:…)"
            ));
        }
    }
    Ok(())
}

/// What the marker's field is set to, or why it cannot be.
pub(super) fn new_value(selection: &Selection, field: Field, image: &str) -> Result<String, String> {
    check_selection(selection)
        .map_err(|e| format!("the pick of image policy \"{image}\" is not usable: {e}"))?;
    Ok(match field {
        Field::Reference => selection.reference(),
        Field::Tag => selection.tag.clone(),
        Field::Name => selection.repository.clone(),
        Field::Digest => match &selection.digest {
            Some(d) => d.clone(),
            None => return Err(format!("no digest is known for image policy \"{image}\"")),
        },
    })
}
