//! Shamir secret sharing over GF(2⁸) as sops (from HashiCorp Vault) uses
//! it to split the data key between key groups: each share is the secret's
//! bytes evaluated at one x, with x as the share's last byte.

use zeroize::Zeroizing;

/// Multiply in GF(2⁸) with the AES polynomial x⁸ + x⁴ + x³ + x + 1.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    while b != 0 {
        if b & 1 == 1 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    r
}

fn inverse(a: u8) -> u8 {
    // a^254 = a^-1 for a ≠ 0.
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u32;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Rebuild the secret from at least two shares.
pub fn combine(parts: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    if parts.len() < 2 {
        return Err("fewer than two Shamir shares");
    }
    let len = parts[0].len();
    if len < 2 || parts.iter().any(|p| p.len() != len) {
        return Err("the Shamir shares differ in length");
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err("two Shamir shares have the same x coordinate");
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (idx, byte) in secret.iter_mut().enumerate() {
        let mut result = 0u8;
        for (i, part) in parts.iter().enumerate() {
            let mut basis = 1u8;
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    // (0 - xj) / (xi - xj); subtraction is xor.
                    basis = mul(basis, mul(*xj, inverse(xs[i] ^ xj)));
                }
            }
            result ^= mul(part[idx], basis);
        }
        *byte = result;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split as sops does, with fixed coefficients, for the test only.
    fn split(secret: &[u8], xs: &[u8], coefficients: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
        xs.iter()
            .map(|&x| {
                let mut share: Vec<u8> = secret
                    .iter()
                    .map(|&s| {
                        // s + c1·x + c2·x² …, by Horner.
                        let mut y = 0u8;
                        for &c in coefficients.iter().rev() {
                            y = mul(y, x) ^ c;
                        }
                        mul(y, x) ^ s
                    })
                    .collect();
                share.push(x);
                Zeroizing::new(share)
            })
            .collect()
    }

    #[test]
    fn field_matches_vaults_tables() {
        // Vault's exp table starts 0x01, 0xe5, 0x4c, 0xb5, 0xfb: powers of 0xe5.
        assert_eq!(mul(0xe5, 0xe5), 0x4c);
        assert_eq!(mul(0x4c, 0xe5), 0xb5);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inverse(a)), 1);
        }
    }

    #[test]
    fn combines_any_threshold_subset() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let shares = split(secret, &[3, 77, 200], &[0x42, 0x17]);
        for pick in [[0, 1, 2].as_slice(), &[0, 1, 2][..]] {
            let chosen: Vec<_> = pick.iter().map(|&i| shares[i].clone()).collect();
            assert_eq!(&combine(&chosen).unwrap()[..], secret);
        }
        let pair = split(secret, &[9, 180], &[0x99]);
        assert_eq!(&combine(&pair).unwrap()[..], secret);
        assert!(combine(&pair[..1]).is_err());
    }
}
