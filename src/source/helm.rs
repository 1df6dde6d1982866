//! Helm chart repositories: takes a `helm` source, gives an [`Artifact`]
//! of its index, and, for an app's `chart NAME version=RANGE`, an
//! [`Artifact`] holding that chart.
//!
//! An HTTP(S) repository is Helm's: `URL/index.yaml` lists every chart's
//! versions, each with the URLs of its archive and usually its sha256
//! digest. The source's artifact is the index (revision `sha256:<hex>` of
//! its bytes, so an unchanged index makes no new artifact). A chart is
//! picked from it (the highest version in the range, pre-releases only when
//! the range names one, as Helm picks), and its archive downloaded into an
//! artifact of its own, `chart.tgz` (revision `VERSION@sha256:<hex>`): an
//! archive whose digest the index gives and the store holds is not
//! downloaded again. Credentials (`username` + `password-file`, or
//! `token-file` as a bearer token) go only to the repository's own
//! scheme, host and port, as Helm sends them without `--pass-credentials`.
//!
//! An `oci://` repository holds each chart as an OCI artifact in the
//! repository `URL/NAME`; the chart is pulled with the OCI client (tags
//! resolved by the range, the same auth, digests and caps as OCI sources),
//! and the artifact holds its layer as `chart.tgz`, as for HTTP: no ignore
//! rules touch a chart's files. Such a source has no index: its own
//! artifact is empty, and its revision is that of each chart its apps
//! install (`NAME@VERSION@sha256:<manifest digest>`, as Flux's HelmChart
//! reports `VERSION@sha256:…`), each pulled as the app will use it: a new
//! version, or a tag pushed again, is a new revision that wakes the apps.
//!
//! Everything the server sends is hostile: the index and archives are
//! size-capped while they stream, the archive must match the index's
//! digest, and plain HTTP needs `insecure #true` unless the host is a
//! loopback address. Archives are not unpacked here; the renderer reads
//! them in memory with its own caps and path rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};

use super::artifact::hex;
use super::{Artifact, Error, Limits, Store, oci, redact};
use crate::busy::CancelOnDrop;
use crate::config::{self, ChartRef};

/// The largest `index.yaml` read.
pub const MAX_INDEX_BYTES: u64 = 64 << 20;
/// The largest chart archive downloaded (Helm's own cap on a chart,
/// unpacked, is 100 MiB).
pub const MAX_ARCHIVE_BYTES: u64 = 100 << 20;
/// The file of a chart artifact.
pub const ARCHIVE: &str = "chart.tgz";
/// The file of a source artifact of an HTTP repository.
pub const INDEX: &str = "index.yaml";

/// A chart, fetched.
#[derive(Debug, Clone)]
pub struct Chart {
    pub artifact: Artifact,
    /// The chart to load: the archive.
    pub path: PathBuf,
    pub version: String,
}

/// Fetch the source's own artifact: the index of an HTTP repository; for
/// an OCI repository, an empty one whose revision names the resolved
/// version and manifest digest of each of `charts` (the charts its apps
/// install; `oci` without any).
pub async fn fetch(
    source: &config::Source,
    state_dir: &Path,
    store: &Store,
    charts: &[&ChartRef],
) -> Result<Artifact, Error> {
    let config::SourceKind::Helm { url, insecure } = &source.kind else {
        return Err(protocol(source.kind.url(), "not a Helm repository source"));
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop_if_given_up = CancelOnDrop(cancel.clone());
    if let Some(repo) = url.strip_prefix("oci://") {
        let mut wanted: Vec<&ChartRef> = charts.to_vec();
        wanted.sort_by(|a, b| (&a.name.value, &a.version).cmp(&(&b.name.value, &b.version)));
        wanted.dedup_by(|a, b| a == b);
        let mut revisions = Vec::with_capacity(wanted.len());
        for chart in wanted {
            let fetched = oci_chart(source, repo, *insecure, chart, state_dir).await?;
            revisions.push(format!("{}@{}", chart.name.value, fetched.artifact.revision));
        }
        let revision = if revisions.is_empty() {
            "oci".to_string()
        } else {
            revisions.join(",")
        };
        let (name, store, limits) = (source.name.value.clone(), store.clone(), source.limits);
        return blocking(url, move || {
            store.create(&name, &revision, &[], limits, &cancel, |_| Ok(()))
        })
        .await;
    }
    let http = Http::new(source, url, *insecure)?;
    let index_url = format!("{url}/{INDEX}");
    let fetch = http.get(
        &index_url,
        MAX_INDEX_BYTES.min(source.limits.max_bytes),
        state_dir,
    );
    let (file, digest) = match tokio::time::timeout(source.timeout, fetch).await {
        Ok(r) => r?,
        Err(_) => return Err(timeout(url, source.timeout)),
    };
    let bytes = std::fs::read(file.path()).map_err(|e| Error::io(file.path(), e))?;
    parse_index(&bytes, url)?;
    let revision = format!("sha256:{digest}");
    let (name, store, limits) = (source.name.value.clone(), store.clone(), source.limits);
    blocking(url, move || {
        store.create(&name, &revision, &[], limits, &cancel, |w| {
            w.file(INDEX, false, &mut bytes.as_slice())
        })
    })
    .await
}

/// The store name of `chart`'s artifacts from `source`: not a valid
/// source name, so it never collides with one.
pub fn store_name(source: &str, chart: &str) -> String {
    format!("{source}@{chart}")
}

/// The chart `chart` names, from the source's artifact `index` (HTTP) or
/// straight from the registry (OCI).
pub async fn chart(
    source: &config::Source,
    index: &Artifact,
    chart: &ChartRef,
    state_dir: &Path,
) -> Result<Chart, Error> {
    let config::SourceKind::Helm { url, insecure } = &source.kind else {
        return Err(protocol(source.kind.url(), "not a Helm repository source"));
    };
    let range_text = chart.version.as_deref().unwrap_or("*");
    let range = crate::tags::Range::parse(range_text).map_err(|e| Error::Rejected {
        entry: format!("version \"{range_text}\""),
        reason: e.reason,
    })?;
    if let Some(repo) = url.strip_prefix("oci://") {
        return oci_chart(source, repo, *insecure, chart, state_dir).await;
    }
    let store = Store::new(state_dir);
    let name = store_name(&source.name, &chart.name);
    let limits = Limits {
        max_bytes: source.limits.max_bytes.min(MAX_ARCHIVE_BYTES),
        ..source.limits
    };

    let index_path = index.dir.join(INDEX);
    let bytes = std::fs::read(&index_path).map_err(|e| Error::io(&index_path, e))?;
    let parsed = parse_index(&bytes, url)?;
    let Some(versions) = parsed.entries.get(chart.name.as_str()) else {
        let known: Vec<&str> = parsed.entries.keys().map(String::as_str).collect();
        let hint = crate::config::value::suggest(&chart.name, known.iter().copied())
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        return Err(Error::NotFound {
            url: redact(url),
            what: format!("chart \"{}\"{hint}", chart.name.value),
        });
    };
    let Some(version) = crate::tags::highest(versions.iter().map(|v| v.version.as_str()), &range) else {
        return Err(Error::NotFound {
            url: redact(url),
            what: format!(
                "version of chart \"{}\" matching \"{range_text}\" (among {} versions)",
                chart.name.value,
                versions.len()
            ),
        });
    };
    let entry = versions
        .iter()
        .find(|v| v.version == version)
        .ok_or_else(|| protocol(url, "the index changed while it was read"))?;
    let digest = entry
        .digest
        .as_deref()
        .map(|d| d.trim_start_matches("sha256:").to_ascii_lowercase())
        .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(d) = &digest
        && let Some(artifact) = store.existing(&name, &format!("{version}@sha256:{d}"))
    {
        return Ok(Chart {
            path: artifact.dir.join(ARCHIVE),
            artifact,
            version: version.to_string(),
        });
    }
    let Some(first) = entry.urls.first() else {
        return Err(Error::NotFound {
            url: redact(url),
            what: format!("URL for chart \"{}\" {version}", chart.name.value),
        });
    };
    let archive_url = resolve_url(url, first);
    let http = Http::new(source, &archive_url, *insecure)?.for_repository(url);
    let fetch = http.get(&archive_url, limits.max_bytes, state_dir);
    let (file, actual) = match tokio::time::timeout(source.timeout, fetch).await {
        Ok(r) => r?,
        Err(_) => return Err(timeout(&archive_url, source.timeout)),
    };
    if let Some(d) = &digest
        && *d != actual
    {
        return Err(Error::Rejected {
            entry: redact(&archive_url),
            reason: format!("its sha256 is {actual}, not {d} as the repository's index says"),
        });
    }
    let revision = format!("{version}@sha256:{actual}");
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop_if_given_up = CancelOnDrop(cancel.clone());
    let (store_name, store2) = (name.clone(), store.clone());
    let artifact = blocking(url, move || {
        let mut reader = std::fs::File::open(file.path()).map_err(|e| Error::io(file.path(), e))?;
        store2.create(&store_name, &revision, &[], limits, &cancel, |w| {
            w.file(ARCHIVE, false, &mut reader)
        })
    })
    .await?;
    store.gc(&name, &artifact.dir, super::artifact::KEEP)?;
    Ok(Chart {
        path: artifact.dir.join(ARCHIVE),
        artifact,
        version: version.to_string(),
    })
}

#[derive(Debug, serde::Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

#[derive(Debug, serde::Deserialize)]
struct IndexEntry {
    version: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// `chart` from the `oci://` repository `repo`: the OCI repository
/// `repo/NAME`, its tag the highest in the range, pulled (or found in the
/// store by its manifest digest) into an artifact of its own.
async fn oci_chart(
    source: &config::Source,
    repo: &str,
    insecure: bool,
    chart: &ChartRef,
    state_dir: &Path,
) -> Result<Chart, Error> {
    let range_text = chart.version.as_deref().unwrap_or("*");
    let store = Store::new(state_dir);
    let name = store_name(&source.name, &chart.name);
    let limits = Limits {
        max_bytes: source.limits.max_bytes.min(MAX_ARCHIVE_BYTES),
        ..source.limits
    };
    let oci_source = config::Source {
        name: config::Spanned::new(name.clone(), source.name.span),
        kind: config::SourceKind::Oci {
            url: format!("{}/{}", repo.trim_end_matches('/'), chart.name.value),
            reference: config::OciRef::Semver(range_text.to_string()),
            insecure,
        },
        interval: source.interval,
        timeout: source.timeout,
        auth: source.auth.clone(),
        ca_file: source.ca_file.clone(),
        ignore: Vec::new(),
        limits,
    };
    let artifact = oci::fetch_layer(&oci_source, state_dir, &store, ARCHIVE).await?;
    store.gc(&name, &artifact.dir, super::artifact::KEEP)?;
    let version = artifact
        .revision
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(Chart {
        path: artifact.dir.join(ARCHIVE),
        artifact,
        version,
    })
}

fn parse_index(bytes: &[u8], url: &str) -> Result<Index, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| protocol(url, "its index.yaml is not UTF-8"))?;
    // Big public indexes (tens of MB) need more events than the defaults
    // allow; the bytes were capped while downloading.
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_events: 40_000_000,
            max_nodes: 20_000_000,
            max_total_scalar_bytes: MAX_INDEX_BYTES as usize,
        },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        protocol(
            url,
            &format!("its index.yaml is not a Helm repository index: {e}"),
        )
    })
}

/// `rel` against the repository `base`, as Helm resolves chart URLs: an
/// absolute URL stays, `/path` replaces the path, anything else is below
/// the repository.
fn resolve_url(base: &str, rel: &str) -> String {
    if rel.contains("://") {
        return rel.to_string();
    }
    if let Some(path) = rel.strip_prefix('/') {
        let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
        let host = rest.split('/').next().unwrap_or_default();
        return format!("{scheme}://{host}/{path}");
    }
    format!("{base}/{}", rel.trim_start_matches("./"))
}

/// `scheme://host:port` of a URL, for comparing origins.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

/// One HTTP client for a repository: its credentials, its origin.
struct Http {
    client: reqwest::Client,
    auth: RegistryAuth,
    origin: String,
}

impl Http {
    fn new(source: &config::Source, url: &str, insecure: bool) -> Result<Http, Error> {
        let loopback = {
            let host = origin(url).split("://").nth(1).unwrap_or_default();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => host.split(':').next().unwrap_or_default(),
            };
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        };
        if url.starts_with("http://") && !insecure && !loopback {
            return Err(Error::Rejected {
                entry: redact(url),
                reason: "plain HTTP to a host that is not loopback: use https://, or set `insecure #true`"
                    .into(),
            });
        }
        let auth = oci::auth::resolve(source.auth.as_ref(), "")?;
        let certs = crate::tls::reqwest_certificates(source.ca_file.as_deref())?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("mooring/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .tls_certs_merge(certs)
            .build()
            .map_err(|e| protocol(url, &format!("cannot build an HTTP client: {e}")))?;
        Ok(Http {
            client,
            auth,
            origin: origin(url).to_string(),
        })
    }

    /// Send credentials only to `repository`'s origin.
    fn for_repository(mut self, repository: &str) -> Http {
        self.origin = origin(repository).to_string();
        self
    }

    /// Download `url` into a temp file under `state_dir`, at most `cap`
    /// bytes: the file and its sha256 (hex).
    async fn get(
        &self,
        url: &str,
        cap: u64,
        state_dir: &Path,
    ) -> Result<(tempfile::NamedTempFile, String), Error> {
        use std::io::Write as _;
        let shown = redact(url);
        let mut request = self.client.get(url);
        if origin(url) == self.origin {
            request = match &self.auth {
                RegistryAuth::Basic(user, password) => request.basic_auth(user, Some(password)),
                RegistryAuth::Bearer(token) => request.bearer_auth(token),
                RegistryAuth::Anonymous => request,
            };
        }
        let mut res = request.send().await.map_err(|e| Error::Unreachable {
            url: shown.clone(),
            reason: oci::chain(&e).replace(url, &shown),
        })?;
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Error::Auth {
                url: shown,
                reason: format!("HTTP {status}"),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                url: shown,
                what: "such file (HTTP 404)".into(),
            });
        }
        if !status.is_success() {
            return Err(protocol(&shown, &format!("HTTP {status}")));
        }
        if let Some(len) = res.content_length()
            && len > cap
        {
            return Err(too_large(&shown, cap));
        }
        std::fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
        let mut file = tempfile::NamedTempFile::new_in(state_dir).map_err(|e| Error::io(state_dir, e))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let progress = crate::progress::start(
            format!("downloading {shown}"),
            crate::progress::Unit::Bytes,
            res.content_length(),
        );
        while let Some(chunk) = res.chunk().await.map_err(|e| Error::Unreachable {
            url: shown.clone(),
            reason: oci::chain(&e).replace(url, &shown),
        })? {
            written += chunk.len() as u64;
            progress.set(written);
            if written > cap {
                return Err(too_large(&shown, cap));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(|e| Error::io(file.path(), e))?;
        }
        file.flush().map_err(|e| Error::io(file.path(), e))?;
        Ok((file, hex(&hasher.finalize())))
    }
}

fn too_large(url: &str, cap: u64) -> Error {
    Error::Rejected {
        entry: url.to_string(),
        reason: format!("it is larger than the limit of {cap} bytes"),
    }
}

fn protocol(url: &str, reason: &str) -> Error {
    Error::Protocol {
        url: redact(url),
        reason: reason.to_string(),
    }
}

fn timeout(url: &str, timeout: std::time::Duration) -> Error {
    Error::Timeout {
        url: redact(url),
        timeout,
    }
}

/// Run store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    url: &str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Protocol {
            url: redact(url),
            reason: format!("the store task failed: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_urls_resolve_as_helm_resolves_them() {
        let base = "https://charts.example.com/stable";
        assert_eq!(
            resolve_url(base, "redis-1.0.0.tgz"),
            "https://charts.example.com/stable/redis-1.0.0.tgz"
        );
        assert_eq!(
            resolve_url(base, "/dl/redis-1.0.0.tgz"),
            "https://charts.example.com/dl/redis-1.0.0.tgz"
        );
        assert_eq!(
            resolve_url(base, "https://cdn.example.org/r.tgz"),
            "https://cdn.example.org/r.tgz"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://a.example.com:8443/x/y"),
            "https://a.example.com:8443"
        );
        assert_ne!(
            origin("https://a.example.com/x"),
            origin("https://cdn.example.com/x")
        );
        assert_ne!(
            origin("http://a.example.com/x"),
            origin("https://a.example.com/x")
        );
    }

    #[test]
    fn an_index_lists_versions_urls_and_digests() {
        let text = "apiVersion: v1\nentries:\n  redis:\n  - version: 1.2.0\n    urls: [redis-1.2.0.tgz]\n    digest: abc\n    created: 2026-01-01T00:00:00Z\n  - version: 1.10.0\n    urls: [redis-1.10.0.tgz]\ngenerated: now\n";
        let index = parse_index(text.as_bytes(), "https://x").expect("index");
        let versions = &index.entries["redis"];
        let range = crate::tags::Range::parse("*").expect("range");
        assert_eq!(
            crate::tags::highest(versions.iter().map(|v| v.version.as_str()), &range),
            Some("1.10.0")
        );
        assert!(parse_index(b"entries: [1, 2]", "https://x").is_err());
    }

    #[test]
    fn plain_http_needs_insecure_unless_on_loopback() {
        let source = |url: &str, insecure: bool| config::Source {
            name: config::Spanned::new("charts".into(), (0, 0).into()),
            kind: config::SourceKind::Helm {
                url: url.into(),
                insecure,
            },
            interval: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(60),
            auth: None,
            ca_file: None,
            ignore: Vec::new(),
            limits: Limits::default(),
        };
        for (url, insecure, allowed) in [
            ("http://charts.example.com/x", false, false),
            ("http://charts.example.com/x", true, true),
            ("http://127.0.0.1:8080/x", false, true),
            ("http://localhost/x", false, true),
            ("http://[::1]:80/x", false, true),
            ("https://charts.example.com/x", false, true),
        ] {
            let result = Http::new(&source(url, insecure), url, insecure);
            assert_eq!(result.is_ok(), allowed, "{url} insecure={insecure}");
        }
    }
}
