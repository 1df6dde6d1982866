//! Registry credentials from a source's `auth`: none, basic
//! (`username` + `password-file`), a bearer `token-file`, or the entry for
//! the registry's host in a docker `config.json`. Files are read at fetch
//! time; their contents never reach an error message.

use std::path::Path;

use oci_client::secrets::RegistryAuth;

use crate::config;
use crate::source::Error;

pub(crate) fn resolve(auth: Option<&config::Auth>, registry: &str) -> Result<RegistryAuth, Error> {
    let Some(auth) = auth else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let (Some(user), Some(file)) = (&auth.username, &auth.password_file) {
        return Ok(RegistryAuth::Basic(user.clone(), read_secret(file)?));
    }
    if let Some(file) = &auth.token_file {
        return Ok(RegistryAuth::Bearer(read_secret(file)?));
    }
    if let Some(file) = &auth.docker_config {
        return docker_config(file, registry);
    }
    Ok(RegistryAuth::Anonymous)
}

/// A secret file's contents without the trailing line break.
fn read_secret(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Credentials {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn invalid(path: &Path, why: String) -> Error {
    Error::Credentials {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    }
}

/// The credentials for `registry` in a docker `config.json`, or anonymous
/// when it has none for that host. Credential helpers (`credsStore`,
/// `credHelpers`) are not run.
fn docker_config(path: &Path, registry: &str) -> Result<RegistryAuth, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Credentials {
        path: path.to_path_buf(),
        source,
    })?;
    // serde_json's messages name a line and column, never the content.
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(path, format!("not a docker config.json: {e}")))?;
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let wanted = canonical_host(registry);
    let Some((key, entry)) = auths.iter().find(|(k, _)| canonical_host(k) == wanted) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    if let Some(encoded) = field("auth") {
        let decoded = base64_decode(encoded)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                invalid(
                    path,
                    format!("the `auth` of \"{key}\" is not base64 of user:password"),
                )
            })?;
        let (user, pass) = decoded.split_once(':').ok_or_else(|| {
            invalid(
                path,
                format!("the `auth` of \"{key}\" is not base64 of user:password"),
            )
        })?;
        return Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()));
    }
    if let (Some(user), Some(pass)) = (field("username"), field("password")) {
        return Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()));
    }
    if let Some(token) = field("registrytoken") {
        return Ok(RegistryAuth::Bearer(token.to_string()));
    }
    Ok(RegistryAuth::Anonymous)
}

/// `https://index.docker.io/v1/` → `docker.io`; `127.0.0.1:5000` stays.
fn canonical_host(key: &str) -> String {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => host,
    }
}

/// Standard base64 (padding optional); `None` on anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.trim_end_matches('=').bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn basic(auth: RegistryAuth) -> (String, String) {
        match auth {
            RegistryAuth::Basic(u, p) => (u, p),
            other => panic!("not basic: {other:?}"),
        }
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert!(base64_decode("no!").is_none());
    }

    #[test]
    fn docker_config_matches_the_host_with_port() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(
            dir.path(),
            "config.json",
            r#"{"auths": {
                "127.0.0.1:5001": {"auth": "b3RoZXI6eA=="},
                "http://127.0.0.1:5000/v2/": {"auth": "dXNlcjpwYXNz"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "pw"}
            }}"#,
        );
        assert_eq!(
            basic(docker_config(&cfg, "127.0.0.1:5000").unwrap()),
            ("user".into(), "pass".into())
        );
        assert_eq!(
            basic(docker_config(&cfg, "docker.io").unwrap()),
            ("hub".into(), "pw".into())
        );
        assert!(matches!(
            docker_config(&cfg, "ghcr.io").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn bad_files_are_credential_errors_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(
            dir.path(),
            "config.json",
            "{\"auths\": {\"h:1\": {\"auth\": \"s3cret!!\"}}}",
        );
        let err = docker_config(&cfg, "h:1").unwrap_err();
        assert!(matches!(err, Error::Credentials { .. }));
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = resolve(
            Some(&config::Auth {
                username: Some("u".into()),
                password_file: Some(dir.path().join("missing")),
                ..Default::default()
            }),
            "h:1",
        )
        .unwrap_err();
        assert!(matches!(err, Error::Credentials { .. }), "{err:?}");
    }

    #[test]
    fn password_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let pw = write(dir.path(), "pw", "hunter2\r\n");
        let auth = config::Auth {
            username: Some("u".into()),
            password_file: Some(pw),
            ..Default::default()
        };
        assert_eq!(
            basic(resolve(Some(&auth), "h").unwrap()),
            ("u".into(), "hunter2".into())
        );
    }
}
