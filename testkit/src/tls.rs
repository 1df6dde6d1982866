//! TLS for the tests' own servers: a CA made for one test (with the
//! `openssl` CLI) and a TLS front (rustls) that terminates TLS on loopback
//! and passes the bytes to a plain server behind it. The certificate is
//! for `127.0.0.1` and `localhost`; nothing trusts the CA but whoever the
//! test hands `ca.pem` to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;

use crate::server::Background;
use crate::support::checked;

/// A CA and a server certificate it signed, in a temp dir.
pub struct Certs {
    _dir: tempfile::TempDir,
    /// The CA certificate (PEM): what clients must trust.
    pub ca: PathBuf,
    /// The server's certificate (PEM) and its key (PKCS#8 PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `openssl ARGS…` in `dir` (Debian package openssl).
fn openssl(dir: &Path, args: &[&str]) {
    checked(Command::new("openssl").current_dir(dir).args(args));
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=mooring test CA"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &ca);
        let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(d, &csr);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write ext.cnf");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                "server.pem",
                "-extfile",
                "ext.cnf",
            ],
        );
        Certs {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            _dir: dir,
        }
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca).expect("read ca.pem")
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs = pem_blocks(&self.cert, "CERTIFICATE")
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let key = pem_blocks(&self.key, "PRIVATE KEY").pop().expect("a PKCS#8 key");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the test certificate");
        Arc::new(config)
    }
}

/// The DER contents of every `-----BEGIN {label}-----` block of a PEM file.
fn pem_blocks(path: &Path, label: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).expect("read PEM");
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(&begin) {
        let body = &rest[i + begin.len()..];
        let j = body.find(&end).expect("END line");
        let b64: String = body[..j].chars().filter(|c| !c.is_whitespace()).collect();
        out.push(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64"),
        );
        rest = &body[j + end.len()..];
    }
    out
}

/// Terminates TLS on a loopback port and passes the bytes to
/// `127.0.0.1:upstream`. Stops when dropped.
pub struct TlsFront {
    pub port: u16,
    _server: Background,
}

impl TlsFront {
    pub fn start(certs: &Certs, upstream: u16) -> TlsFront {
        let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config());
        let server = Background::start("tls-front", move |listener| async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the CA ends here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            port: server.port,
            _server: server,
        }
    }
}
