//! A real OCI registry for tests: the distribution registry
//! (`docker-registry serve`) on a free loopback port, storing into a temp
//! dir, optionally behind htpasswd basic auth; artifacts are built as OCI
//! layouts (Flux's format) and pushed with `skopeo copy`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub use crate::support::base64;
use crate::support::checked;

pub const FLUX_LAYER: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";

/// User and password of a registry started with [`Registry::with_auth`].
pub const USER: &str = "mooring";
pub const PASSWORD: &str = "correct horse";
/// bcrypt of PASSWORD, for when `htpasswd` is not installed.
const PRECOMPUTED_HTPASSWD: &str = "mooring:$2y$05$HL3HdHxVnyYrQu7ZyMiQ0OZCrCe9rEIvUpwvw9AdbBWng6Ycjdl/S";

pub use crate::support::free_port;

/// A running registry; killed on drop.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    auth: bool,
    /// Serving HTTPS with this CA (PEM) instead of plain HTTP.
    tls: Option<String>,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::launch(false, None)
    }

    /// Basic auth required for everything, as [`USER`]/[`PASSWORD`].
    pub fn with_auth() -> Registry {
        Registry::launch(true, None)
    }

    /// HTTPS only, with the certificate of `certs` (docker-registry's own TLS).
    pub fn with_tls(certs: &crate::tls::Certs) -> Registry {
        Registry::launch(false, Some(certs))
    }

    fn launch(auth: bool, tls: Option<&crate::tls::Certs>) -> Registry {
        let mut last_log = String::new();
        // A free port can be taken between asking and binding: retry.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("registry temp dir");
            let port = free_port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            if let Some(certs) = tls {
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    certs.cert.display(),
                    certs.key.display()
                ));
            }
            if auth {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, htpasswd_line() + "\n").expect("write htpasswd");
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: mooring-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write registry config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry (Debian package docker-registry)");
            let mut registry = Registry {
                dir,
                child,
                port,
                auth,
                tls: tls.map(crate::tls::Certs::ca_pem),
            };
            if registry.wait_ready() {
                return registry;
            }
            last_log = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start\n{last_log}");
    }

    /// Poll `/v2/` until it answers (200, or 401 with auth).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let status = match &self.tls {
                Some(ca) => https_status(self.port, "/v2/", ca),
                None => http_status(self.port, "/v2/"),
            };
            if let Some(status) = status {
                return status == 200 || status == 401;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/NAME`, as a source's `oci` value.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// Push a Flux-format artifact with `layer` (a tar.gz) as
    /// `repo:tag`; returns the manifest digest (`sha256:<hex>`).
    pub fn push(&self, repo: &str, tag: &str, layer: &[u8]) -> String {
        let layout = Layout::new(layer);
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "--dest-tls-verify=false", "--quiet"]);
        if self.auth {
            cmd.arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        }
        cmd.arg(format!("oci:{}:art", layout.dir.path().display()))
            .arg(format!("docker://{}:{tag}", self.repo(repo)));
        checked(&mut cmd);
        layout.manifest_digest
    }

    /// Where the registry keeps the bytes of blob `digest`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn htpasswd_line() -> String {
    let out = Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => PRECOMPUTED_HTPASSWD.to_string(),
    }
}

/// The status code of `GET https://127.0.0.1:port{path}`, trusting `ca`.
fn https_status(port: u16, path: &str, ca: &str) -> Option<u16> {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).ok()?])
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let res = client
        .get(format!("https://127.0.0.1:{port}{path}"))
        .send()
        .ok()?;
    Some(res.status().as_u16())
}

/// The status code of `GET path` on loopback, if anything answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An OCI image layout holding one Flux artifact, tagged `art`.
struct Layout {
    dir: tempfile::TempDir,
    manifest_digest: String,
}

impl Layout {
    fn new(layer: &[u8]) -> Layout {
        let dir = tempfile::tempdir().expect("layout dir");
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("blobs dir");
        let put = |bytes: &[u8]| {
            let digest = sha256(bytes);
            std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).expect("write blob");
            digest
        };
        let config = br#"{}"#;
        let config_digest = put(config);
        let layer_digest = put(layer);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.flux.config.v1+json",
            "config": {"mediaType": FLUX_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": FLUX_LAYER, "digest": layer_digest, "size": layer.len()}],
        });
        let manifest = serde_json::to_vec(&manifest).expect("manifest json");
        let manifest_digest = put(&manifest);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "art"},
            }],
        });
        std::fs::write(
            dir.path().join("index.json"),
            serde_json::to_vec(&index).expect("index"),
        )
        .expect("index.json");
        std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        Layout { dir, manifest_digest }
    }
}

/// One tar entry: a regular file, a directory, or a hostile kind.
pub enum Entry<'a> {
    File(&'a str, &'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A tar.gz of `entries`, names written raw (unchecked), so hostile
/// archives can be built.
pub fn tarball(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let (name, kind, link, data): (&str, tar::EntryType, &str, &[u8]) = match entry {
            Entry::File(name, content) => (name, tar::EntryType::Regular, "", content.as_bytes()),
            Entry::Dir(name) => (name, tar::EntryType::Directory, "", b""),
            Entry::Symlink(name, target) => (name, tar::EntryType::Symlink, target, b""),
            Entry::Hardlink(name, target) => (name, tar::EntryType::Link, target, b""),
        };
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().expect("gnu header");
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, data).expect("append tar entry");
    }
    let tar = builder.into_inner().expect("finish tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// Every regular file and symlink under `dir`, relative.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = crate::support::walk(dir)
        .into_iter()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| e.path())
        })
        .collect();
    out.sort();
    out
}
