//! A remote repository as sources and automations reach it: its URL and
//! the URL as it may be shown ([`redact`]), its credentials ([`Secrets`])
//! and when a password or token may be sent at all
//! ([`credentials_allowed`]), and the one way to connect to it.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use gix::protocol::transport::client::blocking_io::Transport;

use super::secrets::Secrets;
use super::{Error, Stage};
use crate::config;

/// A remote repository and how to authenticate to it.
pub(crate) struct Remote {
    pub url: String,
    /// The URL with any password or token in it hidden.
    pub shown: String,
    pub secrets: Secrets,
    pub timeout: Duration,
    /// The source's `limits max-size`, named when gix refuses an object
    /// larger than that.
    pub max_bytes: u64,
}

/// A connection to a [`Remote`] for fetching.
pub(crate) type Connection<'a, 'r> = gix::remote::Connection<'a, 'static, 'r, Box<dyn Transport + Send>>;

impl Remote {
    /// The git remote of `source`, with its credentials loaded (from their
    /// files, now: a rotated token is picked up at the next operation).
    pub fn of(source: &config::Source, timeout: Duration, stage: Stage) -> Result<Remote, Error> {
        let config::SourceKind::Git { url, .. } = &source.kind else {
            return Err(Error::Invalid {
                stage,
                what: format!(
                    "the source `{}` ({}) is not a git repository",
                    source.name.as_str(),
                    redact(source.kind.url())
                ),
            });
        };
        let shown = redact(url);
        let secrets = Secrets::read(source.auth.as_ref(), timeout)
            .map_err(|(path, source)| Error::Credentials { stage, path, source })?
            .trust(source.ca_file.as_deref())
            .map_err(|e| Error::Invalid {
                stage,
                what: e.to_string(),
            })?;
        if secrets.basic.is_some() && !credentials_allowed(url) {
            return Err(Error::Auth {
                stage,
                url: shown,
                reason: "credentials are sent only over https (or plain http to a loopback address)".into(),
            });
        }
        Ok(Remote {
            url: url.clone(),
            shown,
            secrets,
            timeout,
            max_bytes: source.limits.max_bytes,
        })
    }

    /// Config overrides for a repository that talks to this remote: no
    /// reflogs, and the ssh command of a configured key.
    pub fn config_overrides(&self) -> Vec<String> {
        let mut overrides = vec!["core.logAllRefUpdates=false".to_string()];
        if let Some(cmd) = &self.secrets.ssh_command {
            overrides.push(format!("core.sshCommand={cmd}"));
            overrides.push("ssh.variant=ssh".into());
        }
        overrides
    }

    /// `text` without the URL's user info or the password or token.
    pub fn scrub(&self, text: &str) -> String {
        let text = if self.url != self.shown {
            text.replace(&self.url, &self.shown)
        } else {
            text.to_string()
        };
        self.secrets.scrub(&text)
    }

    /// `repo`'s view of this remote, fetching only `spec` and no tags.
    pub fn at<'r>(
        &self,
        repo: &'r gix::Repository,
        spec: &str,
        stage: Stage,
    ) -> Result<gix::Remote<'r>, Error> {
        let bad = |e: gix::Error| self.protocol(stage, self.reason(&e));
        repo.remote_at(self.url.as_str())
            .map_err(bad)?
            .with_fetch_tags(gix::remote::fetch::Tags::None)
            .with_refspecs([spec], gix::remote::Direction::Fetch)
            .map_err(bad)
    }

    /// Connect `remote` for a fetch, with the credential helper and the
    /// CA file's certificates.
    pub fn connect<'a, 'r>(
        &self,
        repo: &gix::Repository,
        remote: &'a gix::Remote<'r>,
        interrupt: &AtomicBool,
        stage: Stage,
    ) -> Result<Connection<'a, 'r>, Error> {
        let connection = match self.daemon(gix::protocol::transport::Protocol::V2, interrupt, stage)? {
            Some(transport) => remote.to_connection_with_transport(transport),
            None => remote
                .connect(gix::remote::Direction::Fetch)
                .map_err(|e| self.network(&e, interrupt, stage))?,
        };
        let mut connection = connection.with_credentials(self.secrets.helper(&self.url));
        if let Some(options) = self.secrets.http_options(repo, &self.url) {
            connection = connection.with_transport_options(options);
        }
        Ok(connection)
    }
}

impl Remote {
    /// For a `git://` URL, a connection to the daemon whose request goes
    /// out as it is written (`TCP_NODELAY`): gix writes a protocol v2
    /// request in many small pieces, and with Nagle's algorithm the last
    /// of them waits for the server's delayed acknowledgement, 40 ms on
    /// Linux, on every fetch. `None` for any other URL.
    pub fn daemon(
        &self,
        version: gix::protocol::transport::Protocol,
        interrupt: &AtomicBool,
        stage: Stage,
    ) -> Result<Option<Box<dyn Transport + Send>>, Error> {
        use gix::protocol::transport::client::git;
        let Ok(url) = gix::Url::from_bytes(self.url.as_str().into()) else {
            return Ok(None);
        };
        let (gix::url::Scheme::Git, Some(host)) = (&url.scheme, url.host()) else {
            return Ok(None);
        };
        let port = url.port.unwrap_or(9418);
        let io = |e: std::io::Error| {
            let e = std::io::Error::new(e.kind(), format!("could not connect to {host}:{port}: {e}"));
            self.io(&e, interrupt, stage)
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "the host name has no address");
        let mut stream = None;
        for addr in std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map_err(io)? {
            match std::net::TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let read = stream.ok_or(last).map_err(io)?;
        read.set_nodelay(true).map_err(io)?;
        let write = read.try_clone().map_err(io)?;
        Ok(Some(Box::new(git::blocking_io::Connection::new(
            read,
            write,
            version,
            url.path.clone(),
            Some((host.to_string(), url.port)),
            git::ConnectMode::Daemon,
            false,
        ))))
    }
}

/// `url` without any password or token in its user info.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        // Over HTTP a lone user name is often a token: hide all of it.
        Some((_, host)) if scheme.starts_with("http") => format!("{scheme}://***@{host}{path}"),
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Whether a password or token may be sent to `url`: not in clear text,
/// except to this machine.
pub fn credentials_allowed(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return true;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_and_tokens() {
        assert_eq!(redact("https://bot:s3cret@host/r.git"), "https://***@host/r.git");
        assert_eq!(redact("https://tok3n@host/r.git"), "https://***@host/r.git");
        assert_eq!(redact("ssh://git:pw@host/r.git"), "ssh://git:***@host/r.git");
        assert_eq!(redact("ssh://git@host/r.git"), "ssh://git@host/r.git");
        assert_eq!(redact("git@host:r.git"), "git@host:r.git");
    }

    #[test]
    fn credentials_go_in_clear_text_only_to_this_machine() {
        assert!(credentials_allowed("https://example.com/r.git"));
        assert!(credentials_allowed("http://127.0.0.1:8080/r.git"));
        assert!(credentials_allowed("http://localhost/r.git"));
        assert!(credentials_allowed("http://[::1]:80/r.git"));
        assert!(!credentials_allowed("http://example.com/r.git"));
        assert!(!credentials_allowed("http://127.0.0.1.example.com/r.git"));
    }
}
