//! The bare repository a source fetches into (`state-dir/git/<source>`)
//! or an automation works in (`<workspace>/repo.git`): opened isolated
//! from the user's and the machine's git config, fetched shallowly (to a
//! depth of one) with one explicit forced refspec, and, when it turns out
//! damaged, removed and fetched again, once ([`Cache::recover`]).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use gix::ObjectId;
use gix::protocol::handshake::Ref;
use gix::remote::fetch::Shallow;

use super::remote::Remote;
use super::{Error, Stage};

/// A bare repository fetched from one remote.
pub(crate) struct Cache {
    pub dir: PathBuf,
    pub stage: Stage,
    /// `gitoxide.objects.allocLimit`: no object larger than this is ever
    /// inflated, while a pack is indexed or after.
    pub alloc_limit: Option<u64>,
}

/// Why an attempt failed: for good, or maybe because of the cache (which
/// is then made anew, once); `E` is the caller's error.
pub(crate) enum Failure<E = Error> {
    Final(E),
    Cache(Error),
}

impl<E> From<E> for Failure<E> {
    fn from(e: E) -> Failure<E> {
        Failure::Final(e)
    }
}

impl Failure {
    /// The same failure for a caller with an error of its own.
    pub fn widen<E: From<Error>>(self) -> Failure<E> {
        match self {
            Failure::Final(e) => Failure::Final(e.into()),
            Failure::Cache(e) => Failure::Cache(e),
        }
    }
}

/// A git error that retrying on a fresh cache cannot help.
pub(crate) fn fail<E: From<Error>>(e: Error) -> Failure<E> {
    Failure::Final(e.into())
}

/// What to do once the remote's refs are known.
pub(crate) enum Want<T> {
    /// Nothing to fetch: this is the answer.
    Done(T),
    /// Make sure the cache has commit `id` (`name`, for messages), then
    /// answer `then`.
    Fetch { id: ObjectId, name: String, then: T },
}

impl Cache {
    /// Open the repository, or make it (bare).
    pub fn open(&self, remote: &Remote) -> Result<gix::Repository, Failure> {
        let mut overrides = remote.config_overrides();
        if let Some(limit) = self.alloc_limit {
            overrides.push(format!("gitoxide.objects.allocLimit={limit}"));
        }
        let options = gix::open::Options::isolated().config_overrides(overrides);
        if self.dir.exists() {
            let damaged = |e: gix::Error| {
                Failure::Cache(remote.protocol(
                    self.stage,
                    format!("cannot open the cache: {}", remote.reason(&e)),
                ))
            };
            let repo = gix::open_opts(&self.dir, options).map_err(damaged)?;
            // A fetch never reads HEAD, but a cache with a broken one is damaged.
            repo.head().map_err(damaged)?;
            return Ok(repo);
        }
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(self.stage, parent, e))?;
        }
        gix::ThreadSafeRepository::init_opts(
            &self.dir,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            options,
        )
        .map(gix::Repository::from)
        .map_err(|e| {
            Failure::Final(match self.stage {
                Stage::Fetch => remote.protocol(
                    self.stage,
                    format!(
                        "cannot create the cache at {}: {}",
                        self.dir.display(),
                        remote.reason(&e)
                    ),
                ),
                stage => Error::Repository {
                    stage,
                    path: self.dir.clone(),
                    reason: format!("cannot create it: {e}"),
                },
            })
        })
    }

    /// Run `attempt`; when it fails because of the cache and the cache
    /// existed before, remove the cache and run it once more.
    pub fn recover<T, E: From<Error>>(
        &self,
        mut attempt: impl FnMut() -> Result<T, Failure<E>>,
    ) -> Result<T, E> {
        let existed = self.dir.exists();
        match attempt() {
            Ok(t) => Ok(t),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Cache(e)) if !existed => Err(e.into()),
            Err(Failure::Cache(e)) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "the git repository looks damaged; fetching it again");
                std::fs::remove_dir_all(&self.dir).map_err(|io| Error::io(self.stage, &self.dir, io))?;
                attempt().map_err(|f| match f {
                    Failure::Final(e) => e,
                    Failure::Cache(e) => e.into(),
                })
            }
        }
    }

    /// The remote refs matching `spec`, without fetching anything.
    pub fn list(
        &self,
        repo: &gix::Repository,
        remote: &Remote,
        spec: &str,
        interrupt: &AtomicBool,
    ) -> Result<Vec<Ref>, Error> {
        let at = remote.at(repo, spec, self.stage)?;
        let (map, _) = remote
            .connect(repo, &at, interrupt, self.stage)?
            .ref_map(gix::progress::Discard, Default::default())
            .map_err(|e| remote.network(&e, interrupt, self.stage))?;
        Ok(map.remote_refs)
    }

    /// Ask the remote for its refs matching `spec` (`+SRC:DST`), let
    /// `decide` choose from them, and fetch the chosen commit (depth 1)
    /// unless the cache has it already (then `DST` is only moved to it).
    pub fn fetch<T, E: From<Error>>(
        &self,
        repo: &gix::Repository,
        remote: &Remote,
        spec: &str,
        interrupt: &AtomicBool,
        decide: impl FnOnce(&[Ref]) -> Result<Want<T>, Failure<E>>,
    ) -> Result<T, Failure<E>> {
        let stage = self.stage;
        let at = remote.at(repo, spec, stage).map_err(fail)?;
        let prepare = remote
            .connect(repo, &at, interrupt, stage)
            .map_err(fail)?
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| fail(remote.network(&e, interrupt, stage)))?;
        let (id, name, then) = match decide(&prepare.ref_map().remote_refs)? {
            Want::Done(t) => return Ok(t),
            Want::Fetch { id, name, then } => (id, name, then),
        };
        if repo.has_object(id) {
            // Fetched before, or pushed from here: no negotiation needed.
            drop(prepare);
            let tracking = spec.rsplit_once(':').map_or(spec, |(_, dst)| dst);
            repo.reference(
                tracking,
                id,
                gix::refs::transaction::PreviousValue::Any,
                "mooring: fetch (known tip)",
            )
            .map_err(|e| Failure::Cache(remote.protocol(stage, format!("cannot set {tracking}: {e}"))))?;
            return Ok(then);
        }
        prepare
            .with_shallow(Shallow::DepthAtRemote(std::num::NonZeroU32::MIN))
            .receive(
                super::progress::Lines::new(format!("fetching {}", remote.shown)),
                interrupt,
            )
            .map_err(|e| match remote.network(&e, interrupt, stage) {
                // Not the network's or the credentials' fault: maybe the cache's.
                e @ Error::Protocol { .. } => Failure::Cache(e),
                e => fail(e),
            })?;
        if !repo.has_object(id) {
            return Err(Failure::Cache(remote.protocol(
                stage,
                format!("the fetch of `{name}` did not bring its tip {id}"),
            )));
        }
        Ok(then)
    }
}
