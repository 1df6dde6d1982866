//! A pack (version 2) of a given list of objects, written by hand: the
//! `PACK` header, one zlib-compressed entry per object, the SHA-1 trailer.
//!
//! An object that replaces another one at the same path (a file edited
//! in place, a tree with one entry changed) may be sent as a `REF_DELTA`
//! against the old one when the receiver is known to have it (a "thin"
//! pack, which `git receive-pack` completes with `index-pack --fix-thin`
//! or resolves in `unpack-objects`). The delta is the simplest that pays
//! for such edits: copy the common prefix, insert the middle, copy the
//! common suffix. Anything else is sent whole.

use std::io::Write as _;

use gix::ObjectId;

/// One object to put into a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PackObject {
    pub id: ObjectId,
    pub kind: gix::objs::Kind,
    /// The object this one replaces (same path, same kind), which the
    /// receiver may have: a candidate delta base.
    pub base: Option<ObjectId>,
}

/// Type numbers of pack entries.
fn type_number(kind: gix::objs::Kind) -> u8 {
    match kind {
        gix::objs::Kind::Commit => 1,
        gix::objs::Kind::Tree => 2,
        gix::objs::Kind::Blob => 3,
        gix::objs::Kind::Tag => 4,
    }
}
const REF_DELTA: u8 = 7;

/// What a pack holds, for the record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Written {
    pub objects: usize,
    pub deltas: usize,
}

/// Write a pack of `objects` (in this order) into a buffer. With `thin`,
/// an object whose `base` is known may be sent as a delta against it.
/// `find` gives an object's data.
pub(super) fn write(
    objects: &[PackObject],
    thin: bool,
    mut find: impl FnMut(&ObjectId) -> Result<Vec<u8>, String>,
) -> Result<(Vec<u8>, Written), String> {
    let count = u32::try_from(objects.len()).map_err(|_| "too many objects for one pack".to_string())?;
    let mut out = Vec::with_capacity(64 + objects.len() * 256);
    out.extend_from_slice(b"PACK");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    let mut written = Written::default();
    for object in objects {
        let data = find(&object.id)?;
        let delta = match (thin, object.base) {
            (true, Some(base)) if base != object.id => {
                let base_data = find(&base)?;
                let delta = delta(&base_data, &data);
                // Worth it only when clearly smaller than the object.
                (delta.len() * 2 < data.len()).then_some((base, delta))
            }
            _ => None,
        };
        match delta {
            Some((base, delta)) => {
                entry_header(&mut out, REF_DELTA, delta.len() as u64);
                out.extend_from_slice(base.as_bytes());
                deflate(&mut out, &delta)?;
                written.deltas += 1;
            }
            None => {
                entry_header(&mut out, type_number(object.kind), data.len() as u64);
                deflate(&mut out, &data)?;
            }
        }
        written.objects += 1;
    }
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(&out);
    let trailer = hasher
        .try_finalize()
        .map_err(|e| format!("cannot hash the pack: {e}"))?;
    out.extend_from_slice(trailer.as_bytes());
    Ok((out, written))
}

/// The type-and-size header of a pack entry.
fn entry_header(out: &mut Vec<u8>, kind: u8, mut size: u64) {
    let mut byte = (kind << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size != 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

fn deflate(out: &mut Vec<u8>, data: &[u8]) -> Result<(), String> {
    let mut encoder = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
    encoder
        .write_all(data)
        .and_then(|_| encoder.finish().map(|_| ()))
        .map_err(|e| format!("cannot compress an object: {e}"))
}

/// A git delta turning `base` into `target`: copy the common prefix,
/// insert what differs, copy the common suffix.
pub(super) fn delta(base: &[u8], target: &[u8]) -> Vec<u8> {
    let limit = base.len().min(target.len());
    let prefix = base.iter().zip(target).take_while(|(a, b)| a == b).count();
    let suffix = base[prefix..]
        .iter()
        .rev()
        .zip(target[prefix..].iter().rev())
        .take(limit - prefix)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = Vec::with_capacity(32 + target.len() - prefix - suffix);
    varint(&mut out, base.len() as u64);
    varint(&mut out, target.len() as u64);
    copy(&mut out, 0, prefix);
    for chunk in target[prefix..target.len() - suffix].chunks(0x7f) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    copy(&mut out, base.len() - suffix, suffix);
    out
}

/// Copy instructions for `len` bytes of the base from `offset`.
fn copy(out: &mut Vec<u8>, mut offset: usize, mut len: usize) {
    const MAX: usize = 0xff_ffff;
    while len > 0 {
        let n = len.min(MAX);
        let mut op = 0x80u8;
        let mut args = Vec::with_capacity(7);
        for i in 0..4 {
            let b = ((offset >> (8 * i)) & 0xff) as u8;
            if b != 0 {
                op |= 1 << i;
                args.push(b);
            }
        }
        for i in 0..3 {
            let b = ((n >> (8 * i)) & 0xff) as u8;
            if b != 0 {
                op |= 0x10 << i;
                args.push(b);
            }
        }
        out.push(op);
        out.extend_from_slice(&args);
        offset += n;
        len -= n;
    }
}

/// The size varint of a delta header (little-endian, 7 bits a byte).
fn varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apply a delta as git does.
    fn apply(base: &[u8], delta: &[u8]) -> Vec<u8> {
        let mut pos = 0;
        let mut read_varint = || {
            let (mut n, mut shift) = (0u64, 0);
            loop {
                let b = delta[pos];
                pos += 1;
                n |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    return n;
                }
            }
        };
        assert_eq!(read_varint() as usize, base.len());
        let size = read_varint() as usize;
        let mut out = Vec::new();
        while pos < delta.len() {
            let op = delta[pos];
            pos += 1;
            if op & 0x80 != 0 {
                let (mut offset, mut len) = (0usize, 0usize);
                for i in 0..4 {
                    if op & (1 << i) != 0 {
                        offset |= usize::from(delta[pos]) << (8 * i);
                        pos += 1;
                    }
                }
                for i in 0..3 {
                    if op & (0x10 << i) != 0 {
                        len |= usize::from(delta[pos]) << (8 * i);
                        pos += 1;
                    }
                }
                if len == 0 {
                    len = 0x10000;
                }
                out.extend_from_slice(&base[offset..offset + len]);
            } else {
                let n = usize::from(op);
                assert!(n > 0, "reserved opcode");
                out.extend_from_slice(&delta[pos..pos + n]);
                pos += n;
            }
        }
        assert_eq!(out.len(), size);
        out
    }

    #[test]
    fn deltas_round_trip() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut edited = big.clone();
        edited[150_000] ^= 1;
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"image: a:1.0\n".to_vec(), b"image: a:1.1\n".to_vec()),
            (b"".to_vec(), b"new".to_vec()),
            (b"old".to_vec(), b"".to_vec()),
            (b"same".to_vec(), b"same".to_vec()),
            (b"aaaa".to_vec(), b"aa".to_vec()),
            (b"aa".to_vec(), b"aaaa".to_vec()),
            (b"abcabc".to_vec(), b"abcXabc".to_vec()),
            (vec![7; 400], vec![9; 300]),
            (big.clone(), edited.clone()),
        ];
        for (base, target) in cases {
            let d = delta(&base, &target);
            assert_eq!(apply(&base, &d), target, "{base:?} -> {target:?}");
        }
        assert!(delta(&big, &edited).len() < 64);
    }

    #[test]
    fn entry_headers_encode_type_and_size() {
        let mut out = Vec::new();
        entry_header(&mut out, 3, 10);
        assert_eq!(out, [0x3a]);
        out.clear();
        entry_header(&mut out, 2, 300);
        // 300 = 0b1_0010_1100: low nibble 0xc, then 300 >> 4 = 18.
        assert_eq!(out, [0x80 | 0x20 | 0x0c, 18]);
    }

    #[test]
    fn a_pack_is_readable_by_git() {
        // The pack format is checked end to end against `git index-pack` in
        // tests/it/push.rs; here only the framing.
        let blob = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, b"hi\n").unwrap();
        let (pack, written) = write(
            &[PackObject {
                id: blob,
                kind: gix::objs::Kind::Blob,
                base: None,
            }],
            true,
            |_| Ok(b"hi\n".to_vec()),
        )
        .unwrap();
        assert_eq!(&pack[..4], b"PACK");
        assert_eq!(&pack[4..12], &[0, 0, 0, 2, 0, 0, 0, 1]);
        assert_eq!(
            written,
            Written {
                objects: 1,
                deltas: 0
            }
        );
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        hasher.update(&pack[..pack.len() - 20]);
        assert_eq!(
            hasher.try_finalize().unwrap().as_bytes(),
            &pack[pack.len() - 20..]
        );
    }
}
