//! Push, i.e. the client side of `git-receive-pack` (git's send-pack),
//! on gix's transports: `file://` runs `git-receive-pack`, `ssh://` runs
//! `ssh … git-receive-pack`, `git://` asks the daemon for it, and smart
//! HTTP(S) is `GET info/refs?service=git-receive-pack` then
//! `POST git-receive-pack`, with the credentials of a fetch.
//!
//! The exchange (protocol v0/v1: receive-pack has no v2):
//!
//! 1. the handshake: the server advertises its refs and capabilities;
//! 2. one command, `OLD NEW refs/heads/BRANCH`, with the capabilities
//!    mooring wants among those offered (`report-status`,
//!    `side-band-64k`, `quiet`, `object-format=sha1`, `agent`), then a
//!    flush;
//! 3. a pack of only the objects the local commits created;
//! 4. the report (`unpack ok`, then `ok REF` or `ng REF REASON`), inside
//!    band 1 of the side band when it was asked for (band 2 is progress,
//!    band 3 a fatal error).
//!
//! As git does, the fast-forward check is the client's: receive-pack
//! takes any update whose OLD matches. When the branch is not where the
//! commits were made on and is not an ancestor of them, nothing is sent
//! (unless forced) and the push is rejected.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice as _};
use gix::protocol::handshake::Ref;
use gix::protocol::transport::client::blocking_io::{self, ExtendedBufRead, Transport};
use gix::protocol::transport::client::{MessageKind, TransportWithoutIO as _, WriteMode};
use gix::protocol::transport::packetline::PacketLineRef;

use super::pack::{self, PackObject};
use super::{Error, PushOutcome, Stage};
use crate::git::pktline;
use crate::git::remote::Remote;

const STAGE: Stage = Stage::Push;
/// Requests up to this size go over HTTP with a Content-Length (git's
/// default `http.postBuffer`); larger ones are streamed, chunked.
const POST_BUFFER: usize = 1024 * 1024;

/// What a push needs.
pub(super) struct Job {
    pub repo_dir: PathBuf,
    pub branch: String,
    /// The commit the local commits were made on.
    pub base: ObjectId,
    /// The last local commit.
    pub head: ObjectId,
    pub objects: Vec<PackObject>,
    pub force: bool,
}

impl Job {
    pub fn run(&self, remote: &Remote, interrupt: &AtomicBool) -> Result<PushOutcome, Error> {
        let repo = super::checkout::open(&self.repo_dir, remote.config_overrides(), STAGE)?;
        let url = gix::url::parse(remote.url.as_bytes().as_bstr())
            .map_err(|e| remote.protocol(STAGE, format!("not a git URL: {e}")))?;
        let ssh = if url.scheme == gix::url::Scheme::Ssh {
            repo.ssh_connect_options()
                .map_err(|e| remote.protocol(STAGE, remote.reason(&e)))?
        } else {
            Default::default()
        };
        let version = gix::protocol::transport::Protocol::V1;
        let mut transport = match remote.daemon(version, interrupt, STAGE)? {
            Some(daemon) => daemon,
            None => blocking_io::connect::connect(
                url,
                blocking_io::connect::Options {
                    version,
                    ssh,
                    trace: false,
                },
            )
            .map_err(|e| remote.network(&e, interrupt, STAGE))?,
        };
        let options = match remote.secrets.http_options(&repo, &remote.url) {
            Some(with_ca) => Some(with_ca),
            None => repo
                .transport_options(remote.url.as_bytes().as_bstr(), None)
                .map_err(|e| remote.protocol(STAGE, remote.reason(&e)))?,
        };
        if let Some(options) = options {
            transport
                .configure(&*options)
                .map_err(|e| remote.protocol(STAGE, remote.reason(&e)))?;
        }
        let handshake = gix::protocol::handshake(
            &mut transport,
            gix::protocol::transport::Service::ReceivePack,
            remote.secrets.helper(&remote.url),
            Vec::new(),
            &mut gix::progress::Discard,
        )
        .map_err(|e| remote.network(&e, interrupt, STAGE))?;
        let Some(refs) = handshake.refs else {
            return Err(remote.protocol(STAGE, "the server sent no ref advertisement for receive-pack"));
        };
        let capabilities = &handshake.capabilities;
        if let Some(format) = capabilities.capability("object-format").and_then(|c| c.value())
            && format != "sha1"
        {
            return Err(remote.protocol(
                STAGE,
                format!("the repository uses {format} object ids, not sha1"),
            ));
        }

        let full = format!("refs/heads/{}", self.branch);
        let current = refs.iter().find_map(|r| match r {
            Ref::Direct {
                full_ref_name,
                object,
            } if *full_ref_name == full => Some(*object),
            _ => None,
        });
        let old = match current {
            None => None,
            Some(id) if id == self.head => {
                // Already there (an earlier push whose report was lost).
                send_flush(&mut transport);
                return Ok(PushOutcome::Pushed {
                    old: Some(id.to_string()),
                    new: id.to_string(),
                    bytes_sent: 0,
                });
            }
            Some(id) if id == self.base || self.force => Some(id),
            Some(id) if is_ancestor(&repo, id, self.head) => Some(id),
            Some(id) => {
                send_flush(&mut transport);
                return Ok(PushOutcome::Rejected {
                    reason: format!(
                        "`{}` on the remote is at {id}, not at {} that the commit was made on \
                         (someone pushed first): not a fast-forward",
                        self.branch, self.base
                    ),
                });
            }
        };

        // Deltas against the objects the commits replaced only when the
        // remote certainly has them: it advertises the base commit.
        let advertised: HashSet<ObjectId> = refs.iter().flat_map(ref_ids).collect();
        let thin = !capabilities.contains("no-thin") && advertised.contains(&self.base);
        let (pack, written) = pack::write(&self.objects, thin, |id| {
            repo.find_object(*id)
                .map(|o| o.data.clone())
                .map_err(|e| format!("cannot read {id}: {e}"))
        })
        .map_err(|reason| Error::Repository {
            stage: STAGE,
            path: self.repo_dir.clone(),
            reason,
        })?;

        let mut wanted: Vec<String> = ["report-status", "side-band-64k", "quiet"]
            .into_iter()
            .filter(|c| capabilities.contains(c))
            .map(String::from)
            .collect();
        if capabilities.contains("object-format") {
            wanted.push("object-format=sha1".into());
        }
        if capabilities.contains("agent") {
            wanted.push(format!("agent=mooring/{}", env!("CARGO_PKG_VERSION")));
        }
        let null = ObjectId::null(gix::hash::Kind::Sha1);
        let command = format!(
            "{} {} {full}\0 {}",
            old.unwrap_or(null),
            self.head,
            wanted.join(" ")
        );
        let mut request = Vec::with_capacity(command.len() + 8 + pack.len());
        pktline::data(&mut request, command.as_bytes())
            .map_err(|e| remote.protocol(STAGE, format!("cannot frame the push command: {e}")))?;
        pktline::flush(&mut request);
        request.extend_from_slice(&pack);

        if interrupt.load(Ordering::SeqCst) {
            return Err(Error::Timeout {
                stage: STAGE,
                url: remote.shown.clone(),
                timeout: remote.timeout,
            });
        }
        // The write mode only tells HTTP how to send the body (everything
        // below is written raw): as git does with `http.postBuffer`, a
        // request that fits in memory goes with a Content-Length, a larger
        // one chunked.
        let mode = if request.len() <= POST_BUFFER {
            WriteMode::OneLfTerminatedLinePerWriteCall
        } else {
            WriteMode::Binary
        };
        let writer = transport
            .request(mode, MessageKind::Flush, false)
            .map_err(|e| client_error(remote, e, interrupt))?;
        let (mut writer, mut reader) = writer.into_parts();
        writer
            .write_all(&request)
            .and_then(|_| writer.flush())
            .map_err(|e| remote.io(&e, interrupt, STAGE))?;
        // Closing the request body ends an HTTP request.
        drop(writer);
        let sideband = wanted.iter().any(|c| c == "side-band-64k");
        let report = read_report(&mut reader, sideband, remote, interrupt)?;
        tracing::debug!(
            url = %remote.shown,
            branch = %self.branch,
            objects = written.objects,
            deltas = written.deltas,
            bytes = request.len(),
            "pushed a pack"
        );
        self.judge(report, wanted.iter().any(|c| c == "report-status"), remote)?
            .map_or_else(
                || {
                    self.track(&repo);
                    Ok(PushOutcome::Pushed {
                        old: old.map(|id| id.to_string()),
                        new: self.head.to_string(),
                        bytes_sent: request.len() as u64,
                    })
                },
                |reason| Ok(PushOutcome::Rejected { reason }),
            )
    }

    /// Read the report: `Ok(None)` when the branch was updated, `Ok(Some)`
    /// with the reason when the remote rejected it because it moved on.
    fn judge(&self, report: Report, asked: bool, remote: &Remote) -> Result<Option<String>, Error> {
        if let Some(fatal) = report.errors.first() {
            return Err(remote.protocol(STAGE, format!("the remote failed: {fatal}")));
        }
        if !asked {
            // No report-status: as git, trust a clean end of the exchange.
            return Ok(None);
        }
        let mut lines = report
            .lines
            .iter()
            .map(|l| l.to_str_lossy().trim_end().to_string());
        match lines.next() {
            Some(unpack) if unpack == "unpack ok" => {}
            Some(unpack) => {
                let reason = remote.scrub(unpack.strip_prefix("unpack ").unwrap_or(&unpack));
                return Err(Error::Unpack {
                    url: remote.shown.clone(),
                    reason: with_said(reason, &report.said),
                });
            }
            None => return Err(remote.protocol(STAGE, "the remote sent no report")),
        }
        let full = format!("refs/heads/{}", self.branch);
        for line in lines {
            if line == format!("ok {full}") {
                return Ok(None);
            }
            if let Some(reason) = line.strip_prefix(&format!("ng {full} ")) {
                let reason = remote.scrub(reason);
                let lower = reason.to_ascii_lowercase();
                let moved = [
                    "non-fast-forward",
                    "fetch first",
                    "stale info",
                    "cannot lock ref",
                    "failed to lock",
                    "failed to update ref",
                    "already exists",
                    "incorrect old value",
                ]
                .iter()
                .any(|m| lower.contains(m));
                return if moved {
                    Ok(Some(format!(
                        "the remote rejected the update of `{}`: {reason}",
                        self.branch
                    )))
                } else {
                    Err(Error::Refused {
                        url: remote.shown.clone(),
                        branch: self.branch.clone(),
                        reason: with_said(reason, &report.said),
                    })
                };
            }
        }
        Err(remote.protocol(STAGE, format!("the report says nothing about {full}")))
    }

    /// After a push, the remote-tracking ref knows the new tip (a failure
    /// to record it only costs a fetch later).
    fn track(&self, repo: &gix::Repository) {
        let name = format!("refs/remotes/origin/{}", self.branch);
        if let Err(e) = repo.reference(
            name.as_str(),
            self.head,
            gix::refs::transaction::PreviousValue::Any,
            "mooring: push",
        ) {
            tracing::warn!(reference = %name, error = %e, "cannot record the pushed commit");
        }
    }
}

/// `reason`, followed by what the remote said (a hook's output), if anything.
fn with_said(reason: String, said: &str) -> String {
    if said.is_empty() {
        reason
    } else {
        format!("{reason} (remote: {said})")
    }
}

/// The ids a ref advertises (the object, and an annotated tag).
fn ref_ids(r: &Ref) -> Vec<ObjectId> {
    match r {
        Ref::Direct { object, .. } => vec![*object],
        Ref::Peeled { tag, object, .. } => vec![*tag, *object],
        Ref::Symbolic { object, tag, .. } => std::iter::once(*object).chain(*tag).collect(),
        Ref::Unborn { .. } => Vec::new(),
    }
}

/// Whether `ancestor` is `head` or one of its ancestors in the local
/// history (which is shallow: an unknown commit is not an ancestor).
fn is_ancestor(repo: &gix::Repository, ancestor: ObjectId, head: ObjectId) -> bool {
    const LIMIT: usize = 10_000;
    let mut seen = HashSet::new();
    let mut pending = vec![head];
    while let Some(id) = pending.pop() {
        if id == ancestor {
            return true;
        }
        if !seen.insert(id) || seen.len() > LIMIT {
            continue;
        }
        if let Ok(commit) = repo.find_commit(id) {
            pending.extend(commit.parent_ids().map(|p| p.detach()));
        }
    }
    false
}

/// End a connection that sends no command: receive-pack takes a lone
/// flush as "nothing to do". HTTP sends nothing (no POST).
fn send_flush(transport: &mut Box<dyn Transport + Send>) {
    if !transport.connection_persists_across_multiple_requests() {
        return;
    }
    if let Ok(request) = transport.request(WriteMode::Binary, MessageKind::Flush, false) {
        let (mut writer, _reader) = request.into_parts();
        let mut flush = Vec::new();
        pktline::flush(&mut flush);
        let _ = writer.write_all(&flush).and_then(|_| writer.flush());
    }
}

fn client_error(
    remote: &Remote,
    e: gix::protocol::transport::client::Error,
    interrupt: &AtomicBool,
) -> Error {
    match e {
        gix::protocol::transport::client::Error::Io(io) => remote.io(&io, interrupt, STAGE),
        other => remote.protocol(STAGE, other.to_string()),
    }
}

/// How much of what the remote says goes into an error.
const SAID_MAX: usize = 1024;

/// What the remote answered.
#[derive(Debug, Default, PartialEq, Eq)]
struct Report {
    /// report-status lines.
    lines: Vec<BString>,
    /// Fatal errors (side band 3).
    errors: Vec<String>,
    /// What the remote said on side band 2 (hook output, with `quiet`
    /// no progress meters): the start of it.
    said: String,
}

fn read_report(
    reader: &mut Box<dyn ExtendedBufRead<'_> + Unpin + '_>,
    sideband: bool,
    remote: &Remote,
    interrupt: &AtomicBool,
) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut band1 = Vec::new();
    loop {
        let line = match reader.readline() {
            None => break,
            Some(Err(e)) => return Err(remote.io(&e, interrupt, STAGE)),
            Some(Ok(Err(e))) => return Err(remote.protocol(STAGE, format!("a bad packet line: {e}"))),
            Some(Ok(Ok(line))) => line,
        };
        let PacketLineRef::Data(data) = line else { break };
        if !sideband {
            report.lines.push(data.into());
            continue;
        }
        match data.split_first() {
            Some((1, rest)) => band1.extend_from_slice(rest),
            Some((2, rest)) => {
                let text = remote.scrub(&rest.to_str_lossy());
                tracing::debug!(url = %remote.shown, "remote: {}", text.trim_end());
                // Progress meters redraw with `\r`: keep whole lines.
                for line in text.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()) {
                    if report.said.len() < SAID_MAX {
                        if !report.said.is_empty() {
                            report.said.push_str("; ");
                        }
                        report.said.push_str(line);
                    }
                }
            }
            Some((3, rest)) => report.errors.push(remote.scrub(rest.to_str_lossy().trim_end())),
            _ => return Err(remote.protocol(STAGE, "a side-band line without a known band")),
        }
    }
    if sideband {
        report.lines = pktline::split(&band1).map_err(|reason| remote.protocol(STAGE, reason))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            repo_dir: PathBuf::from("/nowhere"),
            branch: "main".into(),
            base: ObjectId::null(gix::hash::Kind::Sha1),
            head: ObjectId::null(gix::hash::Kind::Sha1),
            objects: Vec::new(),
            force: false,
        }
    }

    fn remote() -> Remote {
        Remote {
            url: "https://bot:pw@host/r.git".into(),
            shown: "https://***@host/r.git".into(),
            secrets: crate::git::secrets::Secrets {
                ca: Vec::new(),
                basic: Some(("bot".into(), "pw".into())),
                ssh_command: None,
            },
            timeout: std::time::Duration::from_secs(1),
            max_bytes: 1 << 20,
        }
    }

    fn report(lines: &[&str]) -> Report {
        Report {
            lines: lines.iter().map(|l| BString::from(*l)).collect(),
            errors: Vec::new(),
            said: String::new(),
        }
    }

    #[test]
    fn reports_are_judged() {
        let (job, remote) = (job(), remote());
        assert_eq!(
            job.judge(report(&["unpack ok\n", "ok refs/heads/main\n"]), true, &remote)
                .unwrap(),
            None
        );
        let moved = job
            .judge(
                report(&["unpack ok", "ng refs/heads/main non-fast-forward"]),
                true,
                &remote,
            )
            .unwrap();
        assert!(moved.is_some_and(|r| r.contains("non-fast-forward")));
        let moved = job
            .judge(
                report(&["unpack ok", "ng refs/heads/main failed to update ref"]),
                true,
                &remote,
            )
            .unwrap();
        assert!(moved.is_some());
        assert!(matches!(
            job.judge(
                report(&["unpack ok", "ng refs/heads/main pre-receive hook declined"]),
                true,
                &remote
            ),
            Err(Error::Refused { .. })
        ));
        assert!(matches!(
            job.judge(report(&["unpack index-pack abnormal exit"]), true, &remote),
            Err(Error::Unpack { .. })
        ));
        assert!(matches!(
            job.judge(report(&["unpack ok", "ok refs/heads/other"]), true, &remote),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            job.judge(report(&[]), true, &remote),
            Err(Error::Protocol { .. })
        ));
        assert_eq!(job.judge(report(&[]), false, &remote).unwrap(), None);
        let fatal = Report {
            lines: Vec::new(),
            errors: vec!["denied to bot:pw".into()],
            said: String::new(),
        };
        let e = job.judge(fatal, true, &remote).unwrap_err().to_string();
        assert!(!e.contains("pw") || e.contains("***"), "{e}");
    }
}
