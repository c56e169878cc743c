//! OCSP responses (RFC 6960): reading them, checking who signed them, and answering for one
//! certificate; and the requests kyso sends when it asks a responder itself.
//!
//! A response is used for a certificate only when its signature verifies with the key of the
//! certificate's issuer, or of a responder the issuer delegated to (a certificate the issuer
//! signed, carrying id-kp-OCSPSigning, valid when the response was produced: RFC 6960
//! §4.2.2.2). A delegated responder with `id-pkix-ocsp-nocheck` is trusted for the response's
//! lifetime; one without it is accepted too and its own status is not pursued — the RFC
//! leaves that to local policy, and no responder kyso has met omits the extension.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use der::asn1::{ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode, Reader, SliceReader};
use time::OffsetDateTime;
use x509_ocsp::{CertStatus, OcspResponseStatus, ResponderId};

use super::source::Source;
use crate::cms::{self, AlgorithmIdentifier, DigestAlgorithm, SignatureScheme};
use crate::trust::{Certificate, OCSP_SIGNING};

/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
const OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// Most single responses read from one response: a response about one certificate has one.
const MAX_SINGLE_RESPONSES: usize = 1_000;

/// A certificate's status in one single response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertState {
    /// The certificate is not revoked.
    Good,
    /// The certificate is revoked.
    Revoked {
        /// Since when.
        at: OffsetDateTime,
        /// The revocation reason, if given.
        reason: Option<String>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One `SingleResponse`: the status of the certificate its CertID names.
#[derive(Debug, Clone)]
pub struct Single {
    hash: DigestAlgorithm,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    serial: Vec<u8>,
    /// What the responder says of the certificate.
    pub state: CertState,
    /// When the answer was true.
    pub this_update: OffsetDateTime,
    /// Until when it is.
    pub next_update: Option<OffsetDateTime>,
}

/// A successful basic OCSP response, parsed.
#[derive(Clone)]
pub struct OcspResponse {
    responder: Responder,
    /// The responder, as its responder ID names it.
    pub responder_name: String,
    /// When the response was signed.
    pub produced_at: OffsetDateTime,
    tbs: Arc<Vec<u8>>,
    signature_algorithm: AlgorithmIdentifier,
    signature: Arc<Vec<u8>>,
    certs: Arc<Vec<Certificate>>,
    /// The answer for each certificate asked about.
    pub responses: Vec<Single>,
    /// The nonce it carries, if any.
    pub nonce: Option<Vec<u8>>,
    /// SHA-256 of the whole OCSPResponse, as received.
    pub sha256: [u8; 32],
    /// Where the response came from.
    pub source: Source,
    /// Outcome of the signature check per issuer (SHA-256 of its certificate).
    verified: Arc<Mutex<HashMap<[u8; 32], SignerCheck>>>,
}

/// Who signed a response (`Ok`), or why it is not acceptable.
type SignerCheck = Result<String, OcspError>;

#[derive(Debug, Clone)]
enum Responder {
    ByName(Vec<u8>),
    ByKey(Vec<u8>),
}

impl std::fmt::Debug for OcspResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponse")
            .field("responder", &self.responder_name)
            .field("produced_at", &self.produced_at)
            .field("responses", &self.responses.len())
            .field("source", &self.source)
            .finish()
    }
}

/// Why an OCSP response cannot be read, or cannot be used for a certificate's issuer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The bytes are not an OCSPResponse.
    #[error("not an OCSP response ({0})")]
    NotOcsp(der::Error),
    /// The responder answered with an error status.
    #[error("the responder answered {status}, not a status")]
    NotSuccessful {
        /// The status.
        status: String,
    },
    /// A successful response carries no response.
    #[error("a successful OCSP response without responseBytes")]
    NoResponseBytes,
    /// The response is not a basic OCSP response.
    #[error("OCSP response type {oid} is not the basic one")]
    NotBasic {
        /// Its type.
        oid: Oid,
    },
    /// The basic response does not decode.
    #[error("the basic OCSP response is malformed ({0})")]
    Malformed(der::Error),
    /// The response answers for more certificates than kyso reads.
    #[error("more than {MAX_SINGLE_RESPONSES} single responses")]
    TooManyResponses,
    /// The responder is neither the issuer nor a certificate of the response.
    #[error("the responder {responder} is neither the issuer {issuer} nor a certificate in the response")]
    UnknownResponder {
        /// The responder.
        responder: String,
        /// The issuer.
        issuer: String,
    },
    /// The responder's certificate is not issued by the issuer.
    #[error("the responder {subject} is not certified by {issuer}")]
    NotCertified {
        /// The responder.
        subject: String,
        /// The issuer.
        issuer: String,
    },
    #[error(
        "the responder {subject} is not authorised to sign OCSP responses (no id-kp-OCSPSigning)"
    )]
    /// The responder's certificate lacks id-kp-OCSPSigning.
    NotAuthorised {
        /// The responder.
        subject: String,
    },
    /// The responder's certificate was not valid when the response was produced.
    #[error("the responder certificate {subject} was not valid when the response was produced")]
    ResponderNotValid {
        /// The responder.
        subject: String,
    },
    /// The response's signature algorithm is not supported.
    #[error("the OCSP response's signature algorithm {oid} is not supported")]
    Algorithm {
        /// Its OID.
        oid: String,
    },
    /// The responder's key cannot be read.
    #[error("the responder's public key cannot be read")]
    ResponderKey,
    /// The response's signature does not verify.
    #[error("the OCSP response of {responder} does not verify: {reason}")]
    BadSignature {
        /// The responder.
        responder: String,
        /// Why.
        reason: String,
    },
    /// The OCSP request cannot be encoded.
    #[error("cannot build the OCSP request ({0})")]
    Request(der::Error),
}

impl OcspResponse {
    /// Reads a DER `OCSPResponse`. Anything but a successful basic response is an error
    /// naming what the responder said.
    pub fn from_der(der: &[u8], source: Source) -> Result<OcspResponse, OcspError> {
        let outer = x509_ocsp::OcspResponse::from_der(der).map_err(OcspError::NotOcsp)?;
        if outer.response_status != OcspResponseStatus::Successful {
            return Err(OcspError::NotSuccessful {
                status: format!("{:?}", outer.response_status),
            });
        }
        let bytes = outer.response_bytes.ok_or(OcspError::NoResponseBytes)?;
        if bytes.response_type != OCSP_BASIC {
            return Err(OcspError::NotBasic {
                oid: bytes.response_type,
            });
        }
        let basic_der = bytes.response.as_bytes();
        let basic =
            x509_ocsp::BasicOcspResponse::from_der(basic_der).map_err(OcspError::Malformed)?;
        // The signature covers tbsResponseData as received: take its bytes, not a re-encoding.
        let tbs = first_element(basic_der).map_err(OcspError::Malformed)?;
        let data = &basic.tbs_response_data;
        if data.responses.len() > MAX_SINGLE_RESPONSES {
            return Err(OcspError::TooManyResponses);
        }
        let (responder, responder_name) = match &data.responder_id {
            ResponderId::ByName(name) => (
                Responder::ByName(name.to_der().map_err(OcspError::Malformed)?),
                name.to_string(),
            ),
            ResponderId::ByKey(hash) => (
                Responder::ByKey(hash.as_bytes().to_vec()),
                format!("key {}", hex::encode(hash.as_bytes())),
            ),
        };
        let mut responses = Vec::with_capacity(data.responses.len());
        for single in &data.responses {
            let id = &single.cert_id;
            // A CertID hashed with an algorithm kyso does not know cannot match a certificate.
            let Some(hash) = DigestAlgorithm::from_oid(&id.hash_algorithm.oid) else {
                continue;
            };
            let state = match &single.cert_status {
                CertStatus::Good(_) => CertState::Good,
                CertStatus::Revoked(info) => CertState::Revoked {
                    at: generalized(&info.revocation_time.0),
                    reason: info.revocation_reason.map(|r| format!("{r:?}")),
                },
                CertStatus::Unknown(_) => CertState::Unknown,
            };
            responses.push(Single {
                hash,
                name_hash: id.issuer_name_hash.as_bytes().to_vec(),
                key_hash: id.issuer_key_hash.as_bytes().to_vec(),
                serial: strip_zeros(id.serial_number.as_bytes()).to_vec(),
                state,
                this_update: generalized(&single.this_update.0),
                next_update: single.next_update.map(|t| generalized(&t.0)),
            });
        }
        let nonce = data.response_extensions.as_ref().and_then(|exts| {
            exts.iter()
                .find(|e| e.extn_id == OCSP_NONCE)
                .map(|e| nonce_value(e.extn_value.as_bytes()))
        });
        let certs = basic
            .certs
            .iter()
            .flatten()
            .filter_map(|c| c.to_der().ok())
            .filter_map(|d| Certificate::from_der(&d).ok())
            .collect();
        let alg = &basic.signature_algorithm;
        Ok(OcspResponse {
            responder,
            responder_name,
            produced_at: generalized(&data.produced_at.0),
            tbs: Arc::new(tbs.to_vec()),
            signature_algorithm: AlgorithmIdentifier {
                oid: alg.oid,
                params: alg.parameters.as_ref().and_then(|p| p.to_der().ok()),
            },
            signature: Arc::new(basic.signature.raw_bytes().to_vec()),
            certs: Arc::new(certs),
            responses,
            nonce,
            sha256: openssl::sha::sha256(der),
            source,
            verified: Default::default(),
        })
    }

    /// The single response about `cert` (issued by `issuer`), if this response has one.
    pub fn single_for(&self, cert: &Certificate, issuer: &Certificate) -> Option<&Single> {
        self.responses.iter().find(|s| {
            s.serial == cert.serial
                && s.hash.digest(&issuer.subject_raw).ok().as_deref() == Some(&s.name_hash[..])
                && s.hash.digest(&issuer.public_key_raw).ok().as_deref() == Some(&s.key_hash[..])
        })
    }

    /// Checks that the response is signed by `issuer` or by a responder `issuer` delegated
    /// to (found among the response's certificates and `extra`). Returns who signed; checked
    /// once per issuer.
    pub fn signed_for(
        &self,
        issuer: &Certificate,
        extra: &[Certificate],
    ) -> Result<String, OcspError> {
        if let Some(known) = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&issuer.sha256).cloned())
        {
            return known;
        }
        let outcome = self.check_signer(issuer, extra);
        if let Ok(mut m) = self.verified.lock() {
            m.insert(issuer.sha256, outcome.clone());
        }
        outcome
    }

    fn check_signer(&self, issuer: &Certificate, extra: &[Certificate]) -> SignerCheck {
        if self.names(issuer) {
            self.verify_with(issuer)?;
            return Ok(format!("the issuer {}", issuer.names.subject));
        }
        let candidates = self.certs.iter().chain(extra).filter(|c| self.names(c));
        let mut why = OcspError::UnknownResponder {
            responder: self.responder_name.clone(),
            issuer: issuer.names.subject.clone(),
        };
        for delegate in candidates {
            match self.delegated(delegate, issuer) {
                Ok(()) => {
                    return Ok(format!(
                        "the delegated responder {}",
                        delegate.names.subject
                    ))
                }
                Err(e) => why = e,
            }
        }
        Err(why)
    }

    /// Whether the responder ID names `cert`.
    fn names(&self, cert: &Certificate) -> bool {
        match &self.responder {
            Responder::ByName(name) => *name == cert.subject_raw,
            Responder::ByKey(hash) => openssl::sha::sha1(&cert.public_key_raw)[..] == hash[..],
        }
    }

    fn delegated(&self, delegate: &Certificate, issuer: &Certificate) -> Result<(), OcspError> {
        let subject = delegate.names.subject.clone();
        if delegate.issuer_raw != issuer.subject_raw
            || !issuer
                .public_key()
                .is_some_and(|k| delegate.x509.verify(&k).unwrap_or(false))
        {
            return Err(OcspError::NotCertified {
                subject,
                issuer: issuer.names.subject.clone(),
            });
        }
        if !delegate.has_eku(OCSP_SIGNING) {
            return Err(OcspError::NotAuthorised { subject });
        }
        let at = self.produced_at.unix_timestamp();
        if at < delegate.not_before || at > delegate.not_after {
            return Err(OcspError::ResponderNotValid { subject });
        }
        self.verify_with(delegate)
    }

    fn verify_with(&self, signer: &Certificate) -> Result<(), OcspError> {
        let scheme = SignatureScheme::resolve(&self.signature_algorithm, DigestAlgorithm::Sha256)
            .ok_or_else(|| OcspError::Algorithm {
            oid: self.signature_algorithm.oid.to_string(),
        })?;
        let key = signer.public_key().ok_or(OcspError::ResponderKey)?;
        cms::verify_signature(scheme, &key, &[&self.tbs], &self.signature).map_err(|e| {
            OcspError::BadSignature {
                responder: self.responder_name.clone(),
                reason: e.to_string(),
            }
        })
    }
}

/// The DER of the first element of the SEQUENCE in `der`.
fn first_element(der: &[u8]) -> der::Result<&[u8]> {
    let mut r = SliceReader::new(der)?;
    let header = der::Header::decode(&mut r)?;
    let _ = header;
    r.tlv_bytes()
}

/// A nonce extension's value: an OCTET STRING wrapping the nonce (RFC 6960 §4.4.1); some
/// responders put the bare bytes.
fn nonce_value(value: &[u8]) -> Vec<u8> {
    OctetString::from_der(value)
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_else(|_| value.to_vec())
}

fn generalized(t: &der::asn1::GeneralizedTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == 0).count();
    &s[n.min(s.len().saturating_sub(1))..]
}

/// A DER `OCSPRequest` for `cert` (issued by `issuer`) with a SHA-1 CertID — the hash every
/// responder answers for (RFC 5019 §2.1.1) — and `nonce`.
pub fn request(
    cert: &Certificate,
    issuer: &Certificate,
    nonce: &[u8],
) -> Result<Vec<u8>, OcspError> {
    let err = OcspError::Request;
    let sha1 = |d: &[u8]| OctetString::new(openssl::sha::sha1(d).to_vec());
    let mut serial = cert.serial.clone();
    // A DER INTEGER whose top bit is set needs a leading zero to stay positive.
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    let cert_id = x509_ocsp::CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.3.14.3.2.26"),
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: sha1(&issuer.subject_raw).map_err(err)?,
        issuer_key_hash: sha1(&issuer.public_key_raw).map_err(err)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(&serial).map_err(err)?,
    };
    let nonce_ext = x509_cert::ext::Extension {
        extn_id: OCSP_NONCE,
        critical: false,
        extn_value: OctetString::new(
            OctetString::new(nonce.to_vec())
                .and_then(|o| o.to_der())
                .map_err(err)?,
        )
        .map_err(err)?,
    };
    x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![nonce_ext]),
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_named_error() {
        let e = OcspResponse::from_der(b"\x30\x03\x0a\x01\x03", Source::Signature)
            .expect_err("tryLater");
        assert_eq!(
            e,
            OcspError::NotSuccessful {
                status: "TryLater".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "the responder answered TryLater, not a status"
        );
        let e = OcspResponse::from_der(b"nonsense", Source::Signature).expect_err("garbage");
        assert!(matches!(e, OcspError::NotOcsp(_)), "{e:?}");
        assert!(e.to_string().starts_with("not an OCSP response ("), "{e}");
    }
}
