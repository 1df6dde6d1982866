//! Sprig's random functions: `randAlphaNum` and friends, `randBytes`,
//! `uuidv4`, `randInt`'s source, from the operating system's CSPRNG.

use base64::Engine as _;

use super::{FuncDef, Ty, err, f, int};
use crate::helm::value::Value;

/// The most random characters or bytes one call may ask for.
const MAX_RANDOM: i64 = 1 << 20;

/// Random bytes from the operating system (`/dev/urandom`, as Go's
/// `crypto/rand`). Should it fail, the bytes come from the clock and the
/// address space: still distinct, if weak, values.
pub fn fill(buf: &mut [u8]) {
    use std::io::Read as _;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .is_ok()
    {
        return;
    }
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (buf.as_ptr() as u64);
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// A uniform random number below `n` (`n` > 0).
pub fn below(n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let mut b = [0u8; 8];
        fill(&mut b);
        let x = u64::from_le_bytes(b);
        if x < zone {
            return x % n;
        }
    }
}

fn random_from(alphabet: &[u8], count: i64) -> Result<Value, super::FnError> {
    if count < 0 {
        return err(format!("Requested random length {count} is less than 0."));
    }
    if count > MAX_RANDOM {
        return err(format!(
            "Requested random length {count} is more than {MAX_RANDOM}."
        ));
    }
    let s: String = (0..count)
        .map(|_| alphabet[below(alphabet.len() as u64) as usize] as char)
        .collect();
    Ok(Value::string(s))
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";

pub const FUNCS: &[FuncDef] = &[
    f("randAlphaNum", &[Ty::Int], |_, a| random_from(ALNUM, int(&a[0]))),
    f("randAlpha", &[Ty::Int], |_, a| random_from(ALPHA, int(&a[0]))),
    f("randNumeric", &[Ty::Int], |_, a| random_from(DIGITS, int(&a[0]))),
    f("randAscii", &[Ty::Int], |_, a| {
        let printable: Vec<u8> = (32u8..=126).collect();
        random_from(&printable, int(&a[0]))
    }),
    f("randBytes", &[Ty::Int], |_, a| {
        let n = int(&a[0]);
        if !(0..=MAX_RANDOM).contains(&n) {
            return err(format!("Requested random length {n} is out of range."));
        }
        let mut b = vec![0u8; n as usize];
        fill(&mut b);
        Ok(Value::string(base64::engine::general_purpose::STANDARD.encode(b)))
    }),
    f("uuidv4", &[], |_, _| {
        let mut b = [0u8; 16];
        fill(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(Value::string(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )))
    }),
];
