//! age's post-quantum hybrid recipient (age 1.3, sops 3.12): stanza
//! `mlkem768x25519`, HPKE (RFC 9180, base mode) with the MLKEM768-X25519
//! KEM of draft-ietf-hpke-pq (X-Wing), HKDF-SHA256 and ChaCha20-Poly1305,
//! info `age-encryption.org/mlkem768x25519`.
//!
//! The identity is a 32-byte seed; SHAKE256 of it gives the ML-KEM-768 seed
//! (64 bytes, d ‖ z) and then the X25519 secret (32 bytes).

use hkdf::Hkdf;
use ml_kem::kem::{Decapsulate as _, KeyExport as _};
use ml_kem::{DecapsulationKey768, Seed};
use sha2::Sha256;
use sha3::{Digest as _, Sha3_256};
use shake::{ExtendableOutput as _, Shake256, Update as _, XofReader as _};
use x25519_dalek::{X25519_BASEPOINT_BYTES, x25519};
use zeroize::Zeroizing;

use super::format::{Stanza, decode_b64};
use super::{AgeError, FILE_KEY_BYTES, bech32, open_file_key};

const STANZA: &str = "mlkem768x25519";
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// X-Wing's combiner label: `\./` `/^\`.
const XWING_LABEL: &[u8] = b"\\.//^\\";
const KEM_ID: u16 = 0x647a;
const KDF_HKDF_SHA256: u16 = 0x0001;
const AEAD_CHACHA20POLY1305: u16 = 0x0003;
const MLKEM_CIPHERTEXT: usize = 1088;

pub struct HybridIdentity {
    dk: Box<DecapsulationKey768>,
    x_secret: Zeroizing<[u8; 32]>,
    x_public: [u8; 32],
    recipient: String,
}

impl HybridIdentity {
    pub fn from_seed(seed: &[u8]) -> Result<HybridIdentity, String> {
        if seed.len() != 32 {
            return Err(format!(
                "a post-quantum key has 32 bytes, this one {}",
                seed.len()
            ));
        }
        let mut xof = Shake256::default();
        xof.update(seed);
        let mut reader = xof.finalize_xof();
        let mut pq_seed = Zeroizing::new([0u8; 64]);
        reader.read(&mut pq_seed[..]);
        let mut x_secret = Zeroizing::new([0u8; 32]);
        reader.read(&mut x_secret[..]);
        let dk = Box::new(DecapsulationKey768::from_seed(Seed::from(*pq_seed)));
        let x_public = x25519(*x_secret, X25519_BASEPOINT_BYTES);
        let mut public = dk.encapsulation_key().to_bytes().to_vec();
        public.extend_from_slice(&x_public);
        Ok(HybridIdentity {
            dk,
            x_secret,
            x_public,
            recipient: bech32::encode("age1pq", &public),
        })
    }

    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    pub fn unwrap(&self, stanza: &Stanza) -> Result<Option<Zeroizing<[u8; FILE_KEY_BYTES]>>, AgeError> {
        if stanza.kind != STANZA {
            return Ok(None);
        }
        let [enc] = stanza.args.as_slice() else {
            return Err(AgeError::Malformed(
                "an mlkem768x25519 stanza must have one argument".into(),
            ));
        };
        let enc = decode_b64(enc)
            .map_err(|_| AgeError::Malformed("the mlkem768x25519 argument is not base64".into()))?;
        if enc.len() != MLKEM_CIPHERTEXT + 32 || stanza.body.len() != FILE_KEY_BYTES + 16 {
            return Err(AgeError::Malformed(
                "an mlkem768x25519 stanza has the wrong size".into(),
            ));
        }
        let (ct_pq, ct_t) = enc.split_at(MLKEM_CIPHERTEXT);
        let Ok(ss_pq) = self.dk.decapsulate_slice(ct_pq) else {
            return Err(AgeError::Malformed(
                "the ML-KEM ciphertext has the wrong size".into(),
            ));
        };
        let ct_t: [u8; 32] = ct_t
            .try_into()
            .map_err(|_| AgeError::Malformed("bad X25519 share".into()))?;
        let ss_t = Zeroizing::new(x25519(*self.x_secret, ct_t));
        if ss_t.iter().all(|&b| b == 0) {
            return Err(AgeError::Malformed(
                "the X25519 share is a low-order point".into(),
            ));
        }
        let mut h = Sha3_256::new();
        sha3::Digest::update(&mut h, ss_pq.as_slice());
        sha3::Digest::update(&mut h, &ss_t[..]);
        sha3::Digest::update(&mut h, ct_t);
        sha3::Digest::update(&mut h, self.x_public);
        sha3::Digest::update(&mut h, XWING_LABEL);
        let shared = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        let (key, nonce) = hpke_key_schedule(&shared[..]);
        // A mismatched key is only detected here (ML-KEM rejects implicitly).
        Ok(open_file_key(&key, &stanza.body, &nonce))
    }
}

/// RFC 9180 key schedule, base mode, no PSK: the AEAD key and base nonce.
fn hpke_key_schedule(shared_secret: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let mut suite = Vec::with_capacity(10);
    suite.extend_from_slice(b"HPKE");
    suite.extend_from_slice(&KEM_ID.to_be_bytes());
    suite.extend_from_slice(&KDF_HKDF_SHA256.to_be_bytes());
    suite.extend_from_slice(&AEAD_CHACHA20POLY1305.to_be_bytes());
    let labeled_extract = |salt: &[u8], label: &[u8], ikm: &[u8]| -> Zeroizing<Vec<u8>> {
        let mut input = Zeroizing::new(Vec::new());
        input.extend_from_slice(b"HPKE-v1");
        input.extend_from_slice(&suite);
        input.extend_from_slice(label);
        input.extend_from_slice(ikm);
        let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &input);
        Zeroizing::new(prk.to_vec())
    };
    let psk_id_hash = labeled_extract(&[], b"psk_id_hash", &[]);
    let info_hash = labeled_extract(&[], b"info_hash", INFO);
    let mut context = Vec::with_capacity(65);
    context.push(0u8);
    context.extend_from_slice(&psk_id_hash);
    context.extend_from_slice(&info_hash);
    let secret = labeled_extract(shared_secret, b"secret", &[]);
    let labeled_expand = |label: &[u8], out: &mut [u8]| {
        let mut info = Vec::new();
        info.extend_from_slice(&(out.len() as u16).to_be_bytes());
        info.extend_from_slice(b"HPKE-v1");
        info.extend_from_slice(&suite);
        info.extend_from_slice(label);
        info.extend_from_slice(&context);
        if let Ok(hk) = Hkdf::<Sha256>::from_prk(&secret) {
            let _ = hk.expand(&info, out);
        }
    };
    let mut key = Zeroizing::new([0u8; 32]);
    labeled_expand(b"key", &mut key[..]);
    let mut nonce = [0u8; 12];
    labeled_expand(b"base_nonce", &mut nonce);
    (key, nonce)
}
