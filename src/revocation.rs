//! Revocation status of the certificates of a path, from CRLs (RFC 5280 §5, §6.3) and OCSP
//! responses (RFC 6960, read in [`crate::ocsp`]).
//!
//! The data comes from inside the signature (the CMS `crls` field and Adobe's
//! `adbe-revocationInfoArchival` attribute), the document's `/DSS` (ETSI EN 319 142-1 §5.4),
//! files the operator names (`--crl`), and the network ([`crate::online`], which hands its
//! fetches here as one more [`RevocationData`]). Each CRL is parsed once, its entries
//! indexed by serial; a CRL or response is used only when it is signed by the issuer of the
//! certificate in question (or the issuer's delegated OCSP responder) and covers the
//! validation time. The outcome records which CRL or response decided, so a validation can
//! be re-run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use openssl::x509::X509Crl;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::ocsp::{CertState, OcspResponse};
use crate::trust::Certificate;

/// Most CRLs read from one file or folder: 1,000.
pub const MAX_CRLS_PER_SOURCE: usize = 1_000;

/// Why operator-given revocation data could not be loaded. Bad CRLs inside a document are
/// not errors: they are skipped and reported on the signature.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a CRL (PEM or DER): {reason}")]
    NotACrl { path: PathBuf, reason: String },
    #[error("{path}: more than {MAX_CRLS_PER_SOURCE} CRLs")]
    TooMany { path: PathBuf },
}

/// Where a piece of revocation data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Source {
    /// The signature's CMS (`crls` or `adbe-revocationInfoArchival`).
    Signature,
    /// The document's `/DSS`.
    Dss,
    /// A file the operator named.
    File(String),
    /// Fetched from this URL (a CRL distribution point or an OCSP responder).
    Online(String),
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
    issuer_raw: Vec<u8>,
    pub issuer: String,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    /// Serial (without leading zeros) → revocation time and reason; shared, so a fetched
    /// CRL handed to many verifications is never copied.
    revoked: std::sync::Arc<HashMap<Vec<u8>, RevokedEntry>>,
    /// Size of the DER, for the online cache's memory budget.
    pub size: usize,
    pub sha256: [u8; 32],
    pub source: Source,
}

impl Crl {
    pub fn from_der(der: &[u8], source: Source) -> Result<Crl, String> {
        let x509 = X509Crl::from_der(der).map_err(|e| crate::cms::first_openssl_reason(&e))?;
        let (_, parsed) = CertificateRevocationList::from_der(der).map_err(|e| e.to_string())?;
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
    fn signed_by(&self, issuer: &Certificate) -> bool {
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

fn strip_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == 0).count();
    &s[n.min(s.len().saturating_sub(1))..]
}

/// The CRLs and OCSP responses available to one verification, from one kind of source.
#[derive(Debug, Clone, Default)]
pub struct RevocationData {
    pub crls: Vec<Crl>,
    pub ocsp: Vec<OcspResponse>,
}

impl RevocationData {
    pub fn new(crls: Vec<Crl>, ocsp: Vec<OcspResponse>) -> Self {
        RevocationData { crls, ocsp }
    }

    /// Reads DER CRLs and OCSP responses from `source`, skipping what does not parse (a
    /// signature's revocation check then says it found nothing usable).
    pub fn from_ders<'a>(
        crls: impl IntoIterator<Item = &'a [u8]>,
        ocsp: impl IntoIterator<Item = &'a [u8]>,
        source: &Source,
    ) -> Self {
        RevocationData {
            crls: crls
                .into_iter()
                .filter_map(|d| Crl::from_der(d, source.clone()).ok())
                .collect(),
            ocsp: ocsp
                .into_iter()
                .filter_map(|d| OcspResponse::from_der(d, source.clone()).ok())
                .collect(),
        }
    }

    /// Loads CRLs from files or folders (PEM with one or more, or DER).
    pub fn from_paths(paths: &[PathBuf]) -> Result<Self, RevocationError> {
        let mut crls = Vec::new();
        for p in paths {
            crls.extend(load_crls(p)?);
        }
        Ok(RevocationData {
            crls,
            ocsp: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.crls.len() + self.ocsp.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn load_crls(path: &Path) -> Result<Vec<Crl>, RevocationError> {
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
        .map(|d| Crl::from_der(d, source.clone()).map_err(not_a_crl))
        .collect()
}

/// Which CRL or OCSP response decided a certificate's status, so that a validation can be
/// re-run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `crl` or `ocsp`.
    pub kind: &'static str,
    /// The CRL's issuer, or the OCSP responder.
    pub issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    pub source: Source,
    /// SHA-256 of the CRL or of the whole OCSPResponse, as received.
    pub sha256: String,
}

/// A certificate's revocation status at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Good(Evidence),
    Revoked {
        at: OffsetDateTime,
        reason: Option<String>,
        evidence: Evidence,
    },
    /// No usable data; why the data that was found could not be used.
    Unknown(Vec<String>),
}

/// Whether data issued at `this_update` (valid until `next_update`) speaks for time `at`:
/// issued at or after it (a revocation before `at` would be on it: revocation is final), or
/// current at it.
fn covers(
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    at: OffsetDateTime,
) -> bool {
    this_update >= at || next_update.is_some_and(|n| this_update <= at && at <= n)
}

/// The status of `cert` (issued by `issuer`) at `at`, from the CRLs and OCSP responses of
/// `sets`; `extra` are certificates where a delegated OCSP responder may be found.
///
/// A CRL is used when it names the certificate's issuer, verifies with the issuer's key, and
/// covers `at`; an OCSP response when it answers for the certificate, is signed by the
/// issuer or its delegated responder, and covers `at`. Among usable answers, a revocation
/// decides; else the most recent good one.
pub fn status(
    cert: &Certificate,
    issuer: &Certificate,
    at: OffsetDateTime,
    sets: &[&RevocationData],
    extra: &[Certificate],
) -> Status {
    let mut problems = Vec::new();
    let mut best_good: Option<Evidence> = None;
    let mut good = |e: Evidence| {
        if best_good
            .as_ref()
            .is_none_or(|b| e.this_update > b.this_update)
        {
            best_good = Some(e);
        }
    };
    for response in sets.iter().flat_map(|s| s.ocsp.iter()) {
        let Some(single) = response.single_for(cert, issuer) else {
            continue;
        };
        if let Err(e) = response.signed_for(issuer, extra) {
            problems.push(e);
            continue;
        }
        if !covers(single.this_update, single.next_update, at) {
            problems.push(format!(
                "the OCSP response of {} of {} is stale for {at} (next update {})",
                response.responder_name,
                single.this_update,
                single
                    .next_update
                    .map_or("none".to_owned(), |n| n.to_string())
            ));
            continue;
        }
        let evidence = Evidence {
            kind: "ocsp",
            issuer: response.responder_name.clone(),
            this_update: single.this_update,
            source: response.source.clone(),
            sha256: hex::encode(response.sha256),
        };
        match &single.state {
            CertState::Revoked { at: when, reason } => {
                return Status::Revoked {
                    at: *when,
                    reason: reason.clone(),
                    evidence,
                }
            }
            CertState::Good => good(evidence),
            CertState::Unknown => problems.push(format!(
                "the OCSP responder {} answered \"unknown\" for it",
                response.responder_name
            )),
        }
    }
    for crl in sets.iter().flat_map(|s| s.crls.iter()) {
        if crl.issuer_raw != cert.issuer_raw {
            continue;
        }
        if !crl.signed_by(issuer) {
            problems.push(format!(
                "a CRL of {} does not verify with the issuer's key",
                crl.issuer
            ));
            continue;
        }
        if !covers(crl.this_update, crl.next_update, at) {
            problems.push(format!(
                "the CRL of {} issued {} is stale for {at} (next update {})",
                crl.issuer,
                crl.this_update,
                crl.next_update.map_or("none".to_owned(), |n| n.to_string())
            ));
            continue;
        }
        if let Some((revoked_at, reason)) = crl.revoked.get(&cert.serial) {
            return Status::Revoked {
                at: *revoked_at,
                reason: reason.clone(),
                evidence: evidence(crl),
            };
        }
        good(evidence(crl));
    }
    match best_good {
        Some(e) => Status::Good(e),
        None => Status::Unknown(problems),
    }
}

fn evidence(crl: &Crl) -> Evidence {
    Evidence {
        kind: "crl",
        issuer: crl.issuer.clone(),
        this_update: crl.this_update,
        source: crl.source.clone(),
        sha256: hex::encode(crl.sha256),
    }
}
