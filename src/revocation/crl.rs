//! CRLs (RFC 5280 §5): parsed once, indexed by serial, their signature checked once per
//! issuer; and the operator's CRL files and folders.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use openssl::x509::X509Crl;
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::source::{RevocationError, Source, MAX_CRLS_PER_SOURCE};
use crate::trust::Certificate;

/// Why bytes are not a CRL kyso can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// OpenSSL cannot read it.
    #[error("{reason}")]
    OpenSsl {
        /// OpenSSL's first reason.
        reason: String,
    },
    /// x509-parser cannot read it.
    #[error("{reason}")]
    X509 {
        /// x509-parser's message.
        reason: String,
    },
}

/// When a CRL entry was revoked, and why.
type RevokedEntry = (OffsetDateTime, Option<String>);

/// A parsed CRL, indexed by serial. The OpenSSL object is shared, not copied: a large CRL
/// is parsed once however many verifications use it.
#[derive(Clone)]
pub struct Crl {
    x509: std::sync::Arc<X509Crl>,
    /// Issuer certificates (SHA-256) whose key this CRL's signature was checked against, with
    /// the outcome: a large CRL is hashed once, not once per lookup.
    verified: std::sync::Arc<std::sync::Mutex<HashMap<[u8; 32], bool>>>,
    pub(super) issuer_raw: Vec<u8>,
    /// The CRL's issuer, as kyso prints names.
    pub issuer: String,
    /// Its thisUpdate.
    pub this_update: OffsetDateTime,
    /// Its nextUpdate, if any.
    pub next_update: Option<OffsetDateTime>,
    /// Serial (without leading zeros) → revocation time and reason; shared, so a fetched
    /// CRL handed to many verifications is never copied.
    pub(super) revoked: std::sync::Arc<HashMap<Vec<u8>, RevokedEntry>>,
    /// Size of the DER, for the online cache's memory budget.
    pub size: usize,
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
    /// Where it came from.
    pub source: Source,
}

impl Crl {
    /// Parses the DER CRL `der` from `source`, indexing its entries by serial.
    pub fn from_der(der: &[u8], source: Source) -> Result<Crl, CrlError> {
        let x509 = X509Crl::from_der(der).map_err(|e| CrlError::OpenSsl {
            reason: crate::cms::first_openssl_reason(&e),
        })?;
        let (_, parsed) = CertificateRevocationList::from_der(der).map_err(|e| CrlError::X509 {
            reason: e.to_string(),
        })?;
        let ts = |t: x509_parser::time::ASN1Time| {
            OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
        };
        let revoked: HashMap<_, _> = parsed
            .iter_revoked_certificates()
            .map(|r| {
                let reason = r.reason_code().map(|(_, code)| code.to_string());
                (
                    strip_zeros(r.raw_serial()).to_vec(),
                    (ts(r.revocation_date), reason),
                )
            })
            .collect();
        Ok(Crl {
            issuer_raw: parsed.issuer().as_raw().to_vec(),
            issuer: parsed.issuer().to_string(),
            this_update: ts(parsed.last_update()),
            next_update: parsed.next_update().map(ts),
            revoked: std::sync::Arc::new(revoked),
            size: der.len(),
            sha256: openssl::sha::sha256(der),
            source,
            x509: std::sync::Arc::new(x509),
            verified: Default::default(),
        })
    }
}

impl Crl {
    /// Whether the CRL verifies with `issuer`'s key, checked once per issuer.
    pub(super) fn signed_by(&self, issuer: &Certificate) -> bool {
        // A poisoned lock only costs a second check.
        if let Some(known) = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&issuer.sha256).copied())
        {
            return known;
        }
        let ok = issuer
            .public_key()
            .is_some_and(|k| self.x509.verify(&k).unwrap_or(false));
        if let Ok(mut m) = self.verified.lock() {
            m.insert(issuer.sha256, ok);
        }
        ok
    }
}

impl std::fmt::Debug for Crl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer)
            .field("this_update", &self.this_update)
            .field("entries", &self.revoked.len())
            .field("source", &self.source)
            .finish()
    }
}

pub(super) fn strip_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == 0).count();
    &s[n.min(s.len().saturating_sub(1))..]
}

pub(super) fn load_crls(path: &Path) -> Result<Vec<Crl>, RevocationError> {
    let io = |source| RevocationError::Io {
        path: path.to_owned(),
        source,
    };
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "crl" | "pem" | "der")
                })
            })
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            out.extend(load_crls(&f)?);
            if out.len() > MAX_CRLS_PER_SOURCE {
                return Err(RevocationError::TooMany {
                    path: path.to_owned(),
                });
            }
        }
        return Ok(out);
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let source = Source::File(path.display().to_string());
    let not_a_crl = |reason: String| RevocationError::NotACrl {
        path: path.to_owned(),
        reason,
    };
    let ders: Vec<Vec<u8>> = if bytes.windows(15).any(|w| w == b"-----BEGIN X509") {
        // One PEM block after another; OpenSSL reads one CRL per call.
        let text = String::from_utf8_lossy(&bytes);
        text.split("-----BEGIN X509 CRL-----")
            .skip(1)
            .take(MAX_CRLS_PER_SOURCE + 1)
            .map(|block| {
                let pem = format!("-----BEGIN X509 CRL-----{block}");
                X509Crl::from_pem(pem.as_bytes())
                    .and_then(|c| c.to_der())
                    .map_err(|e| not_a_crl(crate::cms::first_openssl_reason(&e)))
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![bytes]
    };
    if ders.len() > MAX_CRLS_PER_SOURCE {
        return Err(RevocationError::TooMany {
            path: path.to_owned(),
        });
    }
    ders.iter()
        .map(|d| Crl::from_der(d, source.clone()).map_err(|e| not_a_crl(e.to_string())))
        .collect()
}
