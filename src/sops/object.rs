//! Kubernetes objects after a build, decrypted as Flux's
//! kustomize-controller does (`DecryptResource`):
//!
//! - an object with top-level `sops` metadata is decrypted as a whole
//!   (Flux re-marshals it to JSON and decrypts that; the result is JSON);
//! - otherwise, in a `Secret`, each `data` value that base64-decodes to a
//!   sops document (found by its marker bytes) is decrypted into the format
//!   its key's extension names and base64-encoded again;
//! - an object annotated `kustomize.toolkit.fluxcd.io/decrypt: disabled`
//!   is left alone.
//!
//! The MAC covers the values in document order, so verifying it needs the
//! object in the order it was written: [`decrypt_manifest`] takes the
//! object's YAML (or JSON) text. [`decrypt_object`] takes a parsed
//! `serde_json::Value`, whose maps are sorted by key unless serde_json
//! keeps order; a MAC check there only passes when that order is the
//! file's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::format::{self, Format, yaml};
use super::tree::{Document, Item, Value};
use super::{Error, ErrorKind, Keys, Options, decrypt_as, decrypt_tree, metadata};

const DISABLE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/decrypt";

fn field<'a>(items: &'a [Item], name: &str) -> Option<&'a Value> {
    items.iter().find(|i| i.key_str() == Some(name)).map(|i| &i.value)
}

fn decryption_disabled(items: &[Item]) -> bool {
    let Some(Value::Map(meta)) = field(items, "metadata") else {
        return false;
    };
    let Some(Value::Map(annotations)) = field(meta, "annotations") else {
        return false;
    };
    matches!(field(annotations, DISABLE_ANNOTATION), Some(Value::Str(v)) if v.eq_ignore_ascii_case("disabled"))
}

fn has_sops(items: &[Item]) -> bool {
    matches!(field(items, "sops"), Some(Value::Map(m)) if !m.is_empty())
}

/// Whether an object (as YAML or JSON text) is sops-encrypted as a whole.
pub fn is_encrypted_object(text: &str) -> bool {
    match yaml::parse(text) {
        Ok(docs) => docs
            .iter()
            .any(|d| matches!(d, Value::Map(items) if has_sops(items))),
        Err(_) => false,
    }
}

/// The format a Secret data value is in, from Flux's marker bytes.
fn detect(data: &[u8]) -> Option<Format> {
    [Format::Yaml, Format::Dotenv, Format::Json, Format::Ini]
        .into_iter()
        .find(|f| super::is_encrypted(data, *f))
}

fn to_json(name: &str, doc: &Document) -> Result<Zeroizing<String>, Error> {
    format::emit_object_json(doc).map_err(|reason| {
        Error::new(
            name,
            ErrorKind::Emit {
                format: Format::Json,
                reason,
            },
        )
    })
}

/// Decrypt the object in `branch`; `None` when there is nothing to decrypt.
fn decrypt_branch(
    name: &str,
    mut branch: Vec<Item>,
    keys: &Keys,
    options: &Options,
) -> Result<Option<Zeroizing<String>>, Error> {
    if decryption_disabled(&branch) {
        return Ok(None);
    }
    if has_sops(&branch) {
        let at = branch
            .iter()
            .position(|i| i.key_str() == Some("sops"))
            .unwrap_or_default();
        let sops = branch.remove(at).value;
        let meta = metadata::parse(&sops).map_err(|e| Error::new(name, ErrorKind::Metadata(e)))?;
        let mut doc = Document {
            branches: vec![branch],
        };
        decrypt_tree(name, &mut doc, &meta, keys, options)?;
        return to_json(name, &doc).map(Some);
    }
    let is_secret = matches!(field(&branch, "kind"), Some(Value::Str(k)) if k == "Secret");
    if !is_secret {
        return Ok(None);
    }
    let Some(data) = branch.iter_mut().find(|i| i.key_str() == Some("data")) else {
        return Ok(None);
    };
    let Value::Map(entries) = &mut data.value else {
        return Ok(None);
    };
    let mut changed = false;
    for entry in entries.iter_mut() {
        let Some(key) = entry.key_str().map(str::to_string) else {
            continue;
        };
        let Value::Str(encoded) = &mut entry.value else {
            continue;
        };
        // As Flux: a value that is not base64 is left for the apply to report.
        let Ok(inner) = STANDARD.decode(encoded.as_bytes()) else {
            continue;
        };
        let inner = Zeroizing::new(inner);
        let Some(input) = detect(&inner) else { continue };
        let output = Format::for_secret_key(&key);
        let plain = decrypt_as(
            &format!("{name} data.{key}"),
            &inner,
            input,
            output,
            keys,
            options,
        )?;
        *encoded = STANDARD.encode(&plain[..]);
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    to_json(
        name,
        &Document {
            branches: vec![branch],
        },
    )
    .map(Some)
}

/// Decrypt one Kubernetes object given as YAML or JSON text (one
/// document), as Flux does after a build. `name` names the object in
/// errors (e.g. `apps/prod/secret.yaml:3 Secret/prod/db`). Gives the
/// decrypted object as JSON text, or `None` when it holds nothing to
/// decrypt.
pub fn decrypt_manifest(
    name: &str,
    text: &str,
    keys: &Keys,
    options: &Options,
) -> Result<Option<Zeroizing<String>>, Error> {
    let mut docs = yaml::parse(text).map_err(|error| {
        Error::new(
            name,
            ErrorKind::Parse {
                format: Format::Yaml,
                error,
            },
        )
    })?;
    if docs.len() != 1 {
        return Err(Error::new(
            name,
            ErrorKind::Parse {
                format: Format::Yaml,
                error: format::ParseError::new(format!(
                    "expected one object, found {} documents",
                    docs.len()
                )),
            },
        ));
    }
    match docs.pop() {
        Some(Value::Map(items)) => decrypt_branch(name, items, keys, options),
        _ => Ok(None),
    }
}

fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) => Value::Seq(a.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| Item::new(k.clone(), from_json(v)))
                .collect(),
        ),
    }
}

/// [`decrypt_manifest`] for an object already parsed; see the module
/// documentation for what that means for the MAC.
pub fn decrypt_object(
    name: &str,
    object: &serde_json::Value,
    keys: &Keys,
    options: &Options,
) -> Result<Option<serde_json::Value>, Error> {
    let Value::Map(items) = from_json(object) else {
        return Ok(None);
    };
    let mut doc = Document {
        branches: vec![items],
    };
    let branch = std::mem::take(&mut doc.branches[0]);
    let Some(json) = decrypt_branch(name, branch, keys, options)? else {
        return Ok(None);
    };
    serde_json::from_str(&json).map(Some).map_err(|e| {
        Error::new(
            name,
            ErrorKind::Emit {
                format: Format::Json,
                reason: e.to_string(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sops::tests::corpus;

    fn case(dir: &std::path::Path, name: &str) -> (String, Keys) {
        let case_dir = dir.join("cases").join(name);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(case_dir.join("case.json")).unwrap()).unwrap();
        let keys = Keys::from_file(&dir.join(meta["key"].as_str().unwrap())).unwrap();
        let text = std::fs::read_to_string(case_dir.join("encrypted.yaml")).unwrap();
        (text, keys)
    }

    #[test]
    fn whole_object_decrypts_to_json_in_document_order() {
        let Some(dir) = corpus() else { return };
        let (text, keys) = case(&dir, "kc-global-secret");
        let json = decrypt_manifest("secret.yaml", &text, &keys, &Options::default())
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["stringData"]["key"], "global-value");
        // The render path reads manifests with its YAML reader.
        let again: serde_json::Value = serde_saphyr::from_str(&json).unwrap();
        assert_eq!(again, v);
        assert!(v.get("sops").is_none());
        let order: Vec<&str> = json
            .lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("    "))
            .map(|l| l.trim().split('"').nth(1).unwrap_or_default())
            .collect();
        let written: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with([' ', '-']) && !l.starts_with("sops:"))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(order, written);
        assert!(is_encrypted_object(&text));
    }

    #[test]
    fn secret_data_holding_sops_documents_is_decrypted() {
        let Some(dir) = corpus() else { return };
        let (text, keys) = case(&dir, "kc-inside-secret-data");
        assert!(!is_encrypted_object(&text));
        let json = decrypt_manifest("inside.yaml", &text, &keys, &Options::default())
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["data"]["key"], STANDARD.encode("value"));

        // Flux's annotation turns it off.
        let disabled = text.replacen(
            "metadata:\n",
            "metadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/decrypt: Disabled\n",
            1,
        );
        assert!(disabled.contains("Disabled"));
        assert!(
            decrypt_manifest("inside.yaml", &disabled, &keys, &Options::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn plain_objects_are_left_alone() {
        let keys = Keys::default();
        let plain = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: aGVsbG8=, b: '!!'}\n";
        assert!(
            decrypt_manifest("s.yaml", plain, &keys, &Options::default())
                .unwrap()
                .is_none()
        );
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
        assert!(
            decrypt_manifest("c.yaml", cm, &keys, &Options::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn mac_is_checked_unless_turned_off() {
        let Some(dir) = corpus() else { return };
        let (text, keys) = case(&dir, "kc-algorithms-age");
        // kustomize's `namespace:` adds a value the MAC does not cover.
        let moved = text.replacen("  name: age\n", "  name: age\n  namespace: prod\n", 1);
        let err = decrypt_manifest("s.yaml", &moved, &keys, &Options::default()).unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::Mac(crate::sops::MacError::Mismatch)),
            "{err}"
        );
        assert!(err.help().unwrap().contains("namespace"));
        let lax = Options { verify_mac: false };
        let json = decrypt_manifest("s.yaml", &moved, &keys, &lax).unwrap().unwrap();
        assert!(json.contains("\"prod\""));
    }

    #[test]
    fn parsed_objects_decrypt_too() {
        let Some(dir) = corpus() else { return };
        // Its keys are in sorted order already, so serde_json's order is the file's.
        let (text, keys) = case(&dir, "kc-algorithms-age");
        let object: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let out = decrypt_object("s", &object, &keys, &Options::default())
            .unwrap()
            .unwrap();
        assert_eq!(out["stringData"]["key"], "value");
        assert!(out.get("sops").is_none());
    }
}
