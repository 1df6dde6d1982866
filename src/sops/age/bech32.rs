//! Bech32 (BIP 173, not bech32m) as age uses it for its keys: no length
//! limit, one case throughout (identities are written in upper case).

use zeroize::Zeroizing;

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR: [u32; 5] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];

fn polymod(values: impl IntoIterator<Item = u8>) -> u32 {
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn hrp_expand(hrp: &[u8]) -> impl Iterator<Item = u8> + '_ {
    hrp.iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|c| c & 31))
}

/// Why a string is not bech32; says nothing about the string's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bech32Error {
    MixedCase,
    NoSeparator,
    BadCharacter,
    BadChecksum,
    BadPadding,
}

impl std::fmt::Display for Bech32Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bech32Error::MixedCase => "mixes upper and lower case",
            Bech32Error::NoSeparator => "has no \"1\" separator",
            Bech32Error::BadCharacter => "has a character bech32 does not use",
            Bech32Error::BadChecksum => "has a wrong checksum (a character is mistyped or missing)",
            Bech32Error::BadPadding => "has bad padding bits",
        })
    }
}

/// Decode `s` into its human-readable part (lower case) and data bytes.
pub fn decode(s: &str) -> Result<(String, Zeroizing<Vec<u8>>), Bech32Error> {
    let has_lower = s.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = s.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        return Err(Bech32Error::MixedCase);
    }
    let lower = Zeroizing::new(s.to_ascii_lowercase());
    let pos = lower.rfind('1').ok_or(Bech32Error::NoSeparator)?;
    if pos == 0 || pos + 7 > lower.len() {
        return Err(Bech32Error::NoSeparator);
    }
    let hrp = &lower.as_bytes()[..pos];
    if hrp.iter().any(|&c| !(33..=126).contains(&c)) {
        return Err(Bech32Error::BadCharacter);
    }
    let mut data = Zeroizing::new(Vec::with_capacity(lower.len() - pos - 1));
    for c in lower.as_bytes()[pos + 1..].iter() {
        let v = CHARSET
            .iter()
            .position(|x| x == c)
            .ok_or(Bech32Error::BadCharacter)?;
        data.push(v as u8);
    }
    if polymod(hrp_expand(hrp).chain(data.iter().copied())) != 1 {
        return Err(Bech32Error::BadChecksum);
    }
    let payload = &data[..data.len() - 6];
    let bytes = convert_bits(payload, 5, 8, false).ok_or(Bech32Error::BadPadding)?;
    Ok((String::from_utf8_lossy(hrp).into_owned(), bytes))
}

/// Encode `data` with `hrp` (lower case in, lower case out).
pub fn encode(hrp: &str, data: &[u8]) -> String {
    let values = convert_bits(data, 8, 5, true).unwrap_or_default();
    let check = polymod(
        hrp_expand(hrp.as_bytes())
            .chain(values.iter().copied())
            .chain([0u8; 6]),
    ) ^ 1;
    let mut out = String::with_capacity(hrp.len() + 1 + values.len() + 6);
    out.push_str(hrp);
    out.push('1');
    for v in values.iter() {
        out.push(CHARSET[usize::from(*v)] as char);
    }
    for i in 0..6 {
        out.push(CHARSET[((check >> (5 * (5 - i))) & 31) as usize] as char);
    }
    out
}

fn convert_bits(data: &[u8], from: u32, to: u32, pad: bool) -> Option<Zeroizing<Vec<u8>>> {
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let maxv: u32 = (1 << to) - 1;
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() * from as usize / to as usize + 1));
    for &v in data {
        acc = ((acc << from) | u32::from(v)) & 0xffff;
        bits += from;
        while bits >= to {
            bits -= to;
            out.push(((acc >> bits) & maxv) as u8);
        }
    }
    if pad {
        if bits > 0 {
            out.push(((acc << (to - bits)) & maxv) as u8);
        }
    } else if bits >= from || ((acc << (to - bits)) & maxv) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let s = encode("age", &[7u8; 32]);
        let (hrp, data) = decode(&s).unwrap();
        assert_eq!(hrp, "age");
        assert_eq!(&data[..], &[7u8; 32]);
        let (_, upper) = decode(&s.to_ascii_uppercase()).unwrap();
        assert_eq!(&upper[..], &[7u8; 32]);
        let mut broken = s.clone();
        broken.replace_range(10..11, if &s[10..11] == "q" { "p" } else { "q" });
        assert_eq!(decode(&broken).unwrap_err(), Bech32Error::BadChecksum);
        assert_eq!(decode("Age1qq").unwrap_err(), Bech32Error::MixedCase);
        assert_eq!(decode("nosep").unwrap_err(), Bech32Error::NoSeparator);
    }
}
