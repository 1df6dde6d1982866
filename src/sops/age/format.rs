//! The age v1 file format: ASCII armor, header (stanzas and MAC) and the
//! STREAM-encrypted payload (<https://age-encryption.org/v1>).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{AgeError, hkdf32};

/// The largest armored age file read: a sops data key is 32 bytes, its age
/// file a few hundred (a post-quantum one about two thousand).
pub const MAX_ARMORED_BYTES: usize = 1 << 20;

const INTRO: &[u8] = b"age-encryption.org/v1\n";
const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const END: &str = "-----END AGE ENCRYPTED FILE-----";
const COLUMNS: usize = 64;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

fn malformed(why: &str) -> AgeError {
    AgeError::Malformed(why.to_string())
}

/// Canonical unpadded base64, as age writes it in headers.
pub fn decode_b64(s: &str) -> Result<Zeroizing<Vec<u8>>, ()> {
    if s.contains(['\n', '\r']) {
        return Err(());
    }
    STANDARD_NO_PAD.decode(s).map(Zeroizing::new).map_err(|_| ())
}

/// The binary age file: armored input is decoded, binary input is taken as it is.
pub fn dearmor(data: &[u8]) -> Result<Zeroizing<Vec<u8>>, AgeError> {
    if data.len() > MAX_ARMORED_BYTES {
        return Err(malformed("it is larger than 1 MiB"));
    }
    if data.starts_with(INTRO) {
        return Ok(Zeroizing::new(data.to_vec()));
    }
    let text =
        std::str::from_utf8(data).map_err(|_| malformed("it is neither armored text nor an age file"))?;
    let text = text.trim();
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next() != Some(BEGIN) {
        return Err(malformed(
            "it does not start with \"-----BEGIN AGE ENCRYPTED FILE-----\"",
        ));
    }
    let mut b64 = Zeroizing::new(String::with_capacity(text.len()));
    let mut ended = false;
    let mut short_seen = false;
    for line in lines {
        if line == END {
            ended = true;
            break;
        }
        if short_seen || line.len() > COLUMNS {
            return Err(malformed("an armor line has the wrong length"));
        }
        short_seen = line.len() < COLUMNS;
        b64.push_str(line);
    }
    if !ended {
        return Err(malformed(
            "it does not end with \"-----END AGE ENCRYPTED FILE-----\"",
        ));
    }
    STANDARD
        .decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| malformed("the armor is not valid base64"))
}

/// One recipient stanza.
#[derive(Debug)]
pub struct Stanza {
    pub kind: String,
    pub args: Vec<String>,
    pub body: Zeroizing<Vec<u8>>,
}

/// A parsed header.
#[derive(Debug)]
pub struct Header {
    pub stanzas: Vec<Stanza>,
    /// The bytes the MAC covers: from the intro up to and including `---`.
    mac_input_len: usize,
    mac: Vec<u8>,
    /// Where the payload starts.
    pub len: usize,
}

fn is_arg(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b))
}

impl Header {
    pub fn parse(data: &[u8]) -> Result<Header, AgeError> {
        let rest = data
            .strip_prefix(INTRO)
            .ok_or_else(|| malformed("it does not start with \"age-encryption.org/v1\""))?;
        let mut pos = INTRO.len();
        let mut stanzas: Vec<Stanza> = Vec::new();
        let mut lines = rest.split_inclusive(|&b| b == b'\n');
        loop {
            let Some(raw) = lines.next() else {
                return Err(malformed("the header ends without a \"---\" line"));
            };
            let line_start = pos;
            pos += raw.len();
            let line = raw
                .strip_suffix(b"\n")
                .ok_or_else(|| malformed("the header ends without a \"---\" line"))?;
            let line = std::str::from_utf8(line).map_err(|_| malformed("the header is not text"))?;
            if let Some(mac) = line.strip_prefix("--- ") {
                let mac = decode_b64(mac).map_err(|_| malformed("the header MAC is not base64"))?;
                if mac.len() != 32 {
                    return Err(malformed("the header MAC is not 32 bytes"));
                }
                return Ok(Header {
                    stanzas,
                    mac_input_len: line_start + 3,
                    mac: mac.to_vec(),
                    len: pos,
                });
            }
            let Some(args) = line.strip_prefix("-> ") else {
                return Err(malformed("a header line is neither a stanza nor the MAC"));
            };
            let mut parts = args.split(' ');
            let kind = parts.next().unwrap_or_default();
            let args: Vec<String> = parts.map(str::to_string).collect();
            if !is_arg(kind) || !args.iter().all(|a| is_arg(a)) {
                return Err(malformed("a stanza line has an empty or invalid argument"));
            }
            // The body: full 64-column lines, then one shorter (maybe empty) line.
            let mut body = Zeroizing::new(Vec::new());
            loop {
                // An old-style body ends on a full line followed by the next stanza or the MAC.
                let full_before = !body.is_empty() && body.len() % 48 == 0;
                let next_is_header = {
                    let peek = &data[pos..];
                    peek.starts_with(b"-> ") || peek.starts_with(b"--- ")
                };
                if full_before && next_is_header {
                    break;
                }
                let Some(raw) = lines.next() else {
                    return Err(malformed("a stanza body is cut off"));
                };
                pos += raw.len();
                let line = raw
                    .strip_suffix(b"\n")
                    .ok_or_else(|| malformed("a stanza body is cut off"))?;
                if line.len() > COLUMNS {
                    return Err(malformed("a stanza body line is too long"));
                }
                let text = std::str::from_utf8(line).map_err(|_| malformed("a stanza body is not text"))?;
                let bytes = decode_b64(text).map_err(|_| malformed("a stanza body is not base64"))?;
                body.extend_from_slice(&bytes);
                if line.len() < COLUMNS {
                    break;
                }
            }
            stanzas.push(Stanza {
                kind: kind.to_string(),
                args,
                body,
            });
            if stanzas.len() > 1024 {
                return Err(malformed("the header has too many stanzas"));
            }
        }
    }

    /// Check the header MAC with the file key.
    pub fn verify_mac_over(&self, data: &[u8], file_key: &[u8]) -> Result<(), AgeError> {
        let key = hkdf32(&[], file_key, b"header");
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&key[..]).map_err(|_| AgeError::Corrupt("bad MAC key"))?;
        mac.update(&data[..self.mac_input_len]);
        mac.verify_slice(&self.mac)
            .map_err(|_| AgeError::Corrupt("the header MAC does not match"))
    }
}

/// Decrypt the STREAM payload: a 16-byte nonce, then 64 KiB chunks.
pub fn decrypt_payload(file_key: &[u8], payload: &[u8]) -> Result<Zeroizing<Vec<u8>>, AgeError> {
    let (nonce, mut rest) = payload
        .split_at_checked(16)
        .ok_or(AgeError::Corrupt("the payload is cut off"))?;
    let key = hkdf32(nonce, file_key, b"payload");
    let cipher = ChaCha20Poly1305::new((&*key).into());
    let mut out = Zeroizing::new(Vec::with_capacity(rest.len()));
    let mut counter: u64 = 0;
    loop {
        let take = rest.len().min(CHUNK + TAG);
        let (chunk, tail) = rest.split_at(take);
        let last = tail.is_empty();
        if chunk.len() < TAG || (last && chunk.len() == TAG && counter > 0) {
            return Err(AgeError::Corrupt("the payload is cut off"));
        }
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = u8::from(last);
        let (ct, tag) = chunk.split_at(chunk.len() - TAG);
        let start = out.len();
        out.extend_from_slice(ct);
        let tag = chacha20poly1305::Tag::try_from(tag).map_err(|_| AgeError::Corrupt("bad tag"))?;
        cipher
            .decrypt_inout_detached((&n).into(), &[], (&mut out[start..]).into(), &tag)
            .map_err(|_| AgeError::Corrupt("the payload does not decrypt"))?;
        if last {
            return Ok(out);
        }
        counter += 1;
        rest = tail;
    }
}
