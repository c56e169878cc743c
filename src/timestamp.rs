//! RFC 3161 timestamp tokens: the proof that a signature (or a whole document revision)
//! existed at a time (ETSI EN 319 102-1 §5.4, "proof of existence").
//!
//! A token is a CMS SignedData over a TSTInfo. It is valid when its TSTInfo's imprint is the
//! digest of what it stamps (a signature value, or a document timestamp's byte ranges — SHA-1
//! imprints are accepted: the BCY's TSA client sends them), its own signature verifies with
//! the TSA's certificate, and that certificate chains to a configured anchor at `genTime`
//! with the critical id-kp-timeStamping extended key usage (RFC 3161 §2.3). `verify` then
//! judges the signer's certificate at the proven time instead of the claimed one.
//! Revocation of the TSA's chain is the revocation work's (DESIGN.md, `revocation`).

use time::OffsetDateTime;

use crate::cms::{self, SignatureScheme};
/// The CMS types a timestamp's errors and proof name.
pub use crate::cms::{CmsError, DigestAlgorithm, SignatureCheckError};
use crate::trust::{
    self, Cache, Certificate, ChainError, PathOptions, Purpose, TrustStore, ValidPath,
};

/// Why a timestamp token does not prove its time.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TimestampError {
    /// The token is not a CMS SignedData.
    #[error("the token is not a CMS SignedData: {0}")]
    Cms(CmsError),
    /// The token encapsulates something other than a TSTInfo.
    #[error("the token encapsulates {found}, not a TSTInfo")]
    NotTstInfo {
        /// Its content type.
        found: String,
    },
    /// The TSTInfo does not decode.
    #[error("the TSTInfo cannot be read: {0}")]
    TstInfo(CmsError),
    /// The imprint's hash algorithm is not supported.
    #[error("the imprint's hash algorithm {oid} is not supported")]
    UnsupportedImprint {
        /// Its OID.
        oid: String,
    },
    /// The imprint is not the digest of what the token stamps.
    #[error("the imprint is not the {algorithm} digest of what the token stamps")]
    ImprintMismatch {
        /// The imprint's algorithm.
        algorithm: &'static str,
    },
    /// The TSA's certificate is not found.
    #[error("the TSA's certificate is neither in the token nor in the configured certificates")]
    TsaCertificateMissing,
    /// The token's digest algorithm is not supported.
    #[error("the token's digest algorithm {oid} is not supported")]
    UnsupportedDigest {
        /// Its OID.
        oid: String,
    },
    /// The token's messageDigest is not the digest of its TSTInfo.
    #[error("the token has no signed attributes with a messageDigest of its TSTInfo")]
    MessageDigestMismatch,
    /// The token's signature algorithm is not supported.
    #[error("the token's signature algorithm {oid} is not supported")]
    UnsupportedSignature {
        /// Its OID.
        oid: String,
    },
    /// The token's signature does not verify.
    #[error("the token's signature: {0}")]
    Signature(SignatureCheckError),
    /// The TSA's certificate does not chain to a trust anchor at genTime.
    #[error("the TSA's certificate chain at genTime: {0}")]
    Chain(ChainError),
    /// OpenSSL failed to hash.
    #[error("hashing failed in OpenSSL: {0}")]
    Crypto(String),
}

/// A token whose imprint, signature and TSA chain all hold.
#[derive(Debug, Clone)]
pub struct ProvenTime {
    /// The time the token proves.
    pub gen_time: OffsetDateTime,
    /// The imprint's algorithm.
    pub imprint_algorithm: DigestAlgorithm,
    /// The TSA's certificate.
    pub tsa: Certificate,
    /// The TSA's path at genTime.
    pub chain: ValidPath,
}

/// Verifies `token` (DER of a ContentInfo) as a timestamp over `stamped` (the parts of the
/// stamped data, hashed in order), with the TSA's chain built from the token's certificates
/// and `store`, reusing the parsed certificates and signature checks in `cache`.
pub fn verify_token(
    token: &[u8],
    stamped: &[&[u8]],
    store: &TrustStore,
    cache: &Cache,
) -> Result<ProvenTime, TimestampError> {
    let sd = cms::parse_signed_data(token).map_err(TimestampError::Cms)?;
    if sd.econtent_type != cms::oid::TST_INFO {
        return Err(TimestampError::NotTstInfo {
            found: sd.econtent_type.to_string(),
        });
    }
    let content = sd.econtent.as_deref().unwrap_or(&[]);
    let tst = cms::parse_tst_info(content).map_err(TimestampError::TstInfo)?;
    let imprint_algorithm = DigestAlgorithm::from_oid(&tst.imprint_algorithm.oid).ok_or(
        TimestampError::UnsupportedImprint {
            oid: tst.imprint_algorithm.oid.to_string(),
        },
    )?;
    let crypto = |e: openssl::error::ErrorStack| TimestampError::Crypto(e.to_string());
    let mut hasher = imprint_algorithm.hasher().map_err(crypto)?;
    for part in stamped {
        hasher.update(part).map_err(crypto)?;
    }
    if imprint_algorithm.finish(&mut hasher).map_err(crypto)? != tst.imprint {
        return Err(TimestampError::ImprintMismatch {
            algorithm: imprint_algorithm.name(),
        });
    }
    let certs = cache.certificates(&sd.certificates);
    verify_token_signature(&sd, &certs, content, store).and_then(|tsa| {
        let options = PathOptions {
            at: tst.gen_time,
            purpose: Purpose::TimeStamping,
        };
        let chain = trust::build_path_with(&tsa, &certs, store, options, cache)
            .map_err(TimestampError::Chain)?;
        Ok(ProvenTime {
            gen_time: tst.gen_time,
            imprint_algorithm,
            tsa,
            chain,
        })
    })
}

/// The token's own signature: `messageDigest` over the TSTInfo, the signature over the
/// signed attributes with the TSA's key. Returns the TSA's certificate.
fn verify_token_signature(
    sd: &cms::SignedData,
    certs: &[Certificate],
    content: &[u8],
    store: &TrustStore,
) -> Result<Certificate, TimestampError> {
    let tsa = trust::find_certificate(&sd.signer.sid, certs, store)
        .ok_or(TimestampError::TsaCertificateMissing)?;
    let si = &sd.signer;
    let digest = DigestAlgorithm::from_oid(&si.digest_algorithm.oid).ok_or(
        TimestampError::UnsupportedDigest {
            oid: si.digest_algorithm.oid.to_string(),
        },
    )?;
    let expected = digest
        .digest(content)
        .map_err(|e| TimestampError::Crypto(e.to_string()))?;
    let signed_attrs = si
        .signed_attrs_der
        .as_deref()
        .filter(|_| si.message_digest().as_deref() == Some(&expected[..]))
        .ok_or(TimestampError::MessageDigestMismatch)?;
    let scheme = SignatureScheme::resolve(&si.signature_algorithm, digest).ok_or(
        TimestampError::UnsupportedSignature {
            oid: si.signature_algorithm.oid.to_string(),
        },
    )?;
    let key = tsa
        .public_key()
        .ok_or(TimestampError::Signature(SignatureCheckError::Malformed(
            "the TSA's public key cannot be read".into(),
        )))?;
    cms::verify_signature(scheme, &key, &[signed_attrs], &si.signature)
        .map_err(TimestampError::Signature)?;
    Ok(tsa)
}

/// How far a claimed `signingTime` may sit from exactly seven hours after the proven time and
/// still be read as Vietnam local time labelled as UTC: 10 minutes, covering the seconds
/// between signing and stamping and ordinary clock drift of a signer's workstation.
pub const LOCAL_TIME_SLACK_SECONDS: i64 = 600;

/// How a claimed signing time relates to the proven one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimedVsProven {
    /// Within [`LOCAL_TIME_SLACK_SECONDS`] of the proven time.
    Consistent,
    /// About seven hours ahead: Vietnam time (UTC+7) written with a UTC label, which some
    /// signing tools do (VN-PKI.md). Tolerated and reported.
    LocalTimeLabelledUtc,
    /// Otherwise off by this many seconds (positive: the claim is later than the proof).
    Inconsistent(i64),
}

/// How the time a signature claims relates to the time its timestamp proves.
pub fn compare_claimed(claimed: OffsetDateTime, proven: OffsetDateTime) -> ClaimedVsProven {
    let delta = (claimed - proven).whole_seconds();
    if delta.abs() <= LOCAL_TIME_SLACK_SECONDS {
        ClaimedVsProven::Consistent
    } else if (delta - 7 * 3600).abs() <= LOCAL_TIME_SLACK_SECONDS {
        ClaimedVsProven::LocalTimeLabelledUtc
    } else {
        ClaimedVsProven::Inconsistent(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn seven_hours_ahead_is_local_time_labelled_utc() {
        let proven = datetime!(2023-12-29 03:50:26 UTC);
        assert_eq!(
            compare_claimed(datetime!(2023-12-29 03:50:25 UTC), proven),
            ClaimedVsProven::Consistent
        );
        assert_eq!(
            compare_claimed(datetime!(2023-12-29 10:50:25 UTC), proven),
            ClaimedVsProven::LocalTimeLabelledUtc
        );
        assert_eq!(
            compare_claimed(datetime!(2023-12-29 05:50:26 UTC), proven),
            ClaimedVsProven::Inconsistent(7200)
        );
    }

    #[test]
    fn garbage_token_is_a_named_error() {
        let e = verify_token(
            b"\x30\x03\x02\x01\x01",
            &[b"x"],
            &TrustStore::default(),
            &Cache::default(),
        )
        .expect_err("garbage");
        assert!(matches!(e, TimestampError::Cms(_)), "{e}");
    }
}
