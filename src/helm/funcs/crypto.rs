//! Sprig's certificate and key functions (`crypto.go`): `genCA`,
//! `genSelfSignedCert`, `genSignedCert` (and their `…WithKey` forms),
//! `genPrivateKey`, `buildCustomCert`, `encryptAES` and `decryptAES`, with
//! the certificates Go's `x509.CreateCertificate` would make (RSA 2048,
//! SHA-256, the same extensions) and keys as Go's PEM encoders write them.

use std::rc::Rc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;

use super::{FnError, FnResult, FuncDef, Ty, err, f, int, s, strval, v};
use crate::helm::value::{Field, Struct, StructType, Value};

// ---- DER ----------------------------------------------------------------------------

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

fn integer(bytes: &[u8]) -> Vec<u8> {
    let mut b: Vec<u8> = bytes.iter().copied().skip_while(|x| *x == 0).collect();
    if b.is_empty() {
        b.push(0);
    }
    if b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    tlv(0x02, &b)
}

fn bit_string(bytes: &[u8], unused: u8) -> Vec<u8> {
    let mut body = vec![unused];
    body.extend_from_slice(bytes);
    tlv(0x03, &body)
}

/// Read one TLV: (tag, body, rest).
fn read(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *der.first()?;
    let first = *der.get(1)? as usize;
    let (len, head) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *der.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = der.get(head..head + len)?;
    Some((tag, body, &der[head + len..]))
}

/// The TLV bytes of one element, and the rest.
fn read_raw(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, body, rest) = read(der)?;
    let len = der.len() - rest.len();
    let _ = body;
    Some((&der[..len], rest))
}

// ---- PEM ------------------------------------------------------------------------------

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first PEM block: (label, DER).
fn unpem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let end = rest.find(&end_marker)?;
    let b64: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label, der))
}

// ---- keys ---------------------------------------------------------------------------

enum Key {
    Rsa(signature::RsaKeyPair),
    Ec(signature::EcdsaKeyPair),
    Ed(signature::Ed25519KeyPair),
}

fn crypto_err<T>(what: &str) -> Result<T, FnError> {
    err(format!("error {what}"))
}

impl Key {
    fn rsa(bits: usize) -> Result<Key, FnError> {
        let size = if bits >= 4096 {
            aws_lc_rs::rsa::KeySize::Rsa4096
        } else {
            aws_lc_rs::rsa::KeySize::Rsa2048
        };
        signature::RsaKeyPair::generate(size)
            .map(Key::Rsa)
            .or_else(|_| crypto_err("generating RSA key"))
    }

    /// A private key from PEM (PKCS#1, SEC 1 or PKCS#8).
    fn from_pem(text: &str) -> Result<Key, FnError> {
        let Some((label, der)) = unpem(text) else {
            return err("unable to decode PEM: no PEM data found");
        };
        match label.as_str() {
            "RSA PRIVATE KEY" => signature::RsaKeyPair::from_der(&der)
                .map(Key::Rsa)
                .or_else(|e| err(format!("error parsing RSA key: {e}"))),
            "EC PRIVATE KEY" => signature::EcdsaKeyPair::from_private_key_der(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &der,
            )
            .map(Key::Ec)
            .or_else(|e| err(format!("error parsing EC key: {e}"))),
            "PRIVATE KEY" => {
                if let Ok(k) = signature::RsaKeyPair::from_pkcs8(&der) {
                    return Ok(Key::Rsa(k));
                }
                if let Ok(k) =
                    signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                {
                    return Ok(Key::Ec(k));
                }
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map(Key::Ed)
                    .or_else(|e| err(format!("error parsing PKCS#8 key: {e}")))
            }
            other => err(format!("unsupported key type {other:?}")),
        }
    }

    fn public_spki(&self) -> Result<Vec<u8>, FnError> {
        let der: Result<PublicKeyX509Der, _> = match self {
            Key::Rsa(k) => k.public_key().as_der(),
            Key::Ec(k) => k.public_key().as_der(),
            Key::Ed(k) => k.public_key().as_der(),
        };
        der.map(|d| d.as_ref().to_vec())
            .or_else(|_| crypto_err("encoding public key"))
    }

    /// The signature algorithm identifier and the signature of `msg`.
    fn sign(&self, msg: &[u8]) -> Result<(Vec<u8>, Vec<u8>), FnError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            Key::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .or_else(|_| crypto_err("signing"))?;
                Ok((seq(&[oid(&[1, 2, 840, 113549, 1, 1, 11]), tlv(0x05, &[])]), sig))
            }
            Key::Ec(k) => {
                let sig = k.sign(&rng, msg).or_else(|_| crypto_err("signing"))?;
                Ok((seq(&[oid(&[1, 2, 840, 10045, 4, 3, 2])]), sig.as_ref().to_vec()))
            }
            Key::Ed(k) => Ok((seq(&[oid(&[1, 3, 101, 112])]), k.sign(msg).as_ref().to_vec())),
        }
    }

    /// The private key as Go's `pemBlockForKey` writes it.
    fn pem(&self) -> Result<String, FnError> {
        match self {
            Key::Rsa(k) => {
                let pkcs8: Pkcs8V1Der = k.as_der().or_else(|_| crypto_err("encoding key"))?;
                // PrivateKeyInfo { version, algorithm, OCTET STRING { RSAPrivateKey } }
                let pkcs1 = (|| {
                    let (_, body, _) = read(pkcs8.as_ref())?;
                    let (_, rest) = read_raw(body)?;
                    let (_, rest) = read_raw(rest)?;
                    let (_, key, _) = read(rest)?;
                    Some(key.to_vec())
                })()
                .ok_or_else(|| FnError::Msg("error encoding key".into()))?;
                Ok(pem("RSA PRIVATE KEY", &pkcs1))
            }
            Key::Ec(k) => {
                let der: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der =
                    k.private_key().as_der().or_else(|_| crypto_err("encoding key"))?;
                Ok(pem("EC PRIVATE KEY", der.as_ref()))
            }
            Key::Ed(k) => {
                let der: Pkcs8V1Der = k.as_der().or_else(|_| crypto_err("encoding key"))?;
                Ok(pem("PRIVATE KEY", der.as_ref()))
            }
        }
    }
}

// ---- certificates -----------------------------------------------------------------

fn name(cn: &str) -> Vec<u8> {
    if cn.is_empty() {
        return seq(&[]);
    }
    let printable = cn
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?*&".contains(c));
    let value = tlv(if printable { 0x13 } else { 0x0c }, cn.as_bytes());
    seq(&[tlv(0x31, &seq(&[oid(&[2, 5, 4, 3]), value]))])
}

fn time(ts: jiff::Timestamp) -> Vec<u8> {
    let z = ts.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let year = z.year();
    if (1950..2050).contains(&year) {
        let s = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            year % 100,
            z.month(),
            z.day(),
            z.hour(),
            z.minute(),
            z.second()
        );
        tlv(0x17, s.as_bytes())
    } else {
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            year,
            z.month(),
            z.day(),
            z.hour(),
            z.minute(),
            z.second()
        );
        tlv(0x18, s.as_bytes())
    }
}

fn extension(id: &[u64], critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(tlv(0x01, &[0xff]));
    }
    parts.push(tlv(0x04, &value));
    seq(&parts)
}

/// Go's `marshalKeyUsage`.
fn key_usage(bits: u16) -> Vec<u8> {
    let a = [(bits as u8).reverse_bits(), ((bits >> 8) as u8).reverse_bits()];
    let bytes: &[u8] = if a[1] != 0 { &a } else { &a[..1] };
    let last = bytes[bytes.len() - 1];
    let unused = last.trailing_zeros().min(7) as u8;
    bit_string(bytes, unused)
}

struct CertSpec {
    cn: String,
    ips: Vec<Vec<u8>>,
    dns: Vec<String>,
    days: i64,
    ca: bool,
}

/// The parts of a parent certificate a child needs: its subject (DER) and
/// subject key identifier.
struct Parent<'a> {
    subject: Vec<u8>,
    key_id: Option<Vec<u8>>,
    key: &'a Key,
}

fn spki_key_id(spki: &[u8]) -> Option<Vec<u8>> {
    // SubjectPublicKeyInfo { algorithm, BIT STRING subjectPublicKey }
    let (_, body, _) = read(spki)?;
    let (_, rest) = read_raw(body)?;
    let (_, bits, _) = read(rest)?;
    Some(super::encoding::sha1(bits.get(1..)?).to_vec())
}

fn create(spec: &CertSpec, key: &Key, parent: Option<&Parent>) -> Result<String, FnError> {
    let mut serial = [0u8; 16];
    super::random::fill(&mut serial);
    let spki = key.public_spki()?;
    let subject = name(&spec.cn);
    let issuer = parent.map_or(subject.clone(), |p| p.subject.clone());
    let signer = parent.map_or(key, |p| p.key);
    let now = jiff::Timestamp::now();
    let later = now
        .checked_add(jiff::SignedDuration::from_hours(24 * spec.days))
        .unwrap_or(now);
    let mut exts = Vec::new();
    // DigitalSignature | KeyEncipherment, plus CertSign for a CA.
    let usage: u16 = if spec.ca { 1 | 4 | 32 } else { 1 | 4 };
    exts.push(extension(&[2, 5, 29, 15], true, key_usage(usage)));
    exts.push(extension(
        &[2, 5, 29, 37],
        false,
        seq(&[
            oid(&[1, 3, 6, 1, 5, 5, 7, 3, 1]),
            oid(&[1, 3, 6, 1, 5, 5, 7, 3, 2]),
        ]),
    ));
    let bc = if spec.ca {
        seq(&[tlv(0x01, &[0xff])])
    } else {
        seq(&[])
    };
    exts.push(extension(&[2, 5, 29, 19], true, bc));
    if spec.ca
        && let Some(id) = spki_key_id(&spki)
    {
        exts.push(extension(&[2, 5, 29, 14], false, tlv(0x04, &id)));
    }
    if let Some(p) = parent
        && p.subject != subject
        && let Some(id) = &p.key_id
    {
        exts.push(extension(&[2, 5, 29, 35], false, seq(&[tlv(0x80, id)])));
    }
    if !spec.dns.is_empty() || !spec.ips.is_empty() {
        let mut names = Vec::new();
        for d in &spec.dns {
            names.push(tlv(0x82, d.as_bytes()));
        }
        for ip in &spec.ips {
            names.push(tlv(0x87, ip));
        }
        exts.push(extension(&[2, 5, 29, 17], false, seq(&names)));
    }
    let (alg, _) = signer.sign(b"")?;
    let tbs = seq(&[
        tlv(0xa0, &integer(&[2])),
        integer(&serial),
        alg.clone(),
        issuer,
        seq(&[time(now), time(later)]),
        subject,
        spki,
        tlv(0xa3, &seq(&exts)),
    ]);
    let (alg, sig) = signer.sign(&tbs)?;
    let cert = seq(&[tbs, alg, bit_string(&sig, 0)]);
    Ok(pem("CERTIFICATE", &cert))
}

fn certificate(cert: String, key: String) -> Value {
    Value::Struct(Rc::new(Struct {
        ty: StructType::Certificate,
        fields: vec![
            Field::new("Cert", Value::string(cert)),
            Field::new("Key", Value::string(key)),
        ],
    }))
}

fn ips(v: &Value) -> Result<Vec<Vec<u8>>, FnError> {
    let Some(items) = super::items(v) else {
        return if v.is_nil() {
            Ok(Vec::new())
        } else {
            err("ips must be a list")
        };
    };
    items
        .iter()
        .map(|x| {
            let Value::Str(s) = x else {
                return err(format!("error parsing ip: {} is not a string", strval(x)));
            };
            match s.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => Ok(a.octets().to_vec()),
                Ok(std::net::IpAddr::V6(a)) => Ok(a.octets().to_vec()),
                Err(_) => err(format!("error parsing ip: {s}")),
            }
        })
        .collect()
}

fn dns(v: &Value) -> Result<Vec<String>, FnError> {
    let Some(items) = super::items(v) else {
        return if v.is_nil() {
            Ok(Vec::new())
        } else {
            err("alternate DNS names must be a list")
        };
    };
    items
        .iter()
        .map(|x| match x {
            Value::Str(s) => Ok(s.to_string()),
            other => err(format!(
                "error processing alternate dns name: {} is not a string",
                strval(other)
            )),
        })
        .collect()
}

/// A CA: its key, subject (DER) and subject key identifier.
type CaParts = (Key, Vec<u8>, Option<Vec<u8>>);

fn ca_parts(ca: &Value) -> Result<CaParts, FnError> {
    let Value::Struct(st) = ca else {
        return err("not a certificate");
    };
    let text = |n: &str| {
        st.field(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let key = Key::from_pem(&text("Key"))?;
    let Some((_, der)) = unpem(&text("Cert")) else {
        return err("unable to decode PEM: no certificate");
    };
    let parse = || -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let (_, cert, _) = read(&der)?;
        let (_, tbs, _) = read(cert)?;
        let mut rest = tbs;
        if rest.first() == Some(&0xa0) {
            rest = read_raw(rest)?.1;
        }
        let (_, r) = read_raw(rest)?; // serial
        let (_, r) = read_raw(r)?; // signature
        let (_, r) = read_raw(r)?; // issuer
        let (_, r) = read_raw(r)?; // validity
        let (subject, r) = read_raw(r)?;
        let (_, mut r) = read_raw(r)?; // spki
        let mut key_id = None;
        while let Some((tag, body, next)) = read(r) {
            if tag == 0xa3 {
                let (_, exts, _) = read(body)?;
                let mut e = exts;
                while let Some((_, ext, n)) = read(e) {
                    let (id, after) = read_raw(ext)?;
                    if id == oid(&[2, 5, 29, 14]).as_slice() {
                        let mut v = after;
                        if v.first() == Some(&0x01) {
                            v = read_raw(v)?.1;
                        }
                        let (_, octets, _) = read(v)?;
                        let (_, kid, _) = read(octets)?;
                        key_id = Some(kid.to_vec());
                    }
                    e = n;
                }
            }
            r = next;
        }
        Some((subject.to_vec(), key_id))
    };
    let (subject, key_id) = parse().ok_or_else(|| FnError::Msg("error parsing CA certificate".into()))?;
    Ok((key, subject, key_id))
}

fn days(v: &Value) -> i64 {
    int(v)
}

fn gen_ca(cn: &str, days: i64, key: Key) -> FnResult {
    let spec = CertSpec {
        cn: cn.to_string(),
        ips: Vec::new(),
        dns: Vec::new(),
        days,
        ca: true,
    };
    issue(&spec, key, None)
}

/// The leaf certificate `genSelfSignedCert` and `genSignedCert` ask for
/// with their first arguments: common name, IPs, DNS names, days.
fn leaf_spec(a: &[Value]) -> Result<CertSpec, FnError> {
    Ok(CertSpec {
        cn: s(&a[0]).to_string(),
        ips: ips(&a[1])?,
        dns: dns(&a[2])?,
        days: days(&a[3]),
        ca: false,
    })
}

fn gen_self_signed(a: &[Value], key: Key) -> FnResult {
    issue(&leaf_spec(a)?, key, None)
}

fn gen_signed(a: &[Value], key: Key) -> FnResult {
    let spec = leaf_spec(a)?;
    let (ca_key, subject, key_id) = ca_parts(&a[4])?;
    let parent = Parent {
        subject,
        key_id,
        key: &ca_key,
    };
    issue(&spec, key, Some(&parent))
}

/// The certificate of `key` for `spec`, signed by `parent` (or by itself).
fn issue(spec: &CertSpec, key: Key, parent: Option<&Parent>) -> FnResult {
    let cert = create(spec, &key, parent)?;
    Ok(certificate(cert, key.pem()?))
}

fn aes_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let b = password.as_bytes();
    let n = b.len().min(32);
    key[..n].copy_from_slice(&b[..n]);
    key
}

fn encrypt_aes(password: &str, plaintext: &str) -> FnResult {
    if plaintext.is_empty() {
        return Ok(Value::str(""));
    }
    use aws_lc_rs::cipher::{AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
    let mut content = plaintext.as_bytes().to_vec();
    let pad = 16 - content.len() % 16;
    content.extend(std::iter::repeat_n(pad as u8, pad));
    let mut iv = [0u8; 16];
    super::random::fill(&mut iv);
    let key = UnboundCipherKey::new(&AES_256, &aes_key(password)).or_else(|_| crypto_err("creating key"))?;
    let key = EncryptingKey::cbc(key).or_else(|_| crypto_err("creating key"))?;
    key.less_safe_encrypt(&mut content, EncryptionContext::Iv128(iv.into()))
        .or_else(|_| crypto_err("encrypting"))?;
    let mut out = iv.to_vec();
    out.extend(content);
    Ok(Value::string(
        base64::engine::general_purpose::STANDARD.encode(out),
    ))
}

fn decrypt_aes(password: &str, crypt64: &str) -> FnResult {
    if crypt64.is_empty() {
        return Ok(Value::str(""));
    }
    use aws_lc_rs::cipher::{AES_256, DecryptingKey, DecryptionContext, UnboundCipherKey};
    let crypt = base64::engine::general_purpose::STANDARD
        .decode(crypt64)
        .or_else(|e| err(format!("illegal base64 data: {e}")))?;
    if crypt.len() < 32 || crypt.len() % 16 != 0 {
        return err("crypto/cipher: input not full blocks");
    }
    let (iv, body) = crypt.split_at(16);
    let mut iv16 = [0u8; 16];
    iv16.copy_from_slice(iv);
    let mut data = body.to_vec();
    let key = UnboundCipherKey::new(&AES_256, &aes_key(password)).or_else(|_| crypto_err("creating key"))?;
    let key = DecryptingKey::cbc(key).or_else(|_| crypto_err("creating key"))?;
    let plain = key
        .decrypt(&mut data, DecryptionContext::Iv128(iv16.into()))
        .or_else(|_| crypto_err("decrypting"))?;
    let pad = *plain.last().unwrap_or(&0) as usize;
    if pad > plain.len() {
        return err("runtime error: slice bounds out of range");
    }
    Ok(Value::string(
        String::from_utf8_lossy(&plain[..plain.len() - pad]).into_owned(),
    ))
}

pub const FUNCS: &[FuncDef] = &[
    f("genPrivateKey", &[Ty::Str], |_, a| {
        let key = match s(&a[0]) {
            "rsa" => Key::rsa(4096)?,
            "ecdsa" => signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
                .map(Key::Ec)
                .or_else(|_| crypto_err("generating key"))?,
            "ed25519" => signature::Ed25519KeyPair::generate()
                .map(Key::Ed)
                .or_else(|_| crypto_err("generating key"))?,
            other => return Ok(Value::string(format!("Unknown type {other}"))),
        };
        Ok(Value::string(key.pem()?))
    }),
    f("genCA", &[Ty::Str, Ty::Int], |_, a| {
        gen_ca(s(&a[0]), int(&a[1]), Key::rsa(2048)?)
    }),
    f("genCAWithKey", &[Ty::Str, Ty::Int, Ty::Str], |_, a| {
        gen_ca(s(&a[0]), int(&a[1]), Key::from_pem(s(&a[2]))?)
    }),
    f(
        "genSelfSignedCert",
        &[Ty::Str, Ty::List, Ty::List, Ty::Int],
        |_, a| gen_self_signed(&a, Key::rsa(2048)?),
    ),
    f(
        "genSelfSignedCertWithKey",
        &[Ty::Str, Ty::List, Ty::List, Ty::Int, Ty::Str],
        |_, a| gen_self_signed(&a, Key::from_pem(s(&a[4]))?),
    ),
    f(
        "genSignedCert",
        &[Ty::Str, Ty::List, Ty::List, Ty::Int, Ty::Certificate],
        |_, a| gen_signed(&a, Key::rsa(2048)?),
    ),
    f(
        "genSignedCertWithKey",
        &[Ty::Str, Ty::List, Ty::List, Ty::Int, Ty::Certificate, Ty::Str],
        |_, a| gen_signed(&a, Key::from_pem(s(&a[5]))?),
    ),
    f("buildCustomCert", &[Ty::Str, Ty::Str], |_, a| {
        let decode = |x: &str, what: &str| -> Result<String, FnError> {
            let b = base64::engine::general_purpose::STANDARD
                .decode(x)
                .or_else(|_| err(format!("unable to decode base64 {what}")))?;
            Ok(String::from_utf8_lossy(&b).into_owned())
        };
        let cert = decode(s(&a[0]), "certificate")?;
        let key = decode(s(&a[1]), "private key")?;
        if unpem(&cert).is_none() {
            return err("error parsing certificate: decoded certificate is not valid PEM");
        }
        Key::from_pem(&key)?;
        Ok(certificate(cert, key))
    }),
    f("encryptAES", &[Ty::Str, Ty::Str], |_, a| {
        encrypt_aes(s(&a[0]), s(&a[1]))
    }),
    f("bcrypt", &[Ty::Str], |_, _| {
        err("bcrypt is not supported by mooring")
    }),
    v("htpasswd", &[Ty::Str, Ty::Str], Ty::Str, |_, _| {
        err("htpasswd is not supported by mooring")
    }),
    f(
        "derivePassword",
        &[Ty::Int, Ty::Str, Ty::Str, Ty::Str, Ty::Str],
        |_, _| err("derivePassword is not supported by mooring"),
    ),
    f("decryptAES", &[Ty::Str, Ty::Str], |_, a| {
        decrypt_aes(s(&a[0]), s(&a[1]))
    }),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_round_trip() {
        let c = encrypt_aes("secret", "hello world").unwrap();
        assert_eq!(
            decrypt_aes("secret", c.as_str().unwrap()).unwrap().as_str(),
            Some("hello world")
        );
    }

    #[test]
    fn certificates_are_pem() {
        let ca = gen_ca("my-ca", 365, Key::rsa(2048).unwrap()).unwrap();
        let Value::Struct(st) = &ca else { panic!() };
        let cert = st.field("Cert").unwrap().as_str().unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(
            st.field("Key")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
        let leaf = gen_signed(
            &[
                Value::str("leaf"),
                Value::list(vec![Value::str("10.0.0.1")]),
                Value::list(vec![Value::str("a.example")]),
                Value::Int(30),
                ca.clone(),
            ],
            Key::rsa(2048).unwrap(),
        )
        .unwrap();
        let Value::Struct(l) = &leaf else { panic!() };
        assert!(
            l.field("Cert")
                .unwrap()
                .as_str()
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
    }

    #[test]
    fn key_usage_bits_like_go() {
        assert_eq!(key_usage(1 | 4), vec![0x03, 0x02, 0x05, 0xa0]);
        assert_eq!(key_usage(1 | 4 | 32), vec![0x03, 0x02, 0x02, 0xa4]);
    }
}
