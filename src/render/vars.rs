//! Substitution variables from a file (`substitute-from file=…`): dotenv
//! (`KEY=VALUE` lines as kustomize's env files: `#` comments, no quote
//! processing) or, for `.yaml`, `.yml` and `.json`, a mapping of scalars.
//! A SOPS-encrypted file is decrypted first when the app has keys.
//!
//! A relative path is read from the artifact, confined to it (no `..`
//! above it, no symlinks); an absolute one from the host. Files are capped
//! at [`MAX_VARS_BYTES`]. Errors name the file, a line and a key, never a value.

use std::path::Path;

use super::{Error, normalize};
use crate::sops::{self, Format, Keys};
use crate::walk::read_capped;

/// The largest variables file read.
pub const MAX_VARS_BYTES: u64 = 1 << 20;

/// The variables in `file`, in file order; `None` when it does not exist.
pub fn from_file(
    root: &Path,
    file: &Path,
    keys: Option<&Keys>,
) -> Result<Option<Vec<(String, String)>>, Error> {
    let shown = file.display().to_string();
    let full = if file.is_absolute() {
        file.to_path_buf()
    } else {
        let rel = normalize(&shown)?;
        let mut at = root.to_path_buf();
        for part in &rel {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::Path {
                        path: shown,
                        reason: "goes through a symlink; mooring does not follow links in a source",
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(&at, e)),
            }
        }
        at
    };
    let bytes = match read_capped(&full, MAX_VARS_BYTES) {
        Ok(Some(b)) => zeroize::Zeroizing::new(b),
        Ok(None) => {
            return Err(Error::FileTooLarge {
                file: shown,
                limit: MAX_VARS_BYTES,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&full, e)),
    };
    let yaml = [".yaml", ".yml", ".json"].iter().any(|x| shown.ends_with(x));
    let format = if yaml {
        Format::for_path(&shown)
    } else {
        Format::Dotenv
    };
    let bytes = if sops::is_encrypted(&bytes, format) {
        let Some(keys) = keys else {
            return Err(Error::Sops {
                message: format!("{shown}: the variables file is SOPS-encrypted"),
                help: Some(
                    "add `sops age-key-file=\"…\"` to the app with the age identity that decrypts it".into(),
                ),
            });
        };
        sops::decrypt(&shown, &bytes, format, keys, &sops::Options::default()).map_err(|e| Error::Sops {
            message: e.to_string(),
            help: e.help(),
        })?
    } else {
        bytes
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Err(Error::NotUtf8 { file: shown });
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if yaml {
        from_yaml(&shown, text)
    } else {
        from_dotenv(&shown, text)
    }
    .map(Some)
}

fn from_dotenv(file: &str, text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::Substitution {
                file: file.to_string(),
                line: i + 1,
                message: "not KEY=VALUE".into(),
            });
        };
        out.push((key.trim_end().to_string(), value.to_string()));
    }
    Ok(out)
}

fn from_yaml(file: &str, text: &str) -> Result<Vec<(String, String)>, Error> {
    let map: Option<indexmap_free::Map> = serde_saphyr::from_str(text).map_err(|e| Error::Yaml {
        file: file.to_string(),
        line: e.location().map_or(1, |l| l.line() as usize),
        column: e.location().map_or(1, |l| l.column() as usize),
        message: "expected a mapping of variable names to values".into(),
    })?;
    let mut out = Vec::new();
    for (k, v) in map.map(|m| m.0).unwrap_or_default() {
        let value = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => String::new(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(Error::Substitution {
                    file: file.to_string(),
                    line: 1,
                    message: format!("variable `{k}` is not a string, number or boolean"),
                });
            }
        };
        out.push((k, value));
    }
    Ok(out)
}

/// A mapping read in file order.
mod indexmap_free {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

    pub struct Map(pub Vec<(String, serde_json::Value)>);

    impl<'de> Deserialize<'de> for Map {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Map;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a mapping")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Map, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                        out.push((k, v));
                    }
                    Ok(Map(out))
                }
            }
            d.deserialize_map(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_and_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("v")).unwrap();
        std::fs::write(dir.path().join("v/a.env"), "# c\nA=1\n  B = x=y\n\nC=\n").unwrap();
        std::fs::write(dir.path().join("v/b.yaml"), "z: 1\na: true\nn: ~\ns: text\n").unwrap();
        let vars = from_file(dir.path(), Path::new("v/a.env"), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            vars,
            [
                ("A".into(), "1".into()),
                ("B".into(), " x=y".into()),
                ("C".into(), String::new())
            ]
        );
        let vars = from_file(dir.path(), Path::new("v/b.yaml"), None)
            .unwrap()
            .unwrap();
        let keys: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "n", "s"]);
        assert_eq!(vars[1].1, "true");
        assert!(
            from_file(dir.path(), Path::new("v/none.env"), None)
                .unwrap()
                .is_none()
        );
        assert!(from_file(dir.path(), Path::new("../x.env"), None).is_err());
        std::fs::write(dir.path().join("v/bad.env"), "A=1\nnope\n").unwrap();
        let err = from_file(dir.path(), Path::new("v/bad.env"), None).unwrap_err();
        assert_eq!(err.to_string(), "v/bad.env:2: not KEY=VALUE");
        std::fs::write(dir.path().join("v/bad.yaml"), "a: [1]\n").unwrap();
        assert!(from_file(dir.path(), Path::new("v/bad.yaml"), None).is_err());
    }
}
