//! Just enough of the Kubernetes protobuf encoding to read what kubectl's
//! typed clients send: `kubectl create namespace|configmap|secret|
//! serviceaccount` POST `application/vnd.kubernetes.protobuf` bodies (and
//! accept JSON answers). The envelope is `k8s\0` + `runtime.Unknown`
//! (typeMeta, raw); the kinds decoded are those four, with the common
//! `ObjectMeta` fields (name, generateName, namespace, labels, annotations,
//! finalizers). Anything else is refused with 415.

use serde_json::{Map, Value};

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

/// The (field number, value) pairs of one message.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (field, wire) = (tag >> 3, tag & 7);
        let value = match wire {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 | 5 => {
                pos += if wire == 1 { 8 } else { 4 };
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length too large")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let bytes = &buf[pos..end];
                pos = end;
                Wire::Bytes(bytes)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((field, value));
    }
    if pos > buf.len() {
        return Err("truncated message".into());
    }
    Ok(out)
}

fn string(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 in a string field".to_string())
}

/// A `map<string, string>` (or bytes, base64-encoded) entry: {1: key, 2: value}.
fn map_entry(bytes: &[u8], binary: bool) -> Result<(String, Value), String> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (f, w) in fields(bytes)? {
        match (f, w) {
            (1, Wire::Bytes(b)) => k = string(b)?,
            (2, Wire::Bytes(b)) if binary => v = Value::String(crate::support::base64(b)),
            (2, Wire::Bytes(b)) => v = Value::String(string(b)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_entry(obj: &mut Map<String, Value>, key: &str, bytes: &[u8], binary: bool) -> Result<(), String> {
    let (k, v) = map_entry(bytes, binary)?;
    let map = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = map {
        m.insert(k, v);
    }
    Ok(())
}

fn push_string(obj: &mut Map<String, Value>, key: &str, bytes: &[u8]) -> Result<(), String> {
    let list = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = list {
        a.push(Value::String(string(bytes)?));
    }
    Ok(())
}

fn set_string(obj: &mut Map<String, Value>, key: &str, bytes: &[u8]) -> Result<(), String> {
    let s = string(bytes)?;
    if !s.is_empty() {
        obj.insert(key.into(), Value::String(s));
    }
    Ok(())
}

fn object_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (f, w) in fields(bytes)? {
        let Wire::Bytes(b) = w else { continue };
        match f {
            1 => set_string(&mut m, "name", b)?,
            2 => set_string(&mut m, "generateName", b)?,
            3 => set_string(&mut m, "namespace", b)?,
            11 => insert_entry(&mut m, "labels", b, false)?,
            12 => insert_entry(&mut m, "annotations", b, false)?,
            14 => push_string(&mut m, "finalizers", b)?,
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// Decode a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let unknown = body.strip_prefix(b"k8s\0").ok_or("no k8s protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (f, w) in fields(unknown)? {
        match (f, w) {
            (1, Wire::Bytes(tm)) => {
                for (f, w) in fields(tm)? {
                    match (f, w) {
                        (1, Wire::Bytes(b)) => api_version = string(b)?,
                        (2, Wire::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(api_version.clone()));
    obj.insert("kind".into(), Value::String(kind.clone()));
    for (f, w) in fields(raw)? {
        match (api_version.as_str(), kind.as_str(), f, w) {
            ("v1", _, 1, Wire::Bytes(b)) => {
                obj.insert("metadata".into(), object_meta(b)?);
            }
            ("v1", "ConfigMap", 2, Wire::Bytes(b)) => insert_entry(&mut obj, "data", b, false)?,
            ("v1", "ConfigMap", 3, Wire::Bytes(b)) => insert_entry(&mut obj, "binaryData", b, true)?,
            ("v1", "ConfigMap", 4, Wire::Varint(v)) | ("v1", "Secret", 5, Wire::Varint(v)) => {
                obj.insert("immutable".into(), Value::Bool(v != 0));
            }
            ("v1", "Secret", 2, Wire::Bytes(b)) => insert_entry(&mut obj, "data", b, true)?,
            ("v1", "Secret", 3, Wire::Bytes(b)) => set_string(&mut obj, "type", b)?,
            ("v1", "Secret", 4, Wire::Bytes(b)) => insert_entry(&mut obj, "stringData", b, false)?,
            ("v1", "ServiceAccount", 4, Wire::Varint(v)) => {
                obj.insert("automountServiceAccountToken".into(), Value::Bool(v != 0));
            }
            ("v1", "Namespace", 2, Wire::Bytes(spec)) => {
                let mut s = Map::new();
                for (f, w) in fields(spec)? {
                    if let (1, Wire::Bytes(b)) = (f, w) {
                        push_string(&mut s, "finalizers", b)?;
                    }
                }
                if !s.is_empty() {
                    obj.insert("spec".into(), Value::Object(s));
                }
            }
            ("v1", "ConfigMap" | "Secret" | "ServiceAccount" | "Namespace", ..) => {}
            _ => {
                return Err(format!(
                    "the test API server reads protobuf only for v1 ConfigMap, Secret, ServiceAccount and \
                     Namespace, not {api_version} {kind}: create it with `kubectl apply` or `kubectl create -f`"
                ));
            }
        }
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_what_kubectl_create_configmap_sends() {
        // Captured from `kubectl create configmap x -n default --from-literal=a=b` (v1.32).
        let body = b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\"\n\x18\n\x01x\x12\x00\x1a\x07default\"\x00*\x002\x008\x00B\x00\x12\x06\n\x01a\x12\x01b\x1a\x00\"\x00";
        assert_eq!(
            decode(body),
            Ok(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "b"}}))
        );
        assert!(decode(b"k8s\x00\n\x05").is_err());
        assert!(decode(b"{}").is_err());
    }
}
