//! Extracting an artifact layer (tar.gz) as hostile input: only regular
//! files and directories, written through the artifact [`Writer`]; any
//! link, device, fifo or other entry rejects the whole archive, naming
//! the entry. The decompressed stream is capped as well (a gzip bomb of
//! skipped entries or padding would otherwise cost unbounded CPU).

use std::cell::Cell;
use std::io::{self, Read};
use std::path::{Component, Path};
use std::rc::Rc;

use tar::EntryType;

use crate::source::artifact::Writer;
use crate::source::{Error, Limits};

/// Bytes of tar framing allowed per entry on top of the content budget.
const OVERHEAD_PER_ENTRY: u64 = 8 * 1024;

/// Unpack the tar.gz `reader` (the layer `layer`) into `w`.
pub fn tar_gz(reader: impl Read, w: &mut Writer, layer: &str, limits: Limits) -> Result<(), Error> {
    let max_entries = limits.max_files.saturating_mul(2);
    let cap = limits
        .max_bytes
        .saturating_add(max_entries.saturating_mul(OVERHEAD_PER_ENTRY));
    let exceeded = Rc::new(Cell::new(false));
    let capped = Capped {
        inner: flate2::read::GzDecoder::new(reader),
        left: cap,
        exceeded: exceeded.clone(),
    };
    let bomb = || Error::Rejected {
        entry: layer.to_string(),
        reason: format!("the archive expands to more than {cap} bytes"),
    };
    let corrupt = |e: io::Error| Error::Rejected {
        entry: layer.to_string(),
        reason: format!("not a valid tar.gz archive: {e}"),
    };
    let mut archive = tar::Archive::new(capped);
    let entries = archive.entries().map_err(corrupt)?;
    let mut count = 0u64;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(_) if exceeded.get() => return Err(bomb()),
            Err(e) => return Err(corrupt(e)),
        };
        count += 1;
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw).into_owned();
        let reject = |reason: String| Error::Rejected {
            entry: path.clone(),
            reason,
        };
        if count > max_entries {
            return Err(reject(format!("the archive has more than {max_entries} entries")));
        }
        if std::str::from_utf8(&raw).is_err() {
            return Err(reject("the path is not UTF-8".into()));
        }
        let kind = entry.header().entry_type();
        let result = match kind {
            EntryType::Regular | EntryType::Continuous => {
                let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
                w.file(&path, executable, &mut entry)
            }
            EntryType::Directory => {
                if Path::new(&path).components().all(|c| c == Component::CurDir) {
                    Ok(()) // `./`: the artifact's root itself
                } else {
                    w.dir(&path)
                }
            }
            // pax global headers carry metadata only.
            EntryType::XGlobalHeader => Ok(()),
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                Err(reject(format!(
                    "symbolic links are not allowed (it points to `{target}`)"
                )))
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                Err(reject(format!(
                    "hard links are not allowed (it links to `{target}`)"
                )))
            }
            EntryType::Char | EntryType::Block => Err(reject("device files are not allowed".into())),
            EntryType::Fifo => Err(reject("fifos are not allowed".into())),
            other => Err(reject(format!(
                "only regular files and directories are allowed, not {other:?}"
            ))),
        };
        match result {
            Err(_) if exceeded.get() => return Err(bomb()),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// A reader that fails once more than `left` bytes were read.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other("the decompressed archive is too large"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
