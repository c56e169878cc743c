//! What every part of revocation shares: where data came from ([`Source`]), what decided a
//! status ([`Evidence`]), and why operator-given data cannot be loaded ([`RevocationError`]).

use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;

/// Most CRLs read from one file or folder: 1,000.
pub const MAX_CRLS_PER_SOURCE: usize = 1_000;

/// Why operator-given revocation data could not be loaded. Bad CRLs inside a document are
/// not errors: they are skipped and reported on the signature.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// A file or folder cannot be read.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a CRL.
    #[error("{path}: not a CRL (PEM or DER): {reason}")]
    NotACrl {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file or folder holds more CRLs than kyso reads from one source.
    #[error("{path}: more than {MAX_CRLS_PER_SOURCE} CRLs")]
    TooMany {
        /// The file or folder.
        path: PathBuf,
    },
}

/// Where a piece of revocation data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

/// The kind of data that decided a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    /// A CRL (RFC 5280).
    Crl,
    /// An OCSP response (RFC 6960).
    Ocsp,
}

crate::names::names!(EvidenceKind, "evidence kind", { Crl = "crl", Ocsp = "ocsp" });

/// Which CRL or OCSP response decided a certificate's status, so that a validation can be
/// re-run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// A CRL or an OCSP response.
    pub kind: EvidenceKind,
    /// The CRL's issuer, or the OCSP responder.
    pub issuer: String,
    /// The data's thisUpdate.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub this_update: OffsetDateTime,
    /// Where the data came from.
    pub source: Source,
    /// SHA-256 of the CRL or of the whole OCSPResponse, as received.
    pub sha256: String,
}
