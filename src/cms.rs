//! CMS SignedData (RFC 5652) as PDF signatures use it: parsing, the signer's certificate, the
//! digest over the signed bytes, and the signature over the signed attributes.
//!
//! Parsing walks the structure with the `der` crate's reader and keeps every field as the
//! bytes it was received as. Two reasons against decoding into fully typed structures: the
//! signature covers the signed attributes *as encoded* (RFC 5652 §5.4), so they must not be
//! re-sorted or re-encoded; and a real-world certificate with a small DER slip must not make
//! the whole signature unreadable when OpenSSL and x509-parser accept it. BER input (some
//! older Acrobat versions write indefinite lengths) is converted to DER by OpenSSL first.
//!
//! Cryptography is OpenSSL's. This module does not judge certificates (that is `trust`) nor
//! turn outcomes into verdicts (that is `verify`).

use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use time::OffsetDateTime;

/// Deepest nesting of the CMS structure walked: the SignedData grammar nests about ten levels;
/// 32 leaves room for attribute values and stops crafted deep nesting.
pub const MAX_CMS_NESTING: usize = 32;
/// Most certificates taken from one SignedData: 64. A PAdES signature carries its chain (3–5)
/// and occasionally the TSA's; more is padding or an attack on path building.
pub const MAX_EMBEDDED_CERTS: usize = 64;

/// Object identifiers kyso needs, each with where it is defined.
pub mod oid {
    use der::asn1::ObjectIdentifier as Oid;
    /// RFC 5652 §5.1 id-signedData.
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    /// RFC 3161 §2.4.2 id-ct-TSTInfo.
    pub const TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
    /// RFC 5652 §11.1–11.3.
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    pub const SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
    /// RFC 2634 §5.4 and RFC 5035 §3.
    pub const SIGNING_CERTIFICATE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.12");
    pub const SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// RFC 3161 Appendix A id-aa-signatureTimeStampToken.
    pub const SIGNATURE_TIMESTAMP: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");
    /// ETSI EN 319 122-1 §5.2.8 id-aa-ets-contentTimestamp.
    pub const CONTENT_TIMESTAMP: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.20");
    /// ISO 32000-1 §12.8.3.3.2 adbe-revocationInfoArchival.
    pub const ADBE_REVOCATION: Oid = Oid::new_unwrap("1.2.840.113583.1.1.8");
}

/// Why a `/Contents` value is not a SignedData kyso can evaluate. Each is a FORMAT_FAILURE of
/// the signature, not an error of the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsError {
    /// The input is empty.
    #[error("/Contents is empty")]
    Empty,
    /// The input is not DER.
    #[error("/Contents is not DER or BER ASN.1: {0}")]
    NotAsn1(String),
    /// A structure does not decode.
    #[error("the CMS structure is malformed at {at}: {reason}")]
    Malformed {
        /// Which structure.
        at: &'static str,
        /// Why.
        reason: String,
    },
    /// The ContentInfo is not a SignedData.
    #[error("the content type is {found}, not signedData")]
    NotSignedData {
        /// Its content type.
        found: String,
    },
    /// The SignedData does not have exactly one signer.
    #[error("the SignedData has {count} SignerInfos; a PDF signature has exactly one")]
    SignerInfoCount {
        /// How many it has.
        count: usize,
    },
    /// The structure nests deeper than kyso reads.
    #[error("the CMS nests deeper than {MAX_CMS_NESTING} levels")]
    TooDeep,
}

/// An `AlgorithmIdentifier` (RFC 5280 §4.1.1.2) with its parameters as encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmIdentifier {
    pub oid: Oid,
    pub params: Option<Vec<u8>>,
}

/// `SignerIdentifier ::= CHOICE { issuerAndSerialNumber, subjectKeyIdentifier [0] }`
/// (RFC 5652 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
    SubjectKeyId(Vec<u8>),
}

/// One `Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF ANY }`, each
/// value kept as its full DER TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub oid: Oid,
    pub values: Vec<Vec<u8>>,
}

/// A SignerInfo (RFC 5652 §5.3):
///
/// ```text
/// SignerInfo ::= SEQUENCE {
///   version CMSVersion,
///   sid SignerIdentifier,
///   digestAlgorithm DigestAlgorithmIdentifier,
///   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
///   signatureAlgorithm SignatureAlgorithmIdentifier,
///   signature SignatureValue,
///   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
/// ```
#[derive(Debug, Clone)]
pub struct SignerInfo {
    pub sid: SignerId,
    pub digest_algorithm: AlgorithmIdentifier,
    /// The signed attributes as the signature covers them: the received `[0]` element with
    /// its tag replaced by the universal SET tag (RFC 5652 §5.4).
    pub signed_attrs_der: Option<Vec<u8>>,
    pub signed_attrs: Vec<Attribute>,
    pub signature_algorithm: AlgorithmIdentifier,
    pub signature: Vec<u8>,
    pub unsigned_attrs: Vec<Attribute>,
}

/// A SignedData (RFC 5652 §5.1):
///
/// ```text
/// SignedData ::= SEQUENCE {
///   version CMSVersion,
///   digestAlgorithms DigestAlgorithmIdentifiers,
///   encapContentInfo EncapsulatedContentInfo,
///   certificates [0] IMPLICIT CertificateSet OPTIONAL,
///   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///   signerInfos SignerInfos }
/// ```
#[derive(Debug, Clone)]
pub struct SignedData {
    pub econtent_type: Oid,
    /// `eContent`, when the content is encapsulated (not detached).
    pub econtent: Option<Vec<u8>>,
    /// DER of each `certificate` choice of the CertificateSet; other choices are skipped.
    pub certificates: Vec<Vec<u8>>,
    /// DER of each CRL of the RevocationInfoChoices.
    pub crls: Vec<Vec<u8>>,
    /// OCSP responses of the `crls` field's `other` choice (RFC 5940 §4.1).
    pub ocsp: Vec<Vec<u8>>,
    pub signer: SignerInfo,
}

/// A digest algorithm kyso can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DigestAlgorithm {
    /// MD5 (broken).
    Md5,
    /// SHA-1 (weak).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
    /// SHAKE256 with a 512-bit output, as RFC 8419 §2.3 fixes it for Ed448.
    Shake256,
}

impl DigestAlgorithm {
    pub(crate) fn from_oid(oid: &Oid) -> Option<Self> {
        Some(match oid.to_string().as_str() {
            "1.2.840.113549.2.5" => Self::Md5,
            "1.3.14.3.2.26" => Self::Sha1,
            "2.16.840.1.101.3.4.2.4" => Self::Sha224,
            "2.16.840.1.101.3.4.2.1" => Self::Sha256,
            "2.16.840.1.101.3.4.2.2" => Self::Sha384,
            "2.16.840.1.101.3.4.2.3" => Self::Sha512,
            "2.16.840.1.101.3.4.2.7" => Self::Sha3_224,
            "2.16.840.1.101.3.4.2.8" => Self::Sha3_256,
            "2.16.840.1.101.3.4.2.9" => Self::Sha3_384,
            "2.16.840.1.101.3.4.2.10" => Self::Sha3_512,
            "2.16.840.1.101.3.4.2.12" => Self::Shake256,
            _ => return None,
        })
    }

    pub(crate) fn message_digest(self) -> MessageDigest {
        match self {
            Self::Md5 => MessageDigest::md5(),
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha224 => MessageDigest::sha224(),
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
            Self::Sha3_224 => MessageDigest::sha3_224(),
            Self::Sha3_256 => MessageDigest::sha3_256(),
            Self::Sha3_384 => MessageDigest::sha3_384(),
            Self::Sha3_512 => MessageDigest::sha3_512(),
            Self::Shake256 => MessageDigest::shake_256(),
        }
    }

    /// The algorithm's name, e.g. `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA-1",
            Self::Sha224 => "SHA-224",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Sha3_224 => "SHA3-224",
            Self::Sha3_256 => "SHA3-256",
            Self::Sha3_384 => "SHA3-384",
            Self::Sha3_512 => "SHA3-512",
            Self::Shake256 => "SHAKE256",
        }
    }

    /// A fresh hasher. OpenSSL's `Hasher` is `Clone`, which `verify` uses to hash the prefix
    /// that several signatures share only once.
    pub(crate) fn hasher(self) -> Result<Hasher, openssl::error::ErrorStack> {
        Hasher::new(self.message_digest())
    }

    /// Finishes `hasher`, reading 64 bytes from SHAKE256 (RFC 8419 §2.3).
    pub fn finish(self, hasher: &mut Hasher) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        if self == Self::Shake256 {
            let mut out = vec![0; 64];
            hasher.finish_xof(&mut out)?;
            Ok(out)
        } else {
            Ok(hasher.finish()?.to_vec())
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut h = self.hasher()?;
        h.update(data)?;
        self.finish(&mut h)
    }
}

/// What `oid` names when it is known to be no signature algorithm at all: the arcs of
/// elliptic curves (ANSI X9.62 §I.3, SECG SEC 2, RFC 5639 Brainpool), of hash algorithms
/// (NIST CSOR hashAlgs) and of PKCS#7/CMS content types and PKCS#9 attributes.
pub fn not_a_signature_algorithm(oid: &str) -> Option<&'static str> {
    const ARCS: &[(&str, &str)] = &[
        ("1.2.840.10045.3.", "an elliptic curve"),
        ("1.3.132.0.", "an elliptic curve"),
        ("1.3.36.3.3.2.8.1.", "an elliptic curve"),
        ("2.16.840.1.101.3.4.2.", "a hash algorithm"),
        ("1.2.840.113549.2.", "a hash algorithm"),
        ("1.2.840.113549.1.7.", "a content type"),
        ("1.2.840.113549.1.9.", "an attribute"),
    ];
    ARCS.iter()
        .find(|(arc, _)| oid.starts_with(arc))
        .map(|(_, what)| *what)
}

/// How a signature value is checked: the scheme and the hash it is computed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureScheme {
    RsaPkcs1(DigestAlgorithm),
    RsaPss {
        digest: DigestAlgorithm,
        mgf1: DigestAlgorithm,
        salt_len: u32,
    },
    Ecdsa(DigestAlgorithm),
    /// BSI TR-03111 plain ECDSA: the value is `r || s`, not a DER `ECDSA-Sig-Value`.
    EcdsaPlain(DigestAlgorithm),
    Ed25519,
    Ed448,
}

impl SignatureScheme {
    /// Resolves the `signatureAlgorithm` of a SignerInfo. Where it names only the key type
    /// (`rsaEncryption`, `id-ecPublicKey`), the hash is the SignerInfo's `digestAlgorithm`
    /// (RFC 5652 §5.4, RFC 5754 §3).
    pub fn resolve(sig: &AlgorithmIdentifier, digest: DigestAlgorithm) -> Option<Self> {
        use DigestAlgorithm as D;
        Some(match sig.oid.to_string().as_str() {
            "1.2.840.113549.1.1.1" => Self::RsaPkcs1(digest),
            "1.2.840.113549.1.1.4" => Self::RsaPkcs1(D::Md5),
            "1.2.840.113549.1.1.5" => Self::RsaPkcs1(D::Sha1),
            "1.2.840.113549.1.1.14" => Self::RsaPkcs1(D::Sha224),
            "1.2.840.113549.1.1.11" => Self::RsaPkcs1(D::Sha256),
            "1.2.840.113549.1.1.12" => Self::RsaPkcs1(D::Sha384),
            "1.2.840.113549.1.1.13" => Self::RsaPkcs1(D::Sha512),
            "1.2.840.113549.1.1.10" => return pss_params(sig.params.as_deref()),
            "1.2.840.10045.2.1" => Self::Ecdsa(digest),
            "1.2.840.10045.4.1" => Self::Ecdsa(D::Sha1),
            "1.2.840.10045.4.3.1" => Self::Ecdsa(D::Sha224),
            "1.2.840.10045.4.3.2" => Self::Ecdsa(D::Sha256),
            "1.2.840.10045.4.3.3" => Self::Ecdsa(D::Sha384),
            "1.2.840.10045.4.3.4" => Self::Ecdsa(D::Sha512),
            // NIST CSOR sigAlgs: id-ecdsa-with-sha3-* and id-rsassa-pkcs1-v1_5-with-sha3-*
            // (RFC 8702 names them for CMS and X.509).
            "2.16.840.1.101.3.4.3.9" => Self::Ecdsa(D::Sha3_224),
            "2.16.840.1.101.3.4.3.10" => Self::Ecdsa(D::Sha3_256),
            "2.16.840.1.101.3.4.3.11" => Self::Ecdsa(D::Sha3_384),
            "2.16.840.1.101.3.4.3.12" => Self::Ecdsa(D::Sha3_512),
            "2.16.840.1.101.3.4.3.13" => Self::RsaPkcs1(D::Sha3_224),
            "2.16.840.1.101.3.4.3.14" => Self::RsaPkcs1(D::Sha3_256),
            "2.16.840.1.101.3.4.3.15" => Self::RsaPkcs1(D::Sha3_384),
            "2.16.840.1.101.3.4.3.16" => Self::RsaPkcs1(D::Sha3_512),
            "0.4.0.127.0.7.1.1.4.1.1" => Self::EcdsaPlain(D::Sha1),
            "0.4.0.127.0.7.1.1.4.1.2" => Self::EcdsaPlain(D::Sha224),
            "0.4.0.127.0.7.1.1.4.1.3" => Self::EcdsaPlain(D::Sha256),
            "0.4.0.127.0.7.1.1.4.1.4" => Self::EcdsaPlain(D::Sha384),
            "0.4.0.127.0.7.1.1.4.1.5" => Self::EcdsaPlain(D::Sha512),
            "1.3.101.112" => Self::Ed25519,
            "1.3.101.113" => Self::Ed448,
            _ => return None,
        })
    }

    /// The hash the scheme computes over the signed attributes, if it hashes (EdDSA is pure).
    pub fn digest(self) -> Option<DigestAlgorithm> {
        match self {
            Self::RsaPkcs1(d) | Self::Ecdsa(d) | Self::EcdsaPlain(d) => Some(d),
            Self::RsaPss { digest, .. } => Some(digest),
            Self::Ed25519 | Self::Ed448 => None,
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::RsaPkcs1(d) => format!("RSA PKCS#1 v1.5 with {}", d.name()),
            Self::RsaPss { digest, .. } => format!("RSA-PSS with {}", digest.name()),
            Self::Ecdsa(d) => format!("ECDSA with {}", d.name()),
            Self::EcdsaPlain(d) => format!("plain ECDSA with {}", d.name()),
            Self::Ed25519 => "Ed25519".into(),
            Self::Ed448 => "Ed448".into(),
        }
    }
}

/// `RSASSA-PSS-params` (RFC 4055 §3.1):
///
/// ```text
/// RSASSA-PSS-params ::= SEQUENCE {
///   hashAlgorithm      [0] HashAlgorithm DEFAULT sha1,
///   maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
///   saltLength         [2] INTEGER DEFAULT 20,
///   trailerField       [3] TrailerField DEFAULT trailerFieldBC }
/// ```
fn pss_params(params: Option<&[u8]>) -> Option<SignatureScheme> {
    let mut digest = DigestAlgorithm::Sha1;
    let mut mgf1 = DigestAlgorithm::Sha1;
    let mut salt_len = 20u32;
    if let Some(params) = params {
        let mut outer = SliceReader::new(params).ok()?;
        let seq = der::asn1::AnyRef::decode(&mut outer).ok()?;
        let mut r = SliceReader::new(seq.value()).ok()?;
        while !r.is_finished() {
            let any = der::asn1::AnyRef::decode(&mut r).ok()?;
            let mut inner = SliceReader::new(any.value()).ok()?;
            match any.tag() {
                Tag::ContextSpecific { number, .. } if number == TagNumber::N0 => {
                    digest = DigestAlgorithm::from_oid(&read_algorithm(&mut inner).ok()?.oid)?;
                }
                Tag::ContextSpecific { number, .. } if number == TagNumber::N1 => {
                    let mgf = read_algorithm(&mut inner).ok()?;
                    // id-mgf1 (RFC 4055 §2.2) with its hash as parameter.
                    if mgf.oid.to_string() != "1.2.840.113549.1.1.8" {
                        return None;
                    }
                    let mut p = SliceReader::new(mgf.params.as_deref()?).ok()?;
                    mgf1 = DigestAlgorithm::from_oid(&read_algorithm(&mut p).ok()?.oid)?;
                }
                Tag::ContextSpecific { number, .. } if number == TagNumber::N2 => {
                    salt_len = u32::decode(&mut inner).ok()?;
                }
                _ => {}
            }
        }
    }
    Some(SignatureScheme::RsaPss {
        digest,
        mgf1,
        salt_len,
    })
}

/// Parses `/Contents`: a ContentInfo holding SignedData, possibly followed by zero padding.
pub fn parse_signed_data(contents: &[u8]) -> Result<SignedData, CmsError> {
    if contents.iter().all(|b| *b == 0) {
        return Err(CmsError::Empty);
    }
    let der = match tlv_prefix(contents) {
        Some(tlv) => tlv.to_vec(),
        // Not definite-length DER: let OpenSSL read it as BER and write it back as DER. Its
        // PKCS#7 reader knows only PKCS#7's content types; a timestamp token (eContentType
        // id-ct-TSTInfo) written with indefinite lengths needs its CMS reader.
        None => openssl::pkcs7::Pkcs7::from_der(contents)
            .and_then(|p| p.to_der())
            .or_else(|_| openssl::cms::CmsContentInfo::from_der(contents).and_then(|c| c.to_der()))
            .map_err(|e| CmsError::NotAsn1(first_openssl_reason(&e)))?,
    };
    check_depth(&der)?;
    let at = |at: &'static str| {
        move |e: der::Error| CmsError::Malformed {
            at,
            reason: e.to_string(),
        }
    };
    let mut r = SliceReader::new(&der).map_err(at("ContentInfo"))?;
    let (content_type, signed_data) = r
        .sequence(|r| {
            let ct = Oid::decode(r)?;
            let content = r.tlv_bytes()?;
            Ok((ct, content.to_vec()))
        })
        .map_err(at("ContentInfo"))?;
    if content_type != oid::SIGNED_DATA {
        return Err(CmsError::NotSignedData {
            found: content_type.to_string(),
        });
    }
    // content [0] EXPLICIT ANY
    let explicit = der::asn1::AnyRef::from_der(&signed_data).map_err(at("ContentInfo.content"))?;
    let mut r = SliceReader::new(explicit.value()).map_err(at("SignedData"))?;
    let sd = r
        .sequence(|r| {
            let _version = der::asn1::AnyRef::decode(r)?;
            let _digest_algorithms = der::asn1::AnyRef::decode(r)?;
            let (econtent_type, econtent) = r.sequence(|r| {
                let ct = Oid::decode(r)?;
                let mut content = None;
                if !r.is_finished() {
                    let explicit = der::asn1::AnyRef::decode(r)?;
                    let octets = der::asn1::AnyRef::from_der(explicit.value())?;
                    content = Some(octets.value().to_vec());
                }
                Ok((ct, content))
            })?;
            let mut certificates = Vec::new();
            let mut crls = Vec::new();
            let mut ocsp = Vec::new();
            let mut signer_infos = Vec::new();
            while !r.is_finished() {
                let header = r.peek_header()?;
                match header.tag {
                    Tag::ContextSpecific { number, .. } if number == TagNumber::N0 => {
                        let set = der::asn1::AnyRef::decode(r)?;
                        let mut inner = SliceReader::new(set.value())?;
                        while !inner.is_finished() {
                            let tlv = inner.tlv_bytes()?;
                            // Only the plain `certificate` choice (a SEQUENCE) is a certificate.
                            if tlv.first() == Some(&0x30) && certificates.len() < MAX_EMBEDDED_CERTS
                            {
                                certificates.push(tlv.to_vec());
                            }
                        }
                    }
                    Tag::ContextSpecific { number, .. } if number == TagNumber::N1 => {
                        let set = der::asn1::AnyRef::decode(r)?;
                        let mut inner = SliceReader::new(set.value())?;
                        while !inner.is_finished() {
                            let tlv = inner.tlv_bytes()?;
                            if tlv.first() == Some(&0x30) {
                                crls.push(tlv.to_vec());
                            } else if tlv.first() == Some(&0xA1) {
                                // other [1] OtherRevocationInfoFormat (RFC 5652 §10.2.1):
                                // id-ri-ocsp-response carries an OCSPResponse (RFC 5940).
                                if let Some(response) = other_ocsp_response(tlv) {
                                    ocsp.push(response);
                                }
                            }
                        }
                    }
                    Tag::Set => {
                        let set = der::asn1::AnyRef::decode(r)?;
                        let mut inner = SliceReader::new(set.value())?;
                        while !inner.is_finished() {
                            signer_infos.push(inner.tlv_bytes()?.to_vec());
                        }
                    }
                    _ => {
                        r.tlv_bytes()?;
                    }
                }
            }
            Ok((
                econtent_type,
                econtent,
                certificates,
                crls,
                ocsp,
                signer_infos,
            ))
        })
        .map_err(at("SignedData"))?;
    let (econtent_type, econtent, certificates, crls, ocsp, signer_infos) = sd;
    if signer_infos.len() != 1 {
        return Err(CmsError::SignerInfoCount {
            count: signer_infos.len(),
        });
    }
    let signer = parse_signer_info(&signer_infos[0])?;
    Ok(SignedData {
        econtent_type,
        econtent,
        certificates,
        crls,
        ocsp,
        signer,
    })
}

fn parse_signer_info(tlv: &[u8]) -> Result<SignerInfo, CmsError> {
    let at = |e: der::Error| CmsError::Malformed {
        at: "SignerInfo",
        reason: e.to_string(),
    };
    let mut r = SliceReader::new(tlv).map_err(at)?;
    r.sequence(|r| {
        let _version = der::asn1::AnyRef::decode(r)?;
        let sid_tlv = r.tlv_bytes()?;
        let sid_any = der::asn1::AnyRef::from_der(sid_tlv)?;
        let sid = match sid_any.tag() {
            Tag::Sequence => {
                let mut s = SliceReader::new(sid_any.value())?;
                let issuer = s.tlv_bytes()?.to_vec();
                let serial = der::asn1::AnyRef::decode(&mut s)?.value().to_vec();
                SignerId::IssuerSerial { issuer, serial }
            }
            _ => SignerId::SubjectKeyId(sid_any.value().to_vec()),
        };
        let digest_algorithm = read_algorithm(r)?;
        let mut signed_attrs_der = None;
        let mut signed_attrs = Vec::new();
        if matches!(r.peek_header()?.tag, Tag::ContextSpecific { number, .. } if number == TagNumber::N0)
        {
            let raw = r.tlv_bytes()?;
            let any = der::asn1::AnyRef::from_der(raw)?;
            signed_attrs = parse_attributes(any.value())?;
            let mut as_set = raw.to_vec();
            as_set[0] = 0x31; // [0] IMPLICIT → SET OF, RFC 5652 §5.4
            signed_attrs_der = Some(as_set);
        }
        let signature_algorithm = read_algorithm(r)?;
        let signature = der::asn1::OctetStringRef::decode(r)?.as_bytes().to_vec();
        let mut unsigned_attrs = Vec::new();
        if !r.is_finished() {
            let any = der::asn1::AnyRef::decode(r)?;
            unsigned_attrs = parse_attributes(any.value())?;
        }
        Ok(SignerInfo {
            sid,
            digest_algorithm,
            signed_attrs_der,
            signed_attrs,
            signature_algorithm,
            signature,
            unsigned_attrs,
        })
    })
    .map_err(at)
}

fn parse_attributes(body: &[u8]) -> der::Result<Vec<Attribute>> {
    let mut r = SliceReader::new(body)?;
    let mut out = Vec::new();
    while !r.is_finished() {
        out.push(r.sequence(|r| {
            let oid = Oid::decode(r)?;
            let set = der::asn1::AnyRef::decode(r)?;
            let mut v = SliceReader::new(set.value())?;
            let mut values = Vec::new();
            while !v.is_finished() {
                values.push(v.tlv_bytes()?.to_vec());
            }
            Ok(Attribute { oid, values })
        })?);
    }
    Ok(out)
}

fn read_algorithm<'a>(r: &mut impl Reader<'a>) -> der::Result<AlgorithmIdentifier> {
    r.sequence(|r| {
        let oid = Oid::decode(r)?;
        let params = if r.is_finished() {
            None
        } else {
            Some(r.tlv_bytes()?.to_vec())
        };
        Ok(AlgorithmIdentifier { oid, params })
    })
}

/// The definite-length TLV at the start of `bytes`, without the padding after it.
fn tlv_prefix(bytes: &[u8]) -> Option<&[u8]> {
    let mut r = SliceReader::new(bytes).ok()?;
    let header = Header::decode(&mut r).ok()?;
    let header_len = usize::try_from(r.position()).ok()?;
    let len = usize::try_from(header.length).ok()?;
    bytes.get(..header_len.checked_add(len)?)
}

/// Rejects nesting deeper than [`MAX_CMS_NESTING`] before anything recursive runs over it.
fn check_depth(der: &[u8]) -> Result<(), CmsError> {
    fn walk(bytes: &[u8], depth: usize) -> Result<(), CmsError> {
        if depth > MAX_CMS_NESTING {
            return Err(CmsError::TooDeep);
        }
        let Ok(mut r) = SliceReader::new(bytes) else {
            return Ok(());
        };
        while !r.is_finished() {
            let Ok(any) = der::asn1::AnyRef::decode(&mut r) else {
                return Ok(()); // the typed walk reports the malformation itself
            };
            if any.tag().is_constructed() {
                walk(any.value(), depth + 1)?;
            }
        }
        Ok(())
    }
    walk(der, 0)
}

impl SignerInfo {
    pub fn signed_attr(&self, oid: &Oid) -> Option<&Attribute> {
        self.signed_attrs.iter().find(|a| &a.oid == oid)
    }

    pub fn unsigned_attr(&self, oid: &Oid) -> Option<&Attribute> {
        self.unsigned_attrs.iter().find(|a| &a.oid == oid)
    }

    /// The `messageDigest` signed attribute (RFC 5652 §11.2).
    pub fn message_digest(&self) -> Option<Vec<u8>> {
        let value = self.signed_attr(&oid::MESSAGE_DIGEST)?.values.first()?;
        der::asn1::OctetStringRef::from_der(value)
            .ok()
            .map(|o| o.as_bytes().to_vec())
    }

    /// The CRLs and OCSP responses of the `adbe-revocationInfoArchival` signed attribute (ISO 32000-1
    /// §12.8.3.3.2):
    ///
    /// ```text
    /// RevocationInfoArchival ::= SEQUENCE {
    ///   crl [0] EXPLICIT SEQUENCE of CRLs OPTIONAL,
    ///   ocsp [1] EXPLICIT SEQUENCE of OCSP Responses OPTIONAL,
    ///   otherRevInfo [2] EXPLICIT SEQUENCE of OtherRevInfo OPTIONAL }
    /// ```
    /// Returns the CRLs and the OCSP responses, DER, in that order.
    pub fn adbe_revocation(&self) -> RevocationValues {
        let Some(value) = self
            .signed_attr(&oid::ADBE_REVOCATION)
            .and_then(|a| a.values.first())
        else {
            return Default::default();
        };
        let read = || -> der::Result<RevocationValues> {
            let (mut crls, mut ocsp) = (Vec::new(), Vec::new());
            let mut r = SliceReader::new(value)?;
            r.sequence(|r| {
                while !r.is_finished() {
                    let field = der::asn1::AnyRef::decode(r)?;
                    let out = match field.tag() {
                        Tag::ContextSpecific { number, .. } if number == TagNumber::N0 => &mut crls,
                        Tag::ContextSpecific { number, .. } if number == TagNumber::N1 => &mut ocsp,
                        _ => continue,
                    };
                    let seq = der::asn1::AnyRef::from_der(field.value())?;
                    let mut items = SliceReader::new(seq.value())?;
                    while !items.is_finished() {
                        out.push(items.tlv_bytes()?.to_vec());
                    }
                }
                Ok(())
            })?;
            Ok((crls, ocsp))
        };
        read().unwrap_or_default()
    }

    /// The `content-type` signed attribute (RFC 5652 §11.1).
    pub fn content_type(&self) -> Option<Oid> {
        let value = self.signed_attr(&oid::CONTENT_TYPE)?.values.first()?;
        Oid::from_der(value).ok()
    }

    /// The `signingTime` signed attribute (RFC 5652 §11.3): UTCTime or GeneralizedTime.
    pub fn signing_time(&self) -> Option<OffsetDateTime> {
        let value = self.signed_attr(&oid::SIGNING_TIME)?.values.first()?;
        parse_time(value)
    }
}

/// DER CRLs and DER OCSP responses.
pub type RevocationValues = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The OCSPResponse inside an `other [1] OtherRevocationInfoFormat` of a SignedData's `crls`
/// field, when its format is id-ri-ocsp-response.
fn other_ocsp_response(tlv: &[u8]) -> Option<Vec<u8>> {
    let any = der::asn1::AnyRef::from_der(tlv).ok()?;
    let mut r = SliceReader::new(any.value()).ok()?;
    let format = Oid::decode(&mut r).ok()?;
    (format == Oid::new_unwrap("1.3.6.1.5.5.7.16.2"))
        .then(|| r.tlv_bytes().ok().map(<[u8]>::to_vec))
        .flatten()
}

/// Parses a `Time` (UTCTime or GeneralizedTime). GeneralizedTime may carry fractional
/// seconds (RFC 3161 §2.4.2 allows them in `genTime`, and TSAs use them), which the `der`
/// crate's strict type refuses; they are read and dropped here.
pub fn parse_time(tlv: &[u8]) -> Option<OffsetDateTime> {
    match tlv.first()? {
        0x17 => {
            let t = der::asn1::UtcTime::from_der(tlv).ok()?.to_unix_duration();
            OffsetDateTime::from_unix_timestamp(i64::try_from(t.as_secs()).ok()?).ok()
        }
        0x18 => {
            let any = der::asn1::AnyRef::from_der(tlv).ok()?;
            parse_generalized_time(std::str::from_utf8(any.value()).ok()?)
        }
        _ => None,
    }
}

/// `YYYYMMDDHHMMSS[.f*]Z` (X.680 §46 as profiled by RFC 5280 §4.1.2.5.2 and RFC 3161).
fn parse_generalized_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.strip_suffix('Z')?;
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<u16>().ok();
    let date = time::Date::from_calendar_date(
        i32::from(n(0..4)?),
        time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// How the ESS signing-certificate attribute binds the signer (RFC 5035, ETSI EN 319 122-1
/// §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EssBinding {
    /// The first ESSCertID's hash matches the signer's certificate.
    Matches,
    /// Neither attribute is present.
    Absent,
    /// An attribute is present but names another certificate.
    Mismatch,
    /// An attribute is present but cannot be read, or uses an unknown hash.
    Unreadable,
}

/// Checks signing-certificate-v2 (or v1) against the signer's certificate DER.
///
/// ```text
/// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies … OPTIONAL }
/// ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier DEFAULT {id-sha256},
///                            certHash OCTET STRING, issuerSerial IssuerSerial OPTIONAL }
/// SigningCertificate ::= SEQUENCE { certs SEQUENCE OF ESSCertID, policies … OPTIONAL }
/// ESSCertID ::= SEQUENCE { certHash OCTET STRING (SHA-1), issuerSerial IssuerSerial OPTIONAL }
/// ```
pub fn ess_binding(signer: &SignerInfo, cert_der: &[u8]) -> EssBinding {
    let (attr, v2) = match signer.signed_attr(&oid::SIGNING_CERTIFICATE_V2) {
        Some(a) => (a, true),
        None => match signer.signed_attr(&oid::SIGNING_CERTIFICATE) {
            Some(a) => (a, false),
            None => return EssBinding::Absent,
        },
    };
    let first_cert_id = || -> der::Result<(DigestAlgorithm, Vec<u8>)> {
        let value = attr
            .values
            .first()
            .ok_or(der::Error::from(der::ErrorKind::Failed))?;
        let mut r = SliceReader::new(value)?;
        r.sequence(|r| {
            let id = r.sequence(|certs| {
                let first = der::asn1::AnyRef::decode(certs)?;
                while !certs.is_finished() {
                    certs.tlv_bytes()?;
                }
                Ok(first)
            })?;
            while !r.is_finished() {
                r.tlv_bytes()?; // policies
            }
            let mut c = SliceReader::new(id.value())?;
            let mut alg = if v2 {
                DigestAlgorithm::Sha256
            } else {
                DigestAlgorithm::Sha1
            };
            if v2 && c.peek_header()?.tag == Tag::Sequence {
                let a = read_algorithm(&mut c)?;
                alg = DigestAlgorithm::from_oid(&a.oid)
                    .ok_or(der::Error::from(der::ErrorKind::OidUnknown { oid: a.oid }))?;
            }
            let hash = der::asn1::OctetStringRef::decode(&mut c)?
                .as_bytes()
                .to_vec();
            Ok((alg, hash))
        })
    };
    match first_cert_id() {
        Ok((alg, hash)) => match alg.digest(cert_der) {
            Ok(h) if h == hash => EssBinding::Matches,
            Ok(_) => EssBinding::Mismatch,
            Err(_) => EssBinding::Unreadable,
        },
        Err(_) => EssBinding::Unreadable,
    }
}

/// Why a signature value did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureCheckError {
    /// The signature does not verify with the key.
    #[error("the signature value does not verify with the signer's public key")]
    Mismatch,
    /// The signature algorithm is not supported.
    #[error("the signature algorithm {oid} is not supported")]
    UnsupportedAlgorithm {
        /// Its OID.
        oid: String,
    },
    /// The key is not of the kind the algorithm needs.
    #[error("the signer's public key ({key}) does not fit the signature algorithm ({scheme})")]
    KeyMismatch {
        /// The key's kind.
        key: String,
        /// The algorithm.
        scheme: String,
    },
    /// The signature value does not decode.
    #[error("the signature value is malformed: {0}")]
    Malformed(String),
}

/// Verifies `signature` over the message made of `parts` (in order) with `key` under
/// `scheme`. The parts are fed to the verifier one by one, so a signature over a PDF's two
/// byte ranges is checked without copying them together; only EdDSA, which hashes the
/// message twice (RFC 8032 §5.1.6), needs it in one piece.
pub fn verify_signature(
    scheme: SignatureScheme,
    key: &PKey<Public>,
    parts: &[&[u8]],
    signature: &[u8],
) -> Result<(), SignatureCheckError> {
    let key_name = format!("{:?}", key.id());
    let mismatch = || SignatureCheckError::KeyMismatch {
        key: key_name.clone(),
        scheme: scheme.name(),
    };
    let ssl =
        |e: openssl::error::ErrorStack| SignatureCheckError::Malformed(first_openssl_reason(&e));
    let ok = match scheme {
        SignatureScheme::RsaPkcs1(d) => {
            if key.id() != Id::RSA {
                return Err(mismatch());
            }
            let mut v = Verifier::new(d.message_digest(), key).map_err(ssl)?;
            v.set_rsa_padding(Padding::PKCS1).map_err(ssl)?;
            for part in parts {
                v.update(part).map_err(ssl)?;
            }
            v.verify(signature).unwrap_or(false)
        }
        SignatureScheme::RsaPss {
            digest,
            mgf1,
            salt_len,
        } => {
            if key.id() != Id::RSA && key.id() != Id::RSA_PSS {
                return Err(mismatch());
            }
            let mut v = Verifier::new(digest.message_digest(), key).map_err(ssl)?;
            v.set_rsa_padding(Padding::PKCS1_PSS).map_err(ssl)?;
            v.set_rsa_mgf1_md(mgf1.message_digest()).map_err(ssl)?;
            let salt = i32::try_from(salt_len)
                .map_err(|_| SignatureCheckError::Malformed("salt length".into()))?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))
                .map_err(ssl)?;
            for part in parts {
                v.update(part).map_err(ssl)?;
            }
            v.verify(signature).unwrap_or(false)
        }
        SignatureScheme::Ecdsa(d) | SignatureScheme::EcdsaPlain(d) => {
            if key.id() != Id::EC {
                return Err(mismatch());
            }
            let der_sig;
            let sig = if let SignatureScheme::EcdsaPlain(_) = scheme {
                if signature.is_empty() || signature.len() % 2 != 0 {
                    return Err(SignatureCheckError::Malformed(
                        "odd plain ECDSA length".into(),
                    ));
                }
                let (r, s) = signature.split_at(signature.len() / 2);
                let r = BigNum::from_slice(r).map_err(ssl)?;
                let s = BigNum::from_slice(s).map_err(ssl)?;
                der_sig = EcdsaSig::from_private_components(r, s)
                    .and_then(|sig| sig.to_der())
                    .map_err(ssl)?;
                &der_sig[..]
            } else {
                signature
            };
            let mut v = Verifier::new(d.message_digest(), key).map_err(ssl)?;
            for part in parts {
                v.update(part).map_err(ssl)?;
            }
            v.verify(sig).unwrap_or(false)
        }
        SignatureScheme::Ed25519 | SignatureScheme::Ed448 => {
            let want = if scheme == SignatureScheme::Ed25519 {
                Id::ED25519
            } else {
                Id::ED448
            };
            if key.id() != want {
                return Err(mismatch());
            }
            let mut v = Verifier::new_without_digest(key).map_err(ssl)?;
            v.verify_oneshot(signature, &parts.concat())
                .unwrap_or(false)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(SignatureCheckError::Mismatch)
    }
}

/// The reason string of the first error on an OpenSSL error stack, for messages.
pub fn first_openssl_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason().map(str::to_owned))
        .unwrap_or_else(|| e.to_string())
}

/// An RFC 3161 TSTInfo (§2.4.2), the parts kyso reads:
///
/// ```text
/// TSTInfo ::= SEQUENCE {
///   version INTEGER { v1(1) }, policy TSAPolicyId, messageImprint MessageImprint,
///   serialNumber INTEGER, genTime GeneralizedTime, accuracy Accuracy OPTIONAL, … }
/// MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
/// ```
#[derive(Debug, Clone)]
pub struct TstInfo {
    pub imprint_algorithm: AlgorithmIdentifier,
    pub imprint: Vec<u8>,
    pub gen_time: OffsetDateTime,
}

pub fn parse_tst_info(der_bytes: &[u8]) -> Result<TstInfo, CmsError> {
    let at = |e: der::Error| CmsError::Malformed {
        at: "TSTInfo",
        reason: e.to_string(),
    };
    let mut r = SliceReader::new(der_bytes).map_err(at)?;
    r.sequence(|r| {
        let _version = der::asn1::AnyRef::decode(r)?;
        let _policy = Oid::decode(r)?;
        let (imprint_algorithm, imprint) = r.sequence(|r| {
            let alg = read_algorithm(r)?;
            let h = der::asn1::OctetStringRef::decode(r)?.as_bytes().to_vec();
            Ok((alg, h))
        })?;
        let _serial = der::asn1::AnyRef::decode(r)?;
        let gen_tlv = r.tlv_bytes()?;
        let gen_time = parse_time(gen_tlv).ok_or(der::Error::from(der::ErrorKind::DateTime))?;
        while !r.is_finished() {
            r.tlv_bytes()?;
        }
        Ok(TstInfo {
            imprint_algorithm,
            imprint,
            gen_time,
        })
    })
    .map_err(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_named_error() {
        assert_eq!(
            parse_signed_data(&[0, 0, 0]).expect_err("zeros"),
            CmsError::Empty
        );
        assert!(matches!(
            parse_signed_data(b"\x30\x03\x02\x01"),
            Err(CmsError::NotAsn1(_))
        ));
        // A SEQUENCE holding an INTEGER is ASN.1 but not a ContentInfo.
        assert!(matches!(
            parse_signed_data(b"\x30\x03\x02\x01\x05"),
            Err(CmsError::Malformed { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut der = vec![0x05, 0x00];
        for _ in 0..40 {
            let mut outer = vec![0x30, u8::try_from(der.len()).unwrap_or(0)];
            if der.len() > 127 {
                break;
            }
            outer.extend_from_slice(&der);
            der = outer;
        }
        assert_eq!(check_depth(&der), Err(CmsError::TooDeep));
    }

    #[test]
    fn generalized_time_with_fraction() {
        let t = parse_time(b"\x18\x13" as &[u8]).is_none();
        assert!(t);
        let tlv = b"\x18\x1320160331144957.123Z";
        let parsed = parse_time(tlv).expect("time");
        assert_eq!(parsed.unix_timestamp(), 1_459_435_797);
    }

    #[test]
    fn digest_names_and_shake_length() {
        let d = DigestAlgorithm::Shake256.digest(b"abc").expect("digest");
        assert_eq!(d.len(), 64);
        assert_eq!(DigestAlgorithm::Sha256.digest(b"abc").expect("d").len(), 32);
    }
}
