//! CA files (`ca-file`): takes the path of a PEM bundle, gives its
//! certificates (DER) for whichever client needs them — gix's HTTP
//! transport, oci-client, kube, reqwest. A CA file adds trust; it never
//! turns verification off, and nothing here makes plain HTTP acceptable.
//!
//! The file is read at each use (a rotated CA needs no restart) and is
//! not secret, but it is still bounded: a CA bundle is small.

use std::path::{Path, PathBuf};

use base64::Engine as _;

/// A CA bundle larger than this is refused (the system's whole bundle is
/// about 200 KiB).
const MAX_BUNDLE: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the CA file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the CA file {} {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
}

/// The certificates of the PEM file at `path`, DER-encoded, in file order.
pub fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    let read = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_BUNDLE {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            problem: format!("is {len} bytes; a CA bundle is at most {MAX_BUNDLE}"),
        });
    }
    let text = std::fs::read(path).map_err(read)?;
    parse_pem(&text).map_err(|problem| Error::Invalid {
        path: path.to_path_buf(),
        problem,
    })
}

/// Every `CERTIFICATE` block of a PEM text; other blocks (keys, CRLs)
/// are skipped. At least one certificate is required.
pub fn parse_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(text);
    let mut certs = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(end) = body.find(END) else {
            return Err(format!(
                "has a certificate without its `{END}` line (certificate {})",
                certs.len() + 1
            ));
        };
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| {
                format!(
                    "has a certificate that is not base64 (certificate {}): {e}",
                    certs.len() + 1
                )
            })?;
        certs.push(der);
        rest = &body[end + END.len()..];
    }
    if certs.is_empty() {
        return Err(format!("holds no `{BEGIN}` block: give PEM certificates"));
    }
    Ok(certs)
}

/// The certificates of `path` (if any) for reqwest.
pub fn reqwest_certificates(path: Option<&Path>) -> Result<Vec<reqwest::Certificate>, Error> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    read_ca_file(path)?
        .iter()
        .map(|der| {
            reqwest::Certificate::from_der(der).map_err(|e| Error::Invalid {
                path: path.to_path_buf(),
                problem: format!("holds a certificate that cannot be used: {e}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_read_and_other_blocks_skipped() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nBQY=\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            parse_pem(pem.as_bytes()).unwrap(),
            vec![vec![0, 1, 2, 3], vec![4, 5]]
        );
    }

    #[test]
    fn a_file_without_certificates_or_with_a_broken_one_is_refused() {
        assert!(parse_pem(b"nothing").unwrap_err().contains("holds no"));
        let cut = "-----BEGIN CERTIFICATE-----\nAAEC\n";
        assert!(parse_pem(cut.as_bytes()).unwrap_err().contains("without its"));
        let bad = "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n";
        assert!(parse_pem(bad.as_bytes()).unwrap_err().contains("not base64"));
    }
}
