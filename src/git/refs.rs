//! Reading a remote's advertised refs: which commit a ref names, and
//! which branch the remote's HEAD points at.

use gix::ObjectId;
use gix::bstr::ByteSlice as _;
use gix::protocol::handshake::Ref;

/// A ref's full name and the object it finally points at (an annotated
/// tag peeled to its target); `None` for an unborn ref.
pub(crate) fn peeled(r: &Ref) -> (&str, Option<ObjectId>) {
    let (name, id) = match r {
        Ref::Peeled {
            full_ref_name,
            object,
            ..
        }
        | Ref::Direct {
            full_ref_name,
            object,
        }
        | Ref::Symbolic {
            full_ref_name,
            object,
            ..
        } => (full_ref_name, Some(*object)),
        Ref::Unborn { full_ref_name, .. } => (full_ref_name, None),
    };
    (name.to_str().unwrap_or(""), id)
}

/// The commit the ref `full` (`refs/heads/main`) names among `refs`.
pub(crate) fn find(refs: &[Ref], full: &str) -> Option<ObjectId> {
    refs.iter()
        .map(peeled)
        .find(|(n, _)| *n == full)
        .and_then(|(_, id)| id)
}

/// The branch the remote's HEAD points at (`main`), and its commit unless
/// the branch is unborn.
pub(crate) fn head(refs: &[Ref]) -> Option<(String, Option<ObjectId>)> {
    refs.iter().find_map(|r| match r {
        Ref::Symbolic {
            full_ref_name,
            target,
            ..
        }
        | Ref::Unborn {
            full_ref_name,
            target,
        } if full_ref_name == "HEAD" => {
            let target = target.to_str_lossy();
            let branch = target.strip_prefix("refs/heads/").unwrap_or(&target).to_string();
            Some((branch, peeled(r).1))
        }
        _ => None,
    })
}
