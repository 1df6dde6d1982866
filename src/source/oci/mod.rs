//! OCI sources through oci-client: takes an `oci` source, gives an
//! [`Artifact`]. The tag, semver range or digest is resolved to a manifest
//! digest first (revision `<tag>@sha256:<hex>`, or `sha256:<hex>` for a
//! digest pin); a revision already in the store costs one HEAD request.
//! Otherwise the manifest is pulled by that digest, the artifact's layer
//! (Flux's content layer, else the first) is downloaded with its size
//! capped and its sha256 checked, and the tar.gz is extracted as hostile
//! input through the artifact [`Writer`](super::artifact::Writer).

pub(crate) mod auth;
pub mod extract;

use std::io::{self, Seek as _, Write as _};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use super::artifact::hex;
use super::{Artifact, Error, Limits, Store};
use crate::busy::CancelOnDrop;
use crate::config::{self, OciRef};

/// The layer media type of artifacts made by `flux push artifact`.
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";

/// Tags asked for per page of `tags/list`.
pub(crate) const TAG_PAGE: usize = 1000;
/// Stop paging after this many pages, whatever the registry says.
const MAX_TAG_PAGES: usize = 1000;

/// Pull `source` (an OCI source) into `store`, within the source's timeout.
pub async fn fetch(source: &config::Source, state_dir: &Path, store: &Store) -> Result<Artifact, Error> {
    fetch_as(source, state_dir, store, None).await
}

/// Pull `source` as [`fetch`] does, but keep the layer as it is, in the
/// file `file` of the artifact, instead of extracting it (a Helm chart,
/// which the renderer reads in memory with Helm's own rules).
pub async fn fetch_layer(
    source: &config::Source,
    state_dir: &Path,
    store: &Store,
    file: &str,
) -> Result<Artifact, Error> {
    fetch_as(source, state_dir, store, Some(file)).await
}

async fn fetch_as(
    source: &config::Source,
    state_dir: &Path,
    store: &Store,
    raw: Option<&str>,
) -> Result<Artifact, Error> {
    let config::SourceKind::Oci { url, .. } = &source.kind else {
        return Err(Error::Protocol {
            url: super::redact(source.kind.url()),
            reason: "not an OCI source".into(),
        });
    };
    match tokio::time::timeout(source.timeout, pull(source, state_dir, store, raw)).await {
        Ok(Err(Error::Unreachable { url, reason }))
            if reason.contains("InvalidContentType")
                && matches!(source.kind, config::SourceKind::Oci { insecure: false, .. }) =>
        {
            Err(Error::Unreachable {
                url,
                reason: format!("{reason} (a registry that speaks plain HTTP needs `insecure #true`)"),
            })
        }
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            url: url.clone(),
            timeout: source.timeout,
        }),
    }
}

async fn pull(
    source: &config::Source,
    state_dir: &Path,
    store: &Store,
    raw: Option<&str>,
) -> Result<Artifact, Error> {
    let config::SourceKind::Oci {
        url,
        reference,
        insecure,
    } = &source.kind
    else {
        return Err(Error::Protocol {
            url: source.kind.url().to_string(),
            reason: "not an OCI source".into(),
        });
    };
    let repo = parse_reference(url, &format!("{url}:latest"))?;
    let registry = repo.registry().to_string();
    let auth = auth::resolve(source.auth.as_ref(), &registry)?;
    let ca = match &source.ca_file {
        Some(path) => crate::tls::read_ca_file(path)?,
        None => Vec::new(),
    };
    let client = client(&repo, *insecure, &ca);

    let (reference, tag, what) = match reference {
        OciRef::Tag(tag) => (
            parse_reference(url, &format!("{url}:{tag}"))?,
            Some(tag.clone()),
            format!("tag \"{tag}\""),
        ),
        OciRef::Semver(range) => {
            let parsed = crate::tags::Range::parse(range).map_err(|e| Error::Rejected {
                entry: format!("semver \"{range}\""),
                reason: e.reason,
            })?;
            let tags = list_tags(&client, &repo, &auth, url).await?;
            let Some(tag) = crate::tags::highest(tags.iter().map(String::as_str), &parsed) else {
                return Err(Error::NotFound {
                    url: url.clone(),
                    what: format!("tag matching \"{range}\" (among {} tags)", tags.len()),
                });
            };
            (
                parse_reference(url, &format!("{url}:{tag}"))?,
                Some(tag.to_string()),
                format!("tag \"{tag}\""),
            )
        }
        OciRef::Digest(digest) => (
            parse_reference(url, &format!("{url}@{digest}"))?,
            None,
            format!("manifest {digest}"),
        ),
    };

    let digest = client
        .fetch_manifest_digest(&reference, &auth)
        .await
        .map_err(|e| map_error(url, &what, e))?;
    if !is_sha256(&digest) {
        return Err(Error::Protocol {
            url: url.clone(),
            reason: format!("the registry answered with the manifest digest \"{digest}\", not sha256:<hex>"),
        });
    }
    let revision = match &tag {
        Some(tag) => format!("{tag}@{digest}"),
        None => digest.clone(),
    };
    if let Some(existing) = store.existing(&source.name, &revision) {
        return Ok(existing);
    }

    // Pull by digest, so that a tag moving meanwhile cannot mix revisions.
    let pinned = reference.clone_with_digest(digest.clone());
    let (manifest, _) = client
        .pull_manifest(&pinned, &auth)
        .await
        .map_err(|e| map_error(url, &what, e))?;
    let OciManifest::Image(manifest) = manifest else {
        return Err(Error::Protocol {
            url: url.clone(),
            reason: format!("{digest} is an image index, not an artifact"),
        });
    };
    let Some(layer) = pick_layer(&manifest.layers) else {
        return Err(Error::NotFound {
            url: url.clone(),
            what: format!("layer in manifest {digest}"),
        });
    };

    let limits = source.limits;
    let blob = download(&client, &pinned, layer, &auth, state_dir, limits, url).await?;

    let (name, ignore, store) = (source.name.value.clone(), source.ignore.clone(), store.clone());
    let layer_digest = layer.digest.clone();
    let raw = raw.map(str::to_string);
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _stop_if_given_up = CancelOnDrop(cancel.clone());
    let task = tokio::task::spawn_blocking(move || {
        store.create(&name, &revision, &ignore, limits, &cancel, |w| match &raw {
            Some(file) => {
                let mut blob = blob;
                w.file(file, false, &mut blob)
            }
            None => extract::tar_gz(blob, w, &layer_digest, limits),
        })
    });
    task.await.map_err(|e| Error::Protocol {
        url: url.clone(),
        reason: format!("the extraction task failed: {e}"),
    })?
}

/// A client for `repo`'s registry, over plain HTTP when `insecure`,
/// trusting the certificates `ca` (DER) besides the system's.
pub(crate) fn client(repo: &Reference, insecure: bool, ca: &[Vec<u8>]) -> Client {
    Client::new(ClientConfig {
        protocol: if insecure {
            ClientProtocol::HttpsExcept(vec![repo.resolve_registry().to_string()])
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates: ca
            .iter()
            .map(|der| oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Der,
                data: der.clone(),
            })
            .collect(),
        // An artifact is one manifest; an image index is not followed.
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

pub(crate) fn parse_reference(url: &str, full: &str) -> Result<Reference, Error> {
    full.parse::<Reference>().map_err(|e| Error::Protocol {
        url: url.to_string(),
        reason: format!("\"{full}\" is not a valid reference: {e}"),
    })
}

pub(crate) fn is_sha256(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The layer media type of a Helm chart pushed with `helm push`.
pub const HELM_CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Flux's content layer, else a Helm chart's, else the first layer.
pub fn pick_layer(layers: &[OciDescriptor]) -> Option<&OciDescriptor> {
    layers
        .iter()
        .find(|l| l.media_type == FLUX_CONTENT_MEDIA_TYPE)
        .or_else(|| layers.iter().find(|l| l.media_type == HELM_CHART_MEDIA_TYPE))
        .or_else(|| layers.first())
}

/// Every tag of the repository, page by page (`n`/`last`).
async fn list_tags(
    client: &Client,
    repo: &Reference,
    auth: &RegistryAuth,
    url: &str,
) -> Result<Vec<String>, Error> {
    paginate(|last| async move {
        client
            .list_tags(repo, auth, Some(TAG_PAGE), last.as_deref())
            .await
            .map(|r| r.tags)
            .map_err(|e| map_error(url, "tags", e))
    })
    .await
}

/// Collect pages until one is empty or brings nothing new (registries
/// that ignore `n`/`last` send the whole list every time; the page size
/// a registry honours may be smaller than asked, so a short page is not
/// taken as the last).
pub(crate) async fn paginate<F, Fut>(mut page: F) -> Result<Vec<String>, Error>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, Error>>,
{
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    let mut last = None;
    for _ in 0..MAX_TAG_PAGES {
        let tags = page(last.clone()).await?;
        let before = all.len();
        for tag in &tags {
            if seen.insert(tag.clone()) {
                all.push(tag.clone());
            }
        }
        if all.len() == before {
            break;
        }
        last = tags.last().cloned();
    }
    Ok(all)
}

/// Download `layer` into an unnamed temp file under `state_dir`, refusing
/// more bytes than the manifest declares or than `limits` allow, and
/// checking its sha256 ourselves (oci-client checks too).
async fn download(
    client: &Client,
    image: &Reference,
    layer: &OciDescriptor,
    auth: &RegistryAuth,
    state_dir: &Path,
    limits: Limits,
    url: &str,
) -> Result<std::fs::File, Error> {
    let reject = |reason: String| Error::Rejected {
        entry: layer.digest.clone(),
        reason,
    };
    if !is_sha256(&layer.digest) {
        return Err(reject("the layer digest is not sha256:<hex>".into()));
    }
    let declared = u64::try_from(layer.size)
        .map_err(|_| reject(format!("the layer size {} is negative", layer.size)))?;
    if declared > limits.max_bytes {
        return Err(reject(format!(
            "the layer is {declared} bytes, more than the limit of {}",
            limits.max_bytes
        )));
    }
    std::fs::create_dir_all(state_dir).map_err(|e| Error::io(state_dir, e))?;
    let file = tempfile::tempfile_in(state_dir).map_err(|e| Error::io(state_dir, e))?;
    let mut sink = BlobSink {
        out: io::BufWriter::new(file),
        hasher: Sha256::new(),
        written: 0,
        cap: declared,
        overflow: false,
        progress: crate::progress::start(
            format!("pulling {url}"),
            crate::progress::Unit::Bytes,
            Some(declared),
        ),
    };
    // The blob request carries no token of its own: the manifest pull
    // stored the credentials in the client.
    client.store_auth_if_needed(image.resolve_registry(), auth).await;
    let pulled = client.pull_blob(image, layer, &mut sink).await;
    if sink.overflow {
        return Err(reject(format!(
            "the registry sent more than the {declared} bytes the manifest declares"
        )));
    }
    pulled.map_err(|e| map_error(url, &format!("blob {}", layer.digest), e))?;
    let actual = format!("sha256:{}", hex(&sink.hasher.finalize_reset()));
    verify_blob(&layer.digest, declared, &actual, sink.written)?;
    let mut file = sink
        .out
        .into_inner()
        .map_err(|e| Error::io(state_dir, e.into_error()))?;
    file.rewind().map_err(|e| Error::io(state_dir, e))?;
    Ok(file)
}

/// The downloaded blob must be exactly what the manifest names.
pub fn verify_blob(expected: &str, declared_size: u64, actual: &str, actual_size: u64) -> Result<(), Error> {
    if actual != expected {
        return Err(Error::Rejected {
            entry: expected.to_string(),
            reason: format!("the blob's content has digest {actual}"),
        });
    }
    if actual_size != declared_size {
        return Err(Error::Rejected {
            entry: expected.to_string(),
            reason: format!("the blob is {actual_size} bytes, the manifest says {declared_size}"),
        });
    }
    Ok(())
}

/// Writes the blob to a file while hashing it and capping its size.
struct BlobSink {
    out: io::BufWriter<std::fs::File>,
    hasher: Sha256,
    written: u64,
    cap: u64,
    overflow: bool,
    progress: crate::progress::Task,
}

// Local-disk writes of network-sized chunks: done in place rather than
// on the blocking pool.
impl tokio::io::AsyncWrite for BlobSink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len = buf.len() as u64;
        if this.written.saturating_add(len) > this.cap {
            this.overflow = true;
            return Poll::Ready(Err(io::Error::other("the blob is larger than the manifest says")));
        }
        this.hasher.update(buf);
        this.written += len;
        this.progress.set(this.written);
        Poll::Ready(this.out.write_all(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().out.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Turn an oci-client error into a source error that names the
/// repository (never credentials: they travel in headers, not URLs).
pub(crate) fn map_error(url: &str, what: &str, e: OciDistributionError) -> Error {
    let url = url.to_string();
    let auth = |reason: String| Error::Auth {
        url: url.clone(),
        reason,
    };
    let not_found = || Error::NotFound {
        url: url.clone(),
        what: what.to_string(),
    };
    let protocol = |reason: String| Error::Protocol {
        url: url.clone(),
        reason,
    };
    match e {
        OciDistributionError::RequestError(e) => Error::Unreachable {
            url: url.clone(),
            reason: chain(&e),
        },
        OciDistributionError::UnauthorizedError { .. } => {
            auth("the registry answered 401 Unauthorized".into())
        }
        OciDistributionError::AuthenticationFailure(_) => {
            auth("the token service refused the credentials".into())
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let text = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                auth(text)
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else {
                protocol(text)
            }
        }
        OciDistributionError::ServerError { code, message, .. } => match code {
            401 | 403 => auth(format!("the registry answered {code}")),
            404 => not_found(),
            _ => protocol(format!(
                "the registry answered {code}: {}",
                truncate(&message, 200)
            )),
        },
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            Error::Rejected {
                entry: expected,
                reason: format!("the registry sent content with digest {actual}"),
            }
        }
        OciDistributionError::IoError(io) => match io.get_ref().and_then(|i| i.downcast_ref::<DigestError>())
        {
            Some(DigestError::VerificationError { expected, actual }) => Error::Rejected {
                entry: expected.clone(),
                reason: format!("the registry sent content with digest {actual}"),
            },
            _ => protocol(io.to_string()),
        },
        other => protocol(other.to_string()),
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests;
