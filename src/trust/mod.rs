//! Trust anchors, the intermediate pool, and certificate path building and validation at a
//! given time (RFC 5280 §6).
//!
//! Anchors and intermediates come from files or folders the operator names (PEM or DER);
//! trust is configuration, never code. Path building is our own, not OpenSSL's
//! `X509_verify_cert`, for three reasons: kyso must try *every* candidate path (OpenSSL
//! stops at the first failure except in narrow cases), it must say which check decided in
//! ETSI terms (expired, not a CA, untrusted), and the work must be bounded by a budget an
//! attacker cannot grow. Signatures on certificates are checked with OpenSSL; fields are read
//! with x509-parser. Revocation is not this module's: see DESIGN.md (`revocation`).

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ::time::OffsetDateTime;
use lru::LruCache;
use openssl::pkey::{PKey, Public};
use openssl::x509::X509;
use x509_parser::prelude::*;

/// Longest path tried, anchor included: 8. Real hierarchies have 3 (BCY: root → sub-CA →
/// end entity); a longer chain is a loop in cross-certificates or an attack.
pub const MAX_PATH_LEN: usize = 8;
/// Most signature checks one path search may make: 100. The shape of webpki's `Budget`: a
/// crafted pool of look-alike CAs must not make one validation expensive.
pub const MAX_SIGNATURE_CHECKS: usize = 100;
pub mod profiles;

/// Most certificates read from one file or folder: 10,000.
pub const MAX_CERTS_PER_SOURCE: usize = 10_000;

/// Why trust configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file or folder cannot be read.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no certificate.
    #[error("{path} holds no certificate (PEM or DER)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of a file cannot be parsed.
    #[error("{path}: certificate {index} cannot be parsed: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Which certificate of the file, from 0.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A file or folder holds more certificates than kyso reads from one source.
    #[error("{path}: more than {MAX_CERTS_PER_SOURCE} certificates")]
    TooMany {
        /// The file or folder.
        path: PathBuf,
    },
}

/// A certificate with the fields path validation reads, parsed once.
#[derive(Clone)]
pub struct Certificate {
    /// The certificate's DER.
    pub der: Vec<u8>,
    pub(crate) x509: X509,
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
    /// The subject's DER.
    pub subject_raw: Vec<u8>,
    /// The issuer's DER.
    pub issuer_raw: Vec<u8>,
    /// The serial number's bytes.
    pub serial: Vec<u8>,
    /// The subjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// The authorityKeyIdentifier's keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// `Some(path_len)` for a CA (basicConstraints cA=TRUE); the inner `None` is no limit.
    pub ca: Option<Option<u32>>,
    /// keyUsage bits as (digitalSignature, nonRepudiation, keyCertSign), `None` if absent.
    pub key_usage: Option<KeyUsageBits>,
    /// The extended key usage extension, when present.
    pub extended_key_usage: Option<ExtendedKeyUsage>,
    /// OIDs of critical extensions RFC 5280 processing here does not understand.
    pub unknown_critical: Vec<String>,
    /// The OID of the certificate's signature algorithm.
    pub signature_oid: String,
    /// The subject and issuer, as people read them.
    pub names: Names,
    /// The public key's size in bits.
    pub public_key_bits: u32,
    /// The public key's kind, e.g. `RSA`, `EC`.
    pub public_key_kind: String,
    /// The subjectPublicKey bits (what an OCSP CertID's issuerKeyHash hashes).
    pub public_key_raw: Vec<u8>,
    /// HTTP locations from the CRL distribution points (RFC 5280 §4.2.1.13).
    pub crl_urls: Vec<String>,
    /// OCSP responders and caIssuers locations from authorityInfoAccess (§4.2.2.1).
    pub ocsp_urls: Vec<String>,
    /// caIssuers locations from authorityInfoAccess.
    pub ca_issuers: Vec<String>,
    /// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): a delegated OCSP responder's own status
    /// is not to be checked.
    pub ocsp_nocheck: bool,
    /// The OIDs of the certificate policies extension (RFC 5280 §4.2.1.4).
    pub policies: Vec<String>,
}

/// The userid attribute type (RFC 4519 §2.39), `UID` in a subject.
const UID: &str = "0.9.2342.19200300.100.1.1";

/// id-kp-OCSPSigning (RFC 5280 §4.2.1.12).
pub const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";

/// id-kp-timeStamping (RFC 5280 §4.2.1.12).
pub const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// An extended key usage extension: whether it is critical, and its purposes' OIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedKeyUsage {
    /// Whether the extension is critical.
    pub critical: bool,
    /// The key purposes' OIDs.
    pub oids: Vec<String>,
}

/// The keyUsage bits path validation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeyUsageBits {
    /// digitalSignature.
    pub digital_signature: bool,
    /// nonRepudiation (contentCommitment).
    pub non_repudiation: bool,
    /// keyCertSign.
    pub key_cert_sign: bool,
}

/// Subject and issuer as people read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Names {
    /// The subject, as kyso prints it (`C=VN, O=…, CN=…`).
    pub subject: String,
    /// The issuer, printed the same way.
    pub issuer: String,
    /// The subject's commonName.
    pub common_name: Option<String>,
    /// The subject's organizationName.
    pub organization: Option<String>,
    /// The subject's organizationalUnitName attributes.
    pub organizational_units: Vec<String>,
    /// The subject's e-mail address.
    pub email: Option<String>,
    /// The subject's localityName.
    pub locality: Option<String>,
    /// The subject's countryName.
    pub country: Option<String>,
    /// The issuer's commonName.
    pub issuer_common_name: Option<String>,
    /// Subject `UID` attributes (0.9.2342.19200300.100.1.1), where Vietnamese CAs write a
    /// citizen-ID or tax-code number (`CCCD:…`, `MST:…`).
    pub uids: Vec<String>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.names.subject)
            .field("sha256", &hex::encode(self.sha256))
            .finish()
    }
}

/// Extensions RFC 5280 processing here understands, so that their being critical is fine.
/// Certificate policies are not enforced (no policy is required), which RFC 5280 §6.1 allows
/// with an initial policy set of anyPolicy.
const KNOWN_EXTENSIONS: &[&str] = &[
    "2.5.29.15",            // keyUsage
    "2.5.29.19",            // basicConstraints
    "2.5.29.37",            // extKeyUsage
    "2.5.29.14",            // subjectKeyIdentifier
    "2.5.29.35",            // authorityKeyIdentifier
    "2.5.29.17",            // subjectAltName
    "2.5.29.18",            // issuerAltName
    "2.5.29.32",            // certificatePolicies
    "2.5.29.31",            // cRLDistributionPoints
    "2.5.29.46",            // freshestCRL
    "1.3.6.1.5.5.7.1.1",    // authorityInfoAccess
    "1.3.6.1.5.5.7.1.3",    // qcStatements
    "1.3.6.1.5.5.7.48.1.5", // id-pkix-ocsp-nocheck
];

/// Why bytes are not a certificate kyso can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
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

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertificateError> {
        let x509 = X509::from_der(der).map_err(|e| CertificateError::OpenSsl {
            reason: crate::cms::first_openssl_reason(&e),
        })?;
        let (_, parsed) = X509Certificate::from_der(der).map_err(|e| CertificateError::X509 {
            reason: e.to_string(),
        })?;
        let sha256 = openssl::sha::sha256(der);
        let tbs = &parsed.tbs_certificate;
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        let mut ca = None;
        let mut key_usage = None;
        let mut extended_key_usage = None;
        let mut unknown_critical = Vec::new();
        let (mut crl_urls, mut ocsp_urls, mut ca_issuers) = (Vec::new(), Vec::new(), Vec::new());
        let mut ocsp_nocheck = false;
        let mut policies = Vec::new();
        for ext in tbs.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CertificatePolicies(p) => {
                    policies.extend(p.iter().map(|i| i.policy_id.to_id_string()));
                }
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(DistributionPointName::FullName(names)) =
                            &point.distribution_point
                        {
                            crl_urls.extend(uris(names));
                        }
                    }
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for desc in &aia.accessdescs {
                        let uri = uris(std::slice::from_ref(&desc.access_location));
                        let method = desc.access_method.to_id_string();
                        if method == "1.3.6.1.5.5.7.48.1" {
                            ocsp_urls.extend(uri);
                        } else if method == "1.3.6.1.5.5.7.48.2" {
                            ca_issuers.extend(uri);
                        }
                    }
                }
                _ if ext.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5" => ocsp_nocheck = true,
                ParsedExtension::SubjectKeyIdentifier(k) => subject_key_id = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::BasicConstraints(bc) if bc.ca => {
                    ca = Some(bc.path_len_constraint);
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let mut oids: Vec<String> =
                        eku.other.iter().map(|o| o.to_id_string()).collect();
                    let known = [
                        (eku.server_auth, "1.3.6.1.5.5.7.3.1"),
                        (eku.client_auth, "1.3.6.1.5.5.7.3.2"),
                        (eku.code_signing, "1.3.6.1.5.5.7.3.3"),
                        (eku.email_protection, "1.3.6.1.5.5.7.3.4"),
                        (eku.time_stamping, TIME_STAMPING),
                        (eku.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
                        (eku.any, "2.5.29.37.0"),
                    ];
                    oids.extend(
                        known
                            .iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, o)| (*o).to_owned()),
                    );
                    extended_key_usage = Some(ExtendedKeyUsage {
                        critical: ext.critical,
                        oids,
                    });
                }
                ParsedExtension::KeyUsage(ku) => {
                    key_usage = Some(KeyUsageBits {
                        digital_signature: ku.digital_signature(),
                        non_repudiation: ku.non_repudiation(),
                        key_cert_sign: ku.key_cert_sign(),
                    });
                }
                _ => {}
            }
            let oid = ext.oid.to_id_string();
            if ext.critical && !KNOWN_EXTENSIONS.contains(&oid.as_str()) {
                unknown_critical.push(oid);
            }
        }
        let attr = |name: &X509Name, oid: &x509_parser::der_parser::Oid| -> Vec<String> {
            name.iter_by_oid(oid)
                .filter_map(|a| a.as_str().ok().map(str::to_owned).or_else(|| decode_bmp(a)))
                .collect()
        };
        use x509_parser::oid_registry as o;
        let subject = tbs.subject();
        let names = Names {
            subject: display_name(subject),
            issuer: display_name(tbs.issuer()),
            common_name: attr(subject, &o::OID_X509_COMMON_NAME).into_iter().next(),
            organization: attr(subject, &o::OID_X509_ORGANIZATION_NAME)
                .into_iter()
                .next(),
            organizational_units: attr(subject, &o::OID_X509_ORGANIZATIONAL_UNIT),
            email: attr(subject, &o::OID_PKCS9_EMAIL_ADDRESS)
                .into_iter()
                .next(),
            locality: attr(subject, &o::OID_X509_LOCALITY_NAME).into_iter().next(),
            country: attr(subject, &o::OID_X509_COUNTRY_NAME).into_iter().next(),
            issuer_common_name: attr(tbs.issuer(), &o::OID_X509_COMMON_NAME)
                .into_iter()
                .next(),
            uids: subject
                .iter_attributes()
                .filter(|a| a.attr_type().to_id_string() == UID)
                .filter_map(|a| a.as_str().ok().map(str::to_owned).or_else(|| decode_bmp(a)))
                .collect(),
        };
        let pkey = x509.public_key().map_err(|e| CertificateError::OpenSsl {
            reason: crate::cms::first_openssl_reason(&e),
        })?;
        let public_key_kind = match pkey.id() {
            openssl::pkey::Id::RSA | openssl::pkey::Id::RSA_PSS => "RSA".to_owned(),
            openssl::pkey::Id::EC => pkey
                .ec_key()
                .ok()
                .and_then(|k| k.group().curve_name())
                .and_then(|n| n.short_name().ok().map(str::to_owned))
                .map_or("EC".to_owned(), |c| format!("EC {c}")),
            openssl::pkey::Id::ED25519 => "Ed25519".to_owned(),
            openssl::pkey::Id::ED448 => "Ed448".to_owned(),
            other => format!("{other:?}"),
        };
        Ok(Certificate {
            der: der.to_vec(),
            sha256,
            subject_raw: tbs.subject().as_raw().to_vec(),
            issuer_raw: tbs.issuer().as_raw().to_vec(),
            serial: strip_leading_zeros(tbs.raw_serial()).to_vec(),
            subject_key_id,
            authority_key_id,
            not_before: tbs.validity().not_before.timestamp(),
            not_after: tbs.validity().not_after.timestamp(),
            ca,
            key_usage,
            extended_key_usage,
            unknown_critical,
            signature_oid: parsed.signature_algorithm.algorithm.to_id_string(),
            names,
            public_key_bits: pkey.bits(),
            public_key_kind,
            public_key_raw: tbs.subject_pki.subject_public_key.data.to_vec(),
            crl_urls,
            ocsp_urls,
            ca_issuers,
            ocsp_nocheck,
            policies,
            x509,
        })
    }

    /// The public key, when OpenSSL can read it.
    pub fn public_key(&self) -> Option<PKey<Public>> {
        self.x509.public_key().ok()
    }

    /// Whether the certificate lists `oid` as an extended key usage.
    pub fn has_eku(&self, oid: &str) -> bool {
        self.extended_key_usage
            .as_ref()
            .is_some_and(|e| e.oids.iter().any(|o| o == oid))
    }

    /// The serial number, upper-case hex.
    pub fn serial_hex(&self) -> String {
        hex::encode_upper(&self.serial)
    }

    /// Whether the subject and the issuer are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }

    /// Whether `self` may have issued `child`: names chain, key identifiers agree when both
    /// are present (RFC 5280 §4.2.1.1 makes them a hint, so a disagreement rules out).
    fn may_issue(&self, child: &Certificate) -> bool {
        if !names_equal(&self.subject_raw, &child.issuer_raw) {
            return false;
        }
        match (&self.subject_key_id, &child.authority_key_id) {
            (Some(ski), Some(aki)) => ski == aki,
            _ => true,
        }
    }

    /// Whether `child`'s signature verifies with this certificate's key.
    fn signed(&self, child: &Certificate) -> bool {
        self.public_key()
            .is_some_and(|key| child.x509.verify(&key).unwrap_or(false))
    }

    /// Whether the certificate names itself issuer by `issuer` DER and `serial`.
    pub fn matches_issuer_serial(&self, issuer: &[u8], serial: &[u8]) -> bool {
        self.serial == strip_leading_zeros(serial) && names_equal(&self.issuer_raw, issuer)
    }
}

/// Compares two DER names. Byte equality first; else their OpenSSL canonical forms, which
/// fold case and whitespace the way RFC 5280 §7.1 asks for.
fn names_equal(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        openssl::x509::X509Name::from_der(a),
        openssl::x509::X509Name::from_der(b),
    ) {
        (Ok(a), Ok(b)) => a.try_cmp(&b).is_ok_and(|o| o.is_eq()),
        _ => false,
    }
}

fn strip_leading_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == 0).count();
    if n == s.len() {
        &s[s.len().saturating_sub(1)..]
    } else {
        &s[n..]
    }
}

fn decode_bmp(a: &AttributeTypeAndValue) -> Option<String> {
    let bytes = a.attr_value().data;
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// `C=VN, O=…, CN=…`, in the order of the certificate, UTF-8 as stored.
fn display_name(name: &X509Name) -> String {
    use x509_parser::oid_registry as o;
    let mut parts = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let key = if *oid == o::OID_X509_COMMON_NAME {
                "CN".to_owned()
            } else if *oid == o::OID_X509_ORGANIZATION_NAME {
                "O".to_owned()
            } else if *oid == o::OID_X509_ORGANIZATIONAL_UNIT {
                "OU".to_owned()
            } else if *oid == o::OID_X509_COUNTRY_NAME {
                "C".to_owned()
            } else if *oid == o::OID_X509_LOCALITY_NAME {
                "L".to_owned()
            } else if *oid == o::OID_X509_STATE_OR_PROVINCE_NAME {
                "ST".to_owned()
            } else if *oid == o::OID_PKCS9_EMAIL_ADDRESS {
                "emailAddress".to_owned()
            } else {
                oid.to_id_string()
            };
            let value = atv
                .as_str()
                .map(str::to_owned)
                .ok()
                .or_else(|| decode_bmp(atv))
                .unwrap_or_else(|| hex::encode(atv.attr_value().data));
            parts.push(format!("{key}={value}"));
        }
    }
    parts.join(", ")
}

/// Anchors and intermediates, as the operator configured them.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Certificate>,
    intermediates: Vec<Certificate>,
}

impl TrustStore {
    /// A store of `anchors` and `intermediates`.
    pub fn new(anchors: Vec<Certificate>, intermediates: Vec<Certificate>) -> Self {
        TrustStore {
            anchors,
            intermediates,
        }
    }

    /// Loads anchors and intermediates from files or folders (PEM with one or more
    /// certificates, or DER).
    pub fn from_paths(anchors: &[PathBuf], intermediates: &[PathBuf]) -> Result<Self, TrustError> {
        let mut store = TrustStore::default();
        for path in anchors {
            store.anchors.extend(load_certificates(path)?);
        }
        for path in intermediates {
            store.intermediates.extend(load_certificates(path)?);
        }
        Ok(store)
    }

    /// Adds `other`'s anchors and intermediates to these.
    pub fn extend(&mut self, other: TrustStore) {
        self.anchors.extend(other.anchors);
        self.intermediates.extend(other.intermediates);
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// The intermediate CA certificates.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    /// SHA-256 over the sorted fingerprints of anchors and intermediates: names the trust
    /// configuration a report was made under.
    pub fn fingerprint(&self) -> String {
        let mut prints: Vec<[u8; 32]> = self
            .anchors
            .iter()
            .map(|c| c.sha256)
            .chain(std::iter::once([0u8; 32]))
            .chain(self.intermediates.iter().map(|c| c.sha256))
            .collect();
        prints[..self.anchors.len()].sort_unstable();
        let split = self.anchors.len() + 1;
        prints[split..].sort_unstable();
        hex::encode(openssl::sha::sha256(&prints.concat()))
    }
}

/// Reads every certificate under `path`: a file, or the files of a folder (not recursive).
pub fn load_certificates(path: &Path) -> Result<Vec<Certificate>, TrustError> {
    let io = |source| TrustError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                matches!(
                    p.extension()
                        .and_then(|e| e.to_str())
                        .map(str::to_ascii_lowercase)
                        .as_deref(),
                    Some("pem" | "crt" | "cer" | "der")
                )
            })
            .collect();
        files.sort();
        let mut out = Vec::new();
        for file in files {
            match load_certificates(&file) {
                Ok(certs) => out.extend(certs),
                // A folder may hold keys or CRLs beside the certificates: skip those files.
                // A named file without a certificate is still an error.
                Err(TrustError::NoCertificate { .. }) => continue,
                Err(e) => return Err(e),
            }
            if out.len() > MAX_CERTS_PER_SOURCE {
                return Err(TrustError::TooMany {
                    path: path.to_owned(),
                });
            }
        }
        return Ok(out);
    }
    let bytes = std::fs::read(path).map_err(io)?;
    certificates_from_bytes(&bytes, path)
}

/// The certificates in `bytes`: PEM with one or more, or one DER. `path` names the source
/// in errors (a file, or the URL it was fetched from).
pub fn certificates_from_bytes(bytes: &[u8], path: &Path) -> Result<Vec<Certificate>, TrustError> {
    let ders: Vec<Vec<u8>> = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        X509::stack_from_pem(bytes)
            .map_err(|e| TrustError::BadCertificate {
                path: path.to_owned(),
                index: 0,
                reason: crate::cms::first_openssl_reason(&e),
            })?
            .iter()
            .filter_map(|c| c.to_der().ok())
            .collect()
    } else {
        vec![bytes.to_vec()]
    };
    if ders.is_empty() {
        return Err(TrustError::NoCertificate {
            path: path.to_owned(),
        });
    }
    if ders.len() > MAX_CERTS_PER_SOURCE {
        return Err(TrustError::TooMany {
            path: path.to_owned(),
        });
    }
    ders.iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der).map_err(|e| TrustError::BadCertificate {
                path: path.to_owned(),
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The certificate a CMS `SignerIdentifier` names (RFC 5652 §5.3), by issuer and serial or
/// by subject key identifier, among `embedded` (the SignedData's own) and then the store's.
pub fn find_certificate(
    sid: &crate::cms::SignerId,
    embedded: &[Certificate],
    store: &TrustStore,
) -> Option<Certificate> {
    let mut all = embedded
        .iter()
        .chain(store.intermediates())
        .chain(store.anchors());
    match sid {
        crate::cms::SignerId::IssuerSerial { issuer, serial } => {
            all.find(|c| c.matches_issuer_serial(issuer, serial))
        }
        crate::cms::SignerId::SubjectKeyId(ski) => {
            all.find(|c| c.subject_key_id.as_deref() == Some(ski.as_slice()))
        }
    }
    .cloned()
}

/// Why no valid path was found, ranked: when several candidate paths fail, the one that got
/// furthest towards a valid path names the failure ([`ChainError::rank`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No certificate of the store or the signature issued the last certificate of the path.
    #[error("no path from the certificate to a trust anchor (issuer not found: {issuer})")]
    NoPathToAnchor {
        /// The issuer no certificate is known for.
        issuer: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("a certificate's signature does not verify with its issuer's key ({subject})")]
    BadSignature {
        /// The certificate.
        subject: String,
    },
    /// A certificate is not yet valid at the validation time.
    #[error("{subject} is not valid until {not_before}, after the validation time {at}")]
    NotYetValid {
        /// The certificate.
        subject: String,
        /// Its notBefore.
        not_before: OffsetDateTime,
        /// The validation time.
        at: OffsetDateTime,
        /// Whether it is the signer's own certificate.
        end_entity: bool,
    },
    /// A certificate has expired at the validation time.
    #[error("{subject} expired at {not_after}, before the validation time {at}")]
    Expired {
        /// The certificate.
        subject: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
        /// The validation time.
        at: OffsetDateTime,
        /// Whether it is the signer's own certificate.
        end_entity: bool,
    },
    /// A certificate that issues another is not a CA.
    #[error("{subject} issues certificates but is not a CA (basicConstraints)")]
    NotCa {
        /// The certificate.
        subject: String,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error("{subject} allows {path_len} CA certificates below it; the path has {found}")]
    PathLenExceeded {
        /// The CA.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u32,
        /// How many CAs follow it.
        found: u32,
    },
    /// A CA's keyUsage lacks keyCertSign.
    #[error("{subject} is a CA without keyCertSign in its key usage")]
    CaWithoutKeyCertSign {
        /// The CA.
        subject: String,
    },
    /// The signer's keyUsage allows neither digitalSignature nor nonRepudiation.
    #[error("the signer's key usage allows neither digitalSignature nor nonRepudiation")]
    SignerKeyUsage,
    /// A TSA's certificate is not for timestamping (extended key usage).
    #[error("the timestamping certificate's extended key usage is not exactly a critical id-kp-timeStamping (RFC 3161 §2.3)")]
    NotTimeStamping,
    /// A certificate has a critical extension kyso does not process.
    #[error("{subject} has a critical extension kyso does not process: {oid}")]
    UnknownCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension's OID.
        oid: String,
    },
    /// Path building gave up after its budget of candidate paths.
    #[error("path building stopped after {MAX_SIGNATURE_CHECKS} signature checks")]
    BudgetExhausted,
}

impl ChainError {
    /// Higher is more useful to report. A path that reached an anchor and failed a check
    /// says more than "no path"; an exhausted budget says least about the certificate.
    pub fn rank(&self) -> u8 {
        match self {
            ChainError::BudgetExhausted => 0,
            ChainError::NoPathToAnchor { .. } => 1,
            ChainError::BadSignature { .. } => 2,
            ChainError::UnknownCriticalExtension { .. } => 3,
            ChainError::NotCa { .. }
            | ChainError::PathLenExceeded { .. }
            | ChainError::CaWithoutKeyCertSign { .. } => 4,
            ChainError::SignerKeyUsage | ChainError::NotTimeStamping => 5,
            ChainError::NotYetValid { .. } | ChainError::Expired { .. } => 6,
        }
    }
}

/// A validated path: end entity first, anchor last.
#[derive(Debug, Clone)]
pub struct ValidPath {
    /// The path, from the end entity to the trust anchor.
    pub certificates: Vec<Certificate>,
}

/// What the end entity of a path is trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Signing documents: digitalSignature or nonRepudiation in the key usage; no extended
    /// key usage is required (the BCY's certificates carry none for it, VN-PKI.md).
    DocumentSigning,
    /// A timestamping authority: the extended key usage is exactly id-kp-timeStamping and
    /// critical (RFC 3161 §2.3).
    TimeStamping,
    /// No end-entity constraint beyond RFC 5280's.
    Any,
}

/// What path validation needs besides the certificates.
#[derive(Debug, Clone, Copy)]
pub struct PathOptions {
    /// The time the path must be valid at.
    pub at: OffsetDateTime,
    /// What the end entity's certificate must be for.
    pub purpose: Purpose,
}

/// What kyso has already worked out about certificates, shared by every verification of a
/// [`crate::Context`] (and its clones): parsed certificates by the SHA-256 of their DER, and
/// signature checks by the SHA-256 of issuer and subject. The same CA, TSA and signer
/// certificates come back in document after document, and parsing one or checking an
/// RSA-4096 signature is not free. Both are facts about bytes, true whatever input brought
/// them, so what the cache holds changes no outcome; both are bounded (least recently used
/// goes first), so hostile input can evict entries but not grow the cache.
pub struct Cache {
    signatures: Mutex<LruCache<IssuerAndSubject, bool>>,
    certificates: Mutex<LruCache<[u8; 32], Arc<Certificate>>>,
}

/// Counts a lookup in the cache `cache` (`kyso_cache_lookups_total`, by hit or miss): a
/// no-op unless the embedder installed a `metrics` recorder, as `kyso serve` does.
fn looked_up(cache: &'static str, hit: bool) {
    metrics::counter!(
        "kyso_cache_lookups_total",
        "cache" => cache,
        "result" => if hit { "hit" } else { "miss" }
    )
    .increment(1);
}

/// The SHA-256 of an issuer's certificate and of a certificate it may have signed.
type IssuerAndSubject = ([u8; 32], [u8; 32]);

/// Signature checks remembered: about 80 bytes each.
const CACHED_SIGNATURES: usize = 16_384;
/// Parsed certificates remembered: a few kilobytes each.
const CACHED_CERTIFICATES: usize = 1_024;

impl Default for Cache {
    fn default() -> Self {
        Cache::new(CACHED_SIGNATURES, CACHED_CERTIFICATES)
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache of at most `signatures` checks and `certificates` parsed certificates.
    pub fn new(signatures: usize, certificates: usize) -> Self {
        let bound = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Cache {
            signatures: Mutex::new(LruCache::new(bound(signatures))),
            certificates: Mutex::new(LruCache::new(bound(certificates))),
        }
    }

    /// Whether `issuer`'s key verifies `child`'s signature.
    fn check(&self, issuer: &Certificate, child: &Certificate) -> bool {
        let key = (issuer.sha256, child.sha256);
        // The cache is only an optimisation: a poisoned lock (a panic elsewhere while held)
        // just means checking again.
        if let Some(known) = self
            .signatures
            .lock()
            .ok()
            .and_then(|mut m| m.get(&key).copied())
        {
            looked_up("signature", true);
            return known;
        }
        looked_up("signature", false);
        let outcome = issuer.signed(child);
        if let Ok(mut m) = self.signatures.lock() {
            m.put(key, outcome);
        }
        outcome
    }

    /// [`Certificate::from_der`], parsing each distinct certificate once.
    pub fn certificate(&self, der: &[u8]) -> Result<Certificate, CertificateError> {
        let key = openssl::sha::sha256(der);
        if let Some(known) = self
            .certificates
            .lock()
            .ok()
            .and_then(|mut m| m.get(&key).cloned())
        {
            looked_up("certificate", true);
            return Ok((*known).clone());
        }
        looked_up("certificate", false);
        let parsed = Certificate::from_der(der)?;
        if let Ok(mut m) = self.certificates.lock() {
            m.put(key, Arc::new(parsed.clone()));
        }
        Ok(parsed)
    }

    /// Every certificate of `ders` that parses.
    pub fn certificates<'a>(
        &self,
        ders: impl IntoIterator<Item = &'a Vec<u8>>,
    ) -> Vec<Certificate> {
        ders.into_iter()
            .filter_map(|d| self.certificate(d).ok())
            .collect()
    }
}

/// Finds a valid path from `leaf` to an anchor of `store`, using the store's intermediates
/// and `extra` (the certificates embedded in the signature). Tries every candidate issuer
/// at every step, within [`MAX_PATH_LEN`] and [`MAX_SIGNATURE_CHECKS`].
pub fn build_path(
    leaf: &Certificate,
    extra: &[Certificate],
    store: &TrustStore,
    options: PathOptions,
) -> Result<ValidPath, ChainError> {
    build_path_with(leaf, extra, store, options, &Cache::new(64, 1))
}

/// [`build_path`], reusing the signature checks of `cache`. Remembered checks still count
/// against [`MAX_SIGNATURE_CHECKS`], so the budget does not depend on what came before.
pub fn build_path_with(
    leaf: &Certificate,
    extra: &[Certificate],
    store: &TrustStore,
    options: PathOptions,
    cache: &Cache,
) -> Result<ValidPath, ChainError> {
    let mut search = Search {
        store,
        extra,
        options,
        cache,
        checks: 0,
        best: None,
    };
    let mut path = vec![leaf.clone()];
    if let Some(found) = search.extend(&mut path) {
        return Ok(found);
    }
    Err(search.best.unwrap_or(ChainError::NoPathToAnchor {
        issuer: leaf.names.issuer.clone(),
    }))
}

struct Search<'a> {
    store: &'a TrustStore,
    extra: &'a [Certificate],
    options: PathOptions,
    cache: &'a Cache,
    checks: usize,
    best: Option<ChainError>,
}

impl Search<'_> {
    fn note(&mut self, e: ChainError) {
        if self.best.as_ref().is_none_or(|b| e.rank() > b.rank()) {
            self.best = Some(e);
        }
    }

    fn extend(&mut self, path: &mut Vec<Certificate>) -> Option<ValidPath> {
        let last = path.last()?.clone();
        // An anchor that is the certificate itself (a self-signed signer configured as trusted,
        // as node-signpdf's tests do) ends the path at once.
        if path.len() == 1 {
            if let Some(anchor) = self.store.anchors.iter().find(|a| a.der == last.der) {
                let candidate = vec![anchor.clone()];
                match validate(&candidate, self.options) {
                    Ok(()) => {
                        return Some(ValidPath {
                            certificates: candidate,
                        })
                    }
                    Err(e) => self.note(e),
                }
            }
        }
        for anchor in self.store.anchors.iter().filter(|a| a.may_issue(&last)) {
            if anchor.der == last.der {
                continue;
            }
            if !self.spend() {
                return None;
            }
            if !self.cache.check(anchor, &last) {
                self.note(ChainError::BadSignature {
                    subject: last.names.subject.clone(),
                });
                continue;
            }
            let mut candidate = path.clone();
            candidate.push(anchor.clone());
            match validate(&candidate, self.options) {
                Ok(()) => {
                    return Some(ValidPath {
                        certificates: candidate,
                    })
                }
                Err(e) => self.note(e),
            }
        }
        if path.len() + 1 >= MAX_PATH_LEN {
            return None;
        }
        let seen: HashSet<[u8; 32]> = path.iter().map(|c| c.sha256).collect();
        let candidates: Vec<Certificate> = self
            .store
            .intermediates
            .iter()
            .chain(self.extra)
            .filter(|c| !seen.contains(&c.sha256) && c.may_issue(&last) && !c.is_self_issued())
            .cloned()
            .collect();
        let mut tried = HashSet::new();
        for issuer in candidates {
            if !tried.insert(issuer.sha256) {
                continue;
            }
            if !self.spend() {
                return None;
            }
            if !self.cache.check(&issuer, &last) {
                self.note(ChainError::BadSignature {
                    subject: last.names.subject.clone(),
                });
                continue;
            }
            path.push(issuer);
            if let Some(found) = self.extend(path) {
                return Some(found);
            }
            path.pop();
        }
        None
    }

    fn spend(&mut self) -> bool {
        self.checks += 1;
        if self.checks > MAX_SIGNATURE_CHECKS {
            self.note(ChainError::BudgetExhausted);
            false
        } else {
            true
        }
    }
}

/// RFC 5280 §6.1.3–6.1.4 checks on a path whose signatures already verified: validity at the
/// validation time, CA constraints with pathLen, keyCertSign, unknown critical extensions,
/// and the end entity's key usage. The anchor's own validity is checked too (a trust anchor
/// certificate past its notAfter no longer vouches for anything in kyso's configuration).
fn validate(path: &[Certificate], options: PathOptions) -> Result<(), ChainError> {
    let at = options.at.unix_timestamp();
    for (i, cert) in path.iter().enumerate() {
        let subject = || cert.names.subject.clone();
        let end_entity = i == 0;
        if at < cert.not_before {
            return Err(ChainError::NotYetValid {
                subject: subject(),
                not_before: ts(cert.not_before),
                at: options.at,
                end_entity,
            });
        }
        if at > cert.not_after {
            return Err(ChainError::Expired {
                subject: subject(),
                not_after: ts(cert.not_after),
                at: options.at,
                end_entity,
            });
        }
        if let Some(oid) = cert.unknown_critical.first() {
            return Err(ChainError::UnknownCriticalExtension {
                subject: subject(),
                oid: oid.clone(),
            });
        }
        if i > 0 && path.len() > 1 {
            // `cert` issued path[i - 1].
            let Some(path_len) = cert.ca else {
                // RFC 5280 §6.1.4(k): an intermediate must be a CA. A v1 self-signed anchor
                // without extensions is accepted as an anchor, as RFC 5280 §6.2 allows.
                if i == path.len() - 1 && cert.is_self_issued() && cert.x509.version() == 0 {
                    continue;
                }
                return Err(ChainError::NotCa { subject: subject() });
            };
            if let Some(ku) = cert.key_usage {
                if !ku.key_cert_sign {
                    return Err(ChainError::CaWithoutKeyCertSign { subject: subject() });
                }
            }
            // Non-self-issued CA certificates below this one, excluding the end entity.
            let below = path[1..i].iter().filter(|c| !c.is_self_issued()).count();
            if let Some(limit) = path_len {
                let found = u32::try_from(below).unwrap_or(u32::MAX);
                if found > limit {
                    return Err(ChainError::PathLenExceeded {
                        subject: subject(),
                        path_len: limit,
                        found,
                    });
                }
            }
        }
    }
    match options.purpose {
        Purpose::DocumentSigning => {
            if let Some(ku) = path[0].key_usage {
                if !ku.digital_signature && !ku.non_repudiation {
                    return Err(ChainError::SignerKeyUsage);
                }
            }
        }
        Purpose::TimeStamping => {
            let ok = path[0]
                .extended_key_usage
                .as_ref()
                .is_some_and(|e| e.critical && e.oids == [TIME_STAMPING]);
            if !ok {
                return Err(ChainError::NotTimeStamping);
            }
        }
        Purpose::Any => {}
    }
    Ok(())
}

fn ts(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The `http:` URIs among `names` (kyso fetches over plain HTTP only, as CRLs and OCSP are
/// served: RFC 5280 §4.2.1.13, RFC 6960 Appendix A).
fn uris(names: &[GeneralName<'_>]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) if u.len() <= 2048 && u.starts_with("http://") => {
                Some((*u).to_owned())
            }
            _ => None,
        })
        .collect()
}
