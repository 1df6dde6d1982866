//! Credentials for one fetch or push: read from the files `auth` names at
//! the time of use (a rotated token is picked up without a restart),
//! handed to gix in memory, never written to a repository's config, and
//! scrubbed from every message ([`Secrets::scrub`]). The credential helper
//! answers only for the configured origin; ssh runs with `-F /dev/null`
//! and only the configured key and known_hosts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gix::bstr::ByteSlice as _;

use crate::config;

/// Credentials and the CA file's certificates, read from their files for
/// one fetch or push only.
pub(crate) struct Secrets {
    /// HTTP basic user name and password (or token).
    pub(crate) basic: Option<(String, String)>,
    /// `core.sshCommand` for a configured key.
    pub(crate) ssh_command: Option<String>,
    /// `ca-file`: certificates (DER) trusted for HTTPS besides the system's.
    pub(crate) ca: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("basic", &self.basic.as_ref().map(|(user, _)| (user, "***")))
            .field("ssh_command", &self.ssh_command)
            .finish()
    }
}

impl Secrets {
    /// Read the files `auth` names; the file that could not be read, and why.
    pub(crate) fn read(
        auth: Option<&config::Auth>,
        timeout: Duration,
    ) -> Result<Secrets, (PathBuf, std::io::Error)> {
        let Some(auth) = auth else {
            return Ok(Secrets {
                basic: None,
                ssh_command: None,
                ca: Vec::new(),
            });
        };
        let basic = match (&auth.password_file, &auth.token_file) {
            (Some(file), _) => Some((
                auth.username.clone().unwrap_or_else(|| "git".into()),
                secret_text(file).map_err(|e| (file.clone(), e))?,
            )),
            (None, Some(file)) => Some((
                auth.username.clone().unwrap_or_else(|| "x-access-token".into()),
                secret_text(file).map_err(|e| (file.clone(), e))?,
            )),
            (None, None) => None,
        };
        let ssh_command = match &auth.ssh_key {
            Some(key) => {
                std::fs::File::open(key).map_err(|e| (key.clone(), e))?;
                // `-F /dev/null`: no ssh_config of the user or the machine, whose
                // IdentityFile, KnownHostsCommand, ProxyCommand… would apply too.
                let mut cmd = format!(
                    "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout={}",
                    shell_quote(key),
                    timeout.as_secs().max(1)
                );
                if let Some(known) = &auth.known_hosts {
                    std::fs::File::open(known).map_err(|e| (known.clone(), e))?;
                    // Only this file vouches: not /etc/ssh/ssh_known_hosts either.
                    cmd.push_str(&format!(
                        " -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null",
                        shell_quote(known)
                    ));
                }
                Some(cmd)
            }
            None => None,
        };
        Ok(Secrets {
            basic,
            ssh_command,
            ca: Vec::new(),
        })
    }

    /// Trust the certificates of `ca_file` too (read now).
    pub(crate) fn trust(mut self, ca_file: Option<&Path>) -> Result<Secrets, crate::tls::Error> {
        if let Some(path) = ca_file {
            self.ca = crate::tls::read_ca_file(path)?;
        }
        Ok(self)
    }

    /// gix's HTTP options for `url` from `repo`'s config, with a client
    /// that trusts the CA file's certificates too; `None` without a CA
    /// file (gix then uses the repository's options as they are).
    pub(crate) fn http_options(&self, repo: &gix::Repository, url: &str) -> Option<Box<dyn std::any::Any>> {
        use gix::protocol::transport::client::blocking_io::http;
        if self.ca.is_empty() || !url.starts_with("https://") {
            return None;
        }
        let mut options = repo
            .transport_options(url.as_bytes().as_bstr(), None)
            .ok()
            .flatten()
            .and_then(|o| o.downcast::<http::Options>().ok())
            .map(|o| *o)
            .unwrap_or_default();
        let certs: Vec<reqwest::Certificate> = self
            .ca
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok())
            .collect();
        let backend = http::reqwest::Options {
            configure_client: Some(Box::new(
                move |builder| Ok(builder.tls_certs_merge(certs.clone())),
            )),
            configure_request: None,
        };
        options.backend = Some(Arc::new(Mutex::new(backend)));
        Some(Box::new(options))
    }

    /// The credential helper gix calls when the server asks. It answers
    /// only for `url`'s origin (scheme, host and port): a server that
    /// redirects elsewhere and asks there for credentials gets none.
    pub(crate) fn helper(
        &self,
        url: &str,
    ) -> impl FnMut(
        gix::credentials::helper::Action,
    ) -> gix::Result<Option<gix::credentials::protocol::Outcome>>
    + 'static {
        let basic = self.basic.clone();
        let origin = origin(url.as_bytes());
        move |action| match (action, &basic) {
            (gix::credentials::helper::Action::Get(ctx), Some((user, password)))
                if origin.is_some() && asked_origin(&ctx) == origin =>
            {
                Ok(Some(gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: user.clone(),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: ctx.into(),
                }))
            }
            _ => Ok(None),
        }
    }

    /// `text` with the password or token replaced.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.basic {
            Some((_, secret)) if !secret.is_empty() => text.replace(secret.as_str(), "***"),
            _ => text.to_string(),
        }
    }
}

/// `(scheme, host, port)` of `url`, the port made explicit; `None` when it
/// has no host.
fn origin(url: &[u8]) -> Option<(String, String, Option<u16>)> {
    let url = gix::url::parse(gix::bstr::BStr::new(url)).ok()?;
    let host = url.host()?.to_ascii_lowercase();
    Some((url.scheme.as_str().to_string(), host, url.port_or_default()))
}

/// The origin a credential request is for.
fn asked_origin(ctx: &gix::credentials::protocol::Context) -> Option<(String, String, Option<u16>)> {
    match &ctx.url {
        Some(url) => origin(url),
        None => origin(&ctx.to_url()?),
    }
}

/// A secret file's content without one trailing line break.
pub fn secret_text(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

/// `path` quoted for the shell command line gix runs ssh with.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_of_one_newline_scrubbed_and_not_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        assert_eq!(secret_text(&file).unwrap(), "s3cret");
        let auth = config::Auth {
            token_file: Some(file),
            ..Default::default()
        };
        let secrets = Secrets::read(Some(&auth), Duration::from_secs(5)).unwrap();
        assert_eq!(
            secrets.basic,
            Some(("x-access-token".to_string(), "s3cret".to_string()))
        );
        assert_eq!(secrets.scrub("bad s3cret here"), "bad *** here");
        assert!(!format!("{secrets:?}").contains("s3cret"));
        let missing = config::Auth {
            password_file: Some(dir.path().join("nope")),
            username: Some("bot".into()),
            ..Default::default()
        };
        assert!(Secrets::read(Some(&missing), Duration::from_secs(5)).is_err());
    }

    #[test]
    fn credentials_are_given_only_to_the_configured_origin() {
        let secrets = Secrets {
            basic: Some(("bot".into(), "pw".into())),
            ssh_command: None,
            ca: Vec::new(),
        };
        let mut helper = secrets.helper("https://git.example.com/org/repo.git");
        let mut ask = |url: &str| {
            let ctx = gix::credentials::protocol::Context {
                url: Some(url.into()),
                ..Default::default()
            };
            helper(gix::credentials::helper::Action::Get(ctx))
                .expect("helper")
                .is_some()
        };
        assert!(ask("https://git.example.com/org/repo.git"));
        assert!(
            ask("https://GIT.example.com:443/org/other.git"),
            "same origin, other path"
        );
        assert!(!ask("http://git.example.com/org/repo.git"), "downgraded to http");
        assert!(!ask("https://git.example.com:8443/org/repo.git"), "another port");
        assert!(!ask("https://evil.example.com/org/repo.git"), "another host");
    }

    #[test]
    fn ssh_paths_are_quoted() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
