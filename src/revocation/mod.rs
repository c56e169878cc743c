//! Revocation status of the certificates of a path, from CRLs (RFC 5280 §5, §6.3) and OCSP
//! responses (RFC 6960, read in [`ocsp`]).
//!
//! The data comes from inside the signature (the CMS `crls` field and Adobe's
//! `adbe-revocationInfoArchival` attribute), the document's `/DSS` (ETSI EN 319 142-1 §5.4),
//! files the operator names (`--crl`), and the network ([`fetch`], which hands its
//! fetches here as one more [`RevocationData`]). Each CRL is parsed once, its entries
//! indexed by serial; a CRL or response is used only when it is signed by the issuer of the
//! certificate in question (or the issuer's delegated OCSP responder) and covers the
//! validation time. The outcome records which CRL or response decided, so a validation can
//! be re-run.

use std::path::PathBuf;

use time::OffsetDateTime;

pub mod crl;
pub mod fetch;
pub mod ocsp;
pub mod source;

pub use crl::Crl;
pub use ocsp::OcspResponse;
pub use source::{Evidence, EvidenceKind, RevocationError, Source, MAX_CRLS_PER_SOURCE};

use crate::trust::Certificate;
use crl::load_crls;
use ocsp::CertState;

/// The CRLs and OCSP responses available to one verification, from one kind of source.
#[derive(Debug, Clone, Default)]
pub struct RevocationData {
    /// The CRLs.
    pub crls: Vec<Crl>,
    /// The OCSP responses.
    pub ocsp: Vec<OcspResponse>,
}

impl RevocationData {
    /// Data of `crls` and `ocsp`.
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

    /// How many CRLs and responses.
    pub fn len(&self) -> usize {
        self.crls.len() + self.ocsp.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A certificate's revocation status at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not revoked, as this evidence says.
    Good(Evidence),
    /// Revoked.
    Revoked {
        /// Since when.
        at: OffsetDateTime,
        /// The reason, if given.
        reason: Option<String>,
        /// What says so.
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
            problems.push(e.to_string());
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
            kind: EvidenceKind::Ocsp,
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
        kind: EvidenceKind::Crl,
        issuer: crl.issuer.clone(),
        this_update: crl.this_update,
        source: crl.source.clone(),
        sha256: hex::encode(crl.sha256),
    }
}
