//! One scan of an image: the tags of its repository through oci-client
//! (every page, with the image's credentials, plain HTTP when `insecure`),
//! the policy's pick, optionally that tag's manifest digest, and the list
//! written to `state-dir/images/<name>.json` for [`last`].
//!
//! oci-client keeps response headers to itself, so a `429 Too Many
//! Requests` loses its `Retry-After`. On a 429 the same request is made
//! once more by hand (same URL, the token oci-client obtains for the
//! repository): its answer is used when the limit has already passed,
//! and its `Retry-After` (seconds or an HTTP date) is reported otherwise.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::{Error, MAX_RETRY_AFTER, Selection, policy};
use crate::config;
use crate::source::oci as shared;

/// The outcome of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub selection: Selection,
    /// How many tags the repository has (that the policy looked at).
    pub considered: usize,
    /// Tags the policy could not read: `(tag, why)`, sorted by tag. The
    /// caller logs them; they do not fail the scan.
    pub skipped: Vec<(String, String)>,
    /// Dropped by `exclude` (or the default `.sig` exclusion).
    pub excluded: usize,
    /// Dropped because they do not match `filter`.
    pub filtered: usize,
    /// The tags came from the last good scan kept in the state dir
    /// ([`cached`]), not from the registry.
    pub from_cache: bool,
}

/// List `image`'s tags, pick one by its policy and, with
/// `resolve_digest`, resolve the tag's manifest digest, all within the
/// image's `timeout`. A success is kept in the state dir; after a failure
/// [`last`] gives the pick of the last success.
pub async fn scan(image: &config::Image, state_dir: &Path, resolve_digest: bool) -> Result<Scan, Error> {
    let repository = image.repository.as_str();
    let rules = policy::Rules::for_image(image).map_err(|problem| Error::Policy {
        repository: repository.to_string(),
        problem,
    })?;
    let work = async {
        let registry = Registry::connect(image)?;
        let tags = registry.tags(shared::TAG_PAGE).await?;
        let choice = rules
            .select(tags.iter().map(String::as_str))
            .map_err(|problem| Error::Policy {
                repository: repository.to_string(),
                problem,
            })?;
        let digest = if resolve_digest {
            Some(registry.digest(&choice.tag).await?)
        } else {
            None
        };
        Ok::<_, Error>((tags, choice, digest))
    };
    let (tags, choice, digest) = within(image, work).await?;
    let selection = Selection {
        repository: image.repository.clone(),
        tag: choice.tag,
        digest,
    };
    if let Some(path) = cache_path(image, state_dir) {
        let record = Record {
            repository: image.repository.clone(),
            scanned_at: jiff::Timestamp::now(),
            selection: selection.clone(),
            tags,
        };
        let written = tokio::task::spawn_blocking(move || record.save(&path).map_err(|e| (path, e))).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err((path, e))) => tracing::warn!(
                image = image.name.as_str(),
                "cannot keep the tag list of {repository} in {}: {e}",
                path.display()
            ),
            Err(e) => tracing::warn!(
                image = image.name.as_str(),
                "cannot keep the tag list of {repository}: {e}"
            ),
        }
    }
    Ok(Scan {
        selection,
        considered: choice.total,
        skipped: choice.skipped,
        excluded: choice.excluded,
        filtered: choice.filtered,
        from_cache: false,
    })
}

/// Every tag of `image`'s repository, asking for `page_size` tags per
/// request, within the image's `timeout`.
pub async fn list_tags(image: &config::Image, page_size: usize) -> Result<Vec<String>, Error> {
    within(image, async {
        Registry::connect(image)?.tags(page_size.max(1)).await
    })
    .await
}

/// The pick of the last good scan kept in `state_dir`, under `image`'s
/// current policy: `None` when there is none, it was for another
/// repository, or the policy picks nothing from it. The digest is the
/// last one resolved for the picked tag, if that tag is still the pick.
pub fn last(image: &config::Image, state_dir: &Path) -> Option<Selection> {
    cached(image, state_dir).map(|s| s.selection)
}

/// [`last`], with what the policy made of the kept tag list
/// (`from_cache` is set).
pub fn cached(image: &config::Image, state_dir: &Path) -> Option<Scan> {
    let path = cache_path(image, state_dir)?;
    let record = Record::load(&path)?;
    if record.repository != image.repository {
        return None;
    }
    let choice = policy::select(image, record.tags.iter().map(String::as_str)).ok()?;
    let digest = (record.selection.tag == choice.tag)
        .then_some(record.selection.digest)
        .flatten();
    Some(Scan {
        selection: Selection {
            repository: image.repository.clone(),
            tag: choice.tag,
            digest,
        },
        considered: choice.total,
        skipped: choice.skipped,
        excluded: choice.excluded,
        filtered: choice.filtered,
        from_cache: true,
    })
}

/// Run `work` within the image's timeout; explain a TLS failure against
/// a registry that speaks plain HTTP.
async fn within<T>(image: &config::Image, work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match tokio::time::timeout(image.timeout, work).await {
        Ok(Err(Error::Unreachable { repository, reason }))
            if !image.insecure && reason.contains("InvalidContentType") =>
        {
            Err(Error::Unreachable {
                repository,
                reason: format!("{reason} (a registry that speaks plain HTTP needs `insecure #true`)"),
            })
        }
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            repository: image.repository.clone(),
            timeout: image.timeout,
        }),
    }
}

// ---- the registry ---------------------------------------------------------

struct Registry {
    client: Client,
    /// `repository:latest`: what tags are listed and tokens asked for.
    repo: Reference,
    auth: RegistryAuth,
    /// As configured, for messages.
    repository: String,
    insecure: bool,
    /// `ca-file`'s certificates (DER).
    ca: Vec<Vec<u8>>,
}

impl Registry {
    fn connect(image: &config::Image) -> Result<Registry, Error> {
        let repository = image.repository.clone();
        let source_error = |e| Error::from_source(&repository, e);
        let repo =
            shared::parse_reference(&repository, &format!("{repository}:latest")).map_err(source_error)?;
        let auth = shared::auth::resolve(image.auth.as_ref(), repo.registry()).map_err(source_error)?;
        let ca = match &image.ca_file {
            Some(path) => crate::tls::read_ca_file(path).map_err(|e| Error::Protocol {
                repository: repository.clone(),
                reason: e.to_string(),
            })?,
            None => Vec::new(),
        };
        Ok(Registry {
            client: shared::client(&repo, image.insecure, &ca),
            repo,
            auth,
            repository,
            insecure: image.insecure,
            ca,
        })
    }

    fn error(&self, what: &str, e: OciDistributionError) -> Error {
        Error::from_source(&self.repository, shared::map_error(&self.repository, what, e))
    }

    /// Every tag, page by page ([`shared::paginate`]).
    async fn tags(&self, page_size: usize) -> Result<Vec<String>, Error> {
        // `paginate` speaks source errors; the image error (which may be
        // a rate limit) waits here meanwhile.
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        let progress = crate::progress::start(
            format!("listing the tags of {}", self.repository),
            crate::progress::Unit::Items("tags"),
            None,
        );
        let listed = shared::paginate(|last| {
            let (failure, progress) = (&failure, &progress);
            async move {
                let page = self.page(page_size, last.as_deref()).await;
                if let Ok(tags) = &page {
                    progress.inc(tags.len() as u64);
                }
                page.map_err(|e| {
                    let stand_in = crate::source::Error::Protocol {
                        url: self.repository.clone(),
                        reason: e.to_string(),
                    };
                    *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    stand_in
                })
            }
        })
        .await;
        match listed {
            Ok(tags) => Ok(tags),
            Err(e) => Err(failure
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .unwrap_or_else(|| Error::from_source(&self.repository, e))),
        }
    }

    async fn page(&self, n: usize, last: Option<&str>) -> Result<Vec<String>, Error> {
        match self.client.list_tags(&self.repo, &self.auth, Some(n), last).await {
            Ok(page) => Ok(page.tags),
            Err(e) if is_rate_limit(&e) => {
                let mut url = format!("{}/tags/list?n={n}", self.base_url());
                if let Some(last) = last {
                    url.push_str("&last=");
                    url.push_str(&percent_encode(last));
                }
                let res = self.again(reqwest::Method::GET, &url, None).await?;
                let body = res.bytes().await.map_err(|_| self.rate_limited(None))?;
                #[derive(serde::Deserialize)]
                struct Page {
                    #[serde(default)]
                    tags: Option<Vec<String>>,
                }
                let page: Page = serde_json::from_slice(&body).map_err(|_| self.rate_limited(None))?;
                Ok(page.tags.unwrap_or_default())
            }
            Err(e) => Err(self.error("tags", e)),
        }
    }

    /// The manifest digest `tag` points at (of the index, for a
    /// multi-platform image), as the registry reports it.
    async fn digest(&self, tag: &str) -> Result<String, Error> {
        let reference = shared::parse_reference(&self.repository, &format!("{}:{tag}", self.repository))
            .map_err(|e| Error::from_source(&self.repository, e))?;
        let what = format!("tag \"{tag}\"");
        let digest = match self.client.fetch_manifest_digest(&reference, &self.auth).await {
            Ok(d) => d,
            Err(e) if is_rate_limit(&e) => {
                let url = format!("{}/manifests/{}", self.base_url(), percent_encode(tag));
                let accept = [
                    manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
                    manifest::OCI_IMAGE_MEDIA_TYPE,
                    manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
                    manifest::IMAGE_MANIFEST_MEDIA_TYPE,
                ]
                .join(", ");
                let res = self.again(reqwest::Method::HEAD, &url, Some(&accept)).await?;
                res.headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .ok_or_else(|| self.rate_limited(None))?
            }
            Err(e) => return Err(self.error(&what, e)),
        };
        if !shared::is_sha256(&digest) {
            return Err(Error::Protocol {
                repository: self.repository.clone(),
                reason: format!(
                    "the registry answered with the manifest digest \"{digest}\" for {what}, not sha256:<hex>"
                ),
            });
        }
        Ok(digest)
    }

    /// `scheme://registry/v2/repository`, as oci-client builds it.
    fn base_url(&self) -> String {
        format!(
            "{}://{}/v2/{}",
            if self.insecure { "http" } else { "https" },
            self.repo.resolve_registry(),
            self.repo.repository()
        )
    }

    fn rate_limited(&self, retry_after: Option<Duration>) -> Error {
        Error::RateLimited {
            repository: self.repository.clone(),
            retry_after,
        }
    }

    /// Make a request that oci-client just saw answered with 429 once
    /// more, by hand, to read the headers: the response when it succeeds
    /// now, otherwise a rate-limit error with the `Retry-After` if any.
    async fn again(
        &self,
        method: reqwest::Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Error> {
        // The token oci-client would send (none for basic auth or an open
        // registry); a failure here is still the rate limit we know of.
        let token = self
            .client
            .auth(&self.repo, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|_| self.rate_limited(None))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("mooring/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(
                self.ca
                    .iter()
                    .filter_map(|der| reqwest::Certificate::from_der(der).ok()),
            )
            .build()
            .map_err(|_| self.rate_limited(None))?;
        let mut request = http.request(method, url);
        request = match (&token, &self.auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
            _ => request,
        };
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        let res = request.send().await.map_err(|_| self.rate_limited(None))?;
        if res.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let after = res
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
            return Err(self.rate_limited(after));
        }
        if !res.status().is_success() {
            return Err(self.rate_limited(None));
        }
        Ok(res)
    }
}

/// Whether oci-client's error is a 429 (a bare status or an OCI error
/// envelope with `TOOMANYREQUESTS`).
fn is_rate_limit(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        _ => false,
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a date in the
/// past is no wait), capped at [`MAX_RETRY_AFTER`].
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An overlong number of seconds is as good as the cap.
        value.parse::<u64>().map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(value)
            .ok()?;
        let ahead = at.duration_since(now);
        Duration::try_from(ahead).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Everything but unreserved URL characters percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- the last good scan ---------------------------------------------------

/// What `state-dir/images/<name>.json` holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The repository the tags are of: a changed `repository` does not
    /// reuse them.
    repository: String,
    scanned_at: jiff::Timestamp,
    /// The pick then, for its digest.
    selection: Selection,
    tags: Vec<String>,
}

impl Record {
    /// Write the record. A scan that did not resolve the digest keeps the
    /// one the last record knew for the same tag, so that `mooring images`
    /// without `--digest` does not take it from the agent.
    fn save(mut self, path: &Path) -> std::io::Result<()> {
        if self.selection.digest.is_none()
            && let Some(old) = Record::load(path)
            && old.repository == self.repository
            && old.selection.tag == self.selection.tag
        {
            self.selection.digest = old.selection.digest;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        self.tags.sort_unstable();
        let json = serde_json::to_vec(&self).map_err(std::io::Error::other)?;
        crate::atomic::write(path, &json)
    }

    fn load(path: &Path) -> Option<Record> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// `state-dir/images/<name>.json`; `None` for a name that is not a plain
/// file name (config validation allows only those).
fn cache_path(image: &config::Image, state_dir: &Path) -> Option<PathBuf> {
    let name = image.name.as_str();
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    plain.then(|| state_dir.join("images").join(format!("{name}.json")))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::{Policy, Spanned};
    use crate::reason::Classify as _;

    fn image(name: &str, repository: &str, range: &str) -> config::Image {
        config::Image {
            name: Spanned::new(name.to_string(), (0, 0).into()),
            namespace: "flux-system".into(),
            repository: repository.to_string(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            policy: Policy::Semver(range.to_string()),
            filter: None,
            exclude: Vec::new(),
            auth: None,
            insecure: true,
            ca_file: None,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        for bad in ["", "soon", "-5", "1.5"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn percent_encoding_keeps_unreserved_characters() {
        assert_eq!(percent_encode("v1.2.3-rc_1~x"), "v1.2.3-rc_1~x");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    /// A loopback registry that answers `/v2/` with 200 and everything
    /// else with `respond(request line, how many such requests so far)`.
    struct Fake {
        port: u16,
        requests: Arc<Mutex<Vec<String>>>,
    }

    fn fake(respond: impl Fn(&str, usize) -> String + Send + 'static) -> Fake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let count = AtomicUsize::new(0);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_string();
                seen.lock().unwrap().push(head.clone());
                let reply = if line.starts_with("GET /v2/ ") {
                    reply("200 OK", "", "{}")
                } else {
                    respond(&line, count.fetch_add(1, Ordering::SeqCst))
                };
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Fake { port, requests }
    }

    fn reply(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    const TOO_MANY: &str = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#;

    #[test]
    fn a_429_carries_the_registry_s_retry_after() {
        let server = fake(|_, _| reply("429 Too Many Requests", "Retry-After: 7\r\n", TOO_MANY));
        let state = tempfile::tempdir().unwrap();
        let img = image("app", &format!("127.0.0.1:{}/app", server.port), "*");
        let err = runtime().block_on(scan(&img, state.path(), false)).unwrap_err();
        match &err {
            Error::RateLimited {
                repository,
                retry_after,
            } => {
                assert_eq!(repository, &img.repository);
                assert_eq!(*retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            err.to_string(),
            format!(
                "{} is rate-limiting requests (429 Too Many Requests); retry after 7s",
                img.repository
            )
        );
        // oci-client's request, then ours: two tags requests, no more.
        let tags_requests = server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains("/tags/list?n=1000"))
            .count();
        assert_eq!(tags_requests, 2);
        // A bare 429 without an OCI error body, and without Retry-After.
        let server = fake(|_, _| reply("429 Too Many Requests", "", "busy"));
        let img = image("app", &format!("127.0.0.1:{}/app", server.port), "*");
        let err = runtime().block_on(scan(&img, state.path(), false)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::RateLimited {
                    retry_after: None,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_429_that_has_passed_by_the_second_request_is_no_failure() {
        let (tag_requests, manifest_requests) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let server = fake(move |line, _| {
            if line.starts_with("GET /v2/app/tags/list") {
                match tag_requests.fetch_add(1, Ordering::SeqCst) {
                    0 => reply("429 Too Many Requests", "Retry-After: 30\r\n", TOO_MANY),
                    _ => reply(
                        "200 OK",
                        "",
                        r#"{"name":"app","tags":["1.0.0","2.0.0","latest"]}"#,
                    ),
                }
            } else if line.contains(" /v2/app/manifests/2.0.0 ") {
                // oci-client's HEAD, then its GET: 429; ours: the digest.
                match manifest_requests.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => reply("429 Too Many Requests", "", TOO_MANY),
                    _ => reply(
                        "200 OK",
                        &format!("Docker-Content-Digest: sha256:{}\r\n", "ab".repeat(32)),
                        "",
                    ),
                }
            } else {
                reply("404 Not Found", "", "")
            }
        });
        let state = tempfile::tempdir().unwrap();
        let img = image("app", &format!("127.0.0.1:{}/app", server.port), "*");
        let got = runtime().block_on(scan(&img, state.path(), true)).unwrap();
        assert_eq!(got.selection.tag, "2.0.0");
        assert_eq!(got.selection.digest, Some(format!("sha256:{}", "ab".repeat(32))));
        assert_eq!(got.considered, 3);
        assert_eq!(got.skipped.len(), 1);
        let requests = server.requests.lock().unwrap().clone();
        let manifest_requests: Vec<&str> = requests
            .iter()
            .filter_map(|r| r.lines().next())
            .filter(|l| l.contains("/manifests/"))
            .collect();
        assert_eq!(manifest_requests.len(), 3, "{manifest_requests:?}");
        assert!(manifest_requests[2].starts_with("HEAD "), "{manifest_requests:?}");
    }

    #[test]
    fn tags_are_listed_page_by_page() {
        // A registry that honours `n` and `last`, tags in byte order.
        let mut all: Vec<String> = (0..30).map(|i| format!("1.{i}.0")).collect();
        all.sort();
        let served = all.clone();
        let server = fake(move |line, _| {
            let query = line
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.split_once('?'))
                .map_or("", |(_, q)| q);
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            };
            let n: usize = param("n").and_then(|n| n.parse().ok()).unwrap_or(100);
            let start = param("last").map_or(0, |l| served.iter().filter(|t| t.as_str() <= l).count());
            let page: Vec<&String> = served.iter().skip(start).take(n).collect();
            reply(
                "200 OK",
                "",
                &serde_json::json!({"name": "app", "tags": page}).to_string(),
            )
        });
        let img = image("app", &format!("127.0.0.1:{}/app", server.port), "*");
        let listed = runtime().block_on(list_tags(&img, 7)).unwrap();
        assert_eq!(listed, all);
        let requests: Vec<String> = server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.lines().next())
            .filter(|l| l.contains("/tags/list"))
            .map(str::to_string)
            .collect();
        // Five pages (7, 7, 7, 7, 2) and an empty one.
        assert_eq!(requests.len(), 6, "{requests:#?}");
        assert!(
            requests[0].starts_with("GET /v2/app/tags/list?n=7 "),
            "{requests:#?}"
        );
        assert!(requests[1].contains("n=7&last=1.14.0 "), "{requests:#?}");
    }

    #[test]
    fn the_last_good_scan_survives_a_failure_and_follows_the_policy() {
        let server = fake(|line, _| {
            if line.starts_with("GET /v2/app/tags/list") {
                reply(
                    "200 OK",
                    "",
                    r#"{"name":"app","tags":["1.0.0","1.5.0","2.0.0","latest"]}"#,
                )
            } else {
                reply(
                    "200 OK",
                    &format!("Docker-Content-Digest: sha256:{}\r\n", "cd".repeat(32)),
                    "",
                )
            }
        });
        let state = tempfile::tempdir().unwrap();
        let img = image("app", &format!("127.0.0.1:{}/app", server.port), "*");
        assert_eq!(last(&img, state.path()), None);
        let good = runtime().block_on(scan(&img, state.path(), true)).unwrap();
        assert!(!good.from_cache);
        assert!(state.path().join("images/app.json").is_file());
        // A scan without the digest keeps the known one for the same tag.
        let plain = runtime().block_on(scan(&img, state.path(), false)).unwrap();
        assert_eq!(plain.selection.digest, None);
        assert_eq!(last(&img, state.path()), Some(good.selection.clone()));

        // The registry goes away: the scan fails, the selection stays.
        let unreachable = config::Image {
            repository: format!("127.0.0.1:{}/app", free_port()),
            ..img.clone()
        };
        let err = runtime()
            .block_on(scan(&unreachable, state.path(), true))
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot reach {}", unreachable.repository))
        );
        assert_eq!(last(&img, state.path()), Some(good.selection.clone()));
        let cached = cached(&img, state.path()).unwrap();
        assert!(cached.from_cache);
        assert_eq!(cached.considered, 4);

        // A changed policy is applied to the kept tags; the digest is
        // only kept for the same tag.
        let narrower = config::Image {
            policy: Policy::Semver("<2".into()),
            ..img.clone()
        };
        assert_eq!(
            last(&narrower, state.path()),
            Some(Selection {
                repository: img.repository.clone(),
                tag: "1.5.0".into(),
                digest: None,
            })
        );
        let none = config::Image {
            policy: Policy::Semver(">=3".into()),
            ..img.clone()
        };
        assert_eq!(last(&none, state.path()), None);
        // Another repository under the same name does not reuse them.
        assert_eq!(last(&unreachable, state.path()), None);
        // Nor does a name that is not a plain file name.
        let odd = config::Image {
            name: Spanned::new("../app".into(), (0, 0).into()),
            ..img.clone()
        };
        assert_eq!(last(&odd, state.path()), None);
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}
