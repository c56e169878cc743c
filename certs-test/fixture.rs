//! The test PKI and a fixture signer that writes signed PDFs the way the BCY signing tools
//! do (see `../shared/VN-PKI.md`): a base document, then one incremental update per
//! signature, each with its signature dictionary, widget, AcroForm and (for a certification
//! signature) DocMDP. CMS structures are assembled with RustCrypto's `cms` types and signed
//! with OpenSSL, so every option the tests need (algorithms, attributes, timestamps, broken
//! shapes) is one field of [`CmsSpec`].
//!
//! Used by `make_fixtures.rs` (which writes `certs-test/`) and by the benchmark (which builds
//! large documents in memory with the committed keys). Test-only code: not part of kyso.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, GeneralizedTime, ObjectIdentifier as Oid, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode, Tag};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::X509;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// A certificate with its private key.
pub struct Identity {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Identity {
    /// Loads `<dir>/<name>.pem` and `<dir>/<name>.key.pem`.
    pub fn load(dir: &Path, name: &str) -> Identity {
        let cert =
            X509::from_pem(&std::fs::read(dir.join(format!("{name}.pem"))).unwrap()).unwrap();
        let key = PKey::private_key_from_pem(
            &std::fs::read(dir.join(format!("{name}.key.pem"))).unwrap(),
        )
        .unwrap();
        Identity { cert, key }
    }

    fn x509_cert(&self) -> x509_cert::Certificate {
        x509_cert::Certificate::from_der(&self.cert.to_der().unwrap()).unwrap()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Shake256,
    Sha3_256,
    Sha3_384,
}

impl Digest {
    pub fn oid(self) -> Oid {
        Oid::new_unwrap(match self {
            Digest::Sha1 => "1.3.14.3.2.26",
            Digest::Sha256 => "2.16.840.1.101.3.4.2.1",
            Digest::Sha384 => "2.16.840.1.101.3.4.2.2",
            Digest::Sha512 => "2.16.840.1.101.3.4.2.3",
            Digest::Shake256 => "2.16.840.1.101.3.4.2.12",
            Digest::Sha3_256 => "2.16.840.1.101.3.4.2.8",
            Digest::Sha3_384 => "2.16.840.1.101.3.4.2.9",
        })
    }

    pub fn md(self) -> MessageDigest {
        match self {
            Digest::Sha1 => MessageDigest::sha1(),
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha512 => MessageDigest::sha512(),
            Digest::Shake256 => MessageDigest::shake_256(),
            Digest::Sha3_256 => MessageDigest::sha3_256(),
            Digest::Sha3_384 => MessageDigest::sha3_384(),
        }
    }

    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        let mut h = openssl::hash::Hasher::new(self.md()).unwrap();
        for p in parts {
            h.update(p).unwrap();
        }
        if self == Digest::Shake256 {
            let mut out = vec![0; 64];
            h.finish_xof(&mut out).unwrap();
            out
        } else {
            h.finish().unwrap().to_vec()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scheme {
    /// RSA PKCS#1 v1.5, written as `rsaEncryption` (as most PDF signers do).
    Pkcs1,
    /// RSA-PSS with MGF1 of the same hash and a salt of the hash's length.
    Pss,
    Ecdsa,
    Ed25519,
}

/// Everything one CMS SignedData may vary in.
pub struct CmsSpec<'a> {
    pub signer: &'a Identity,
    pub certs: Vec<&'a Identity>,
    pub digest: Digest,
    pub scheme: Scheme,
    pub signed_attrs: bool,
    pub signing_time: Option<OffsetDateTime>,
    pub ess_v2: bool,
    pub ski_sid: bool,
    pub econtent_type: Oid,
    /// Encapsulated content (adbe.pkcs7.sha1, timestamp tokens); `None` for detached.
    pub econtent: Option<Vec<u8>>,
    /// A signature timestamp from this TSA at this time, SHA-1 imprint as the BCY's client.
    pub timestamp: Option<(&'a Identity, OffsetDateTime)>,
    /// CRLs (DER) for the SignedData's `crls` field.
    pub crls: Vec<Vec<u8>>,
    /// OCSP responses (DER) for the `adbe-revocationInfoArchival` signed attribute.
    pub ocsp: Vec<Vec<u8>>,
    /// A content timestamp (signed attribute) from this TSA at this time.
    pub content_timestamp: Option<(&'a Identity, OffsetDateTime)>,
}

pub const ID_DATA: &str = "1.2.840.113549.1.7.1";
pub const ID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";

impl<'a> CmsSpec<'a> {
    /// The usual PAdES-shaped signature: SHA-256, signed attributes with ESS v2.
    pub fn new(signer: &'a Identity, scheme: Scheme, certs: Vec<&'a Identity>) -> Self {
        CmsSpec {
            signer,
            certs,
            digest: Digest::Sha256,
            scheme,
            signed_attrs: true,
            signing_time: None,
            ess_v2: true,
            ski_sid: false,
            econtent_type: Oid::new_unwrap(ID_DATA),
            econtent: None,
            timestamp: None,
            crls: Vec::new(),
            ocsp: Vec::new(),
            content_timestamp: None,
        }
    }

    /// Builds the ContentInfo DER over `data` (the signed byte ranges joined, or `econtent`).
    pub fn build(&self, data: &[u8]) -> Vec<u8> {
        let content = self.econtent.as_deref().unwrap_or(data);
        let mut attrs = Vec::new();
        if self.signed_attrs {
            attrs.push(attr(
                "1.2.840.113549.1.9.3",
                self.econtent_type.to_der().unwrap(),
            ));
            attrs.push(attr(
                "1.2.840.113549.1.9.4",
                OctetString::new(self.digest.hash(&[content]))
                    .unwrap()
                    .to_der()
                    .unwrap(),
            ));
            if let Some(t) = self.signing_time {
                let utc = UtcTime::from_unix_duration(std::time::Duration::from_secs(
                    t.unix_timestamp() as u64,
                ))
                .unwrap();
                attrs.push(attr("1.2.840.113549.1.9.5", utc.to_der().unwrap()));
            }
            if self.ess_v2 {
                let hash = Digest::Sha256.hash(&[&self.signer.cert.to_der().unwrap()]);
                let cert_id = seq(OctetString::new(hash).unwrap().to_der().unwrap());
                attrs.push(attr("1.2.840.113549.1.9.16.2.47", seq(seq(cert_id))));
            }
            if !self.ocsp.is_empty() {
                // RevocationInfoArchival ::= SEQUENCE { ocsp [1] EXPLICIT SEQUENCE OF OCSPResponse }
                let list = seq(self.ocsp.concat());
                let tagged = Any::new(
                    Tag::ContextSpecific {
                        constructed: true,
                        number: der::TagNumber::new(1),
                    },
                    list,
                )
                .unwrap()
                .to_der()
                .unwrap();
                attrs.push(attr("1.2.840.113583.1.1.8", seq(tagged)));
            }
            if let Some((tsa, at)) = self.content_timestamp {
                let token = timestamp_token(tsa, Digest::Sha256, content, at);
                attrs.push(attr("1.2.840.113549.1.9.16.2.20", token));
            }
        }
        let signed_attrs = (!attrs.is_empty()).then(|| SetOfVec::try_from(attrs).unwrap());
        let to_sign = match &signed_attrs {
            Some(a) => a.to_der().unwrap(),
            None => content.to_vec(),
        };
        let signature = sign(self.signer, self.scheme, self.digest, &to_sign);
        let unsigned_attrs = self.timestamp.map(|(tsa, at)| {
            let token = timestamp_token(tsa, Digest::Sha1, &signature, at);
            SetOfVec::try_from(vec![attr("1.2.840.113549.1.9.16.2.14", token)]).unwrap()
        });
        let leaf = self.signer.x509_cert();
        let sid = if self.ski_sid {
            let ski = self
                .signer
                .cert
                .subject_key_id()
                .expect("signer has an SKI")
                .as_slice()
                .to_vec();
            SignerIdentifier::SubjectKeyIdentifier(x509_cert::ext::pkix::SubjectKeyIdentifier(
                OctetString::new(ski).unwrap(),
            ))
        } else {
            SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: leaf.tbs_certificate.issuer.clone(),
                serial_number: leaf.tbs_certificate.serial_number.clone(),
            })
        };
        let digest_alg = AlgorithmIdentifierOwned {
            oid: self.digest.oid(),
            parameters: None,
        };
        let signer_info = SignerInfo {
            version: if self.ski_sid {
                CmsVersion::V3
            } else {
                CmsVersion::V1
            },
            sid,
            digest_alg: digest_alg.clone(),
            signed_attrs,
            signature_algorithm: signature_algorithm(self.scheme, self.digest),
            signature: OctetString::new(signature).unwrap(),
            unsigned_attrs,
        };
        let certs: Vec<CertificateChoices> = std::iter::once(self.signer)
            .chain(self.certs.iter().copied())
            .map(|i| CertificateChoices::Certificate(i.x509_cert()))
            .collect();
        let signed_data = SignedData {
            version: if self.ski_sid {
                CmsVersion::V3
            } else {
                CmsVersion::V1
            },
            digest_algorithms: SetOfVec::try_from(vec![digest_alg]).unwrap(),
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: self.econtent_type,
                econtent: self
                    .econtent
                    .as_ref()
                    .map(|c| Any::new(Tag::OctetString, c.clone()).unwrap()),
            },
            certificates: Some(CertificateSet(SetOfVec::try_from(certs).unwrap())),
            crls: (!self.crls.is_empty()).then(|| {
                let choices: Vec<cms::revocation::RevocationInfoChoice> = self
                    .crls
                    .iter()
                    .map(|d| {
                        cms::revocation::RevocationInfoChoice::Crl(
                            x509_cert::crl::CertificateList::from_der(d).unwrap(),
                        )
                    })
                    .collect();
                cms::revocation::RevocationInfoChoices(SetOfVec::try_from(choices).unwrap())
            }),
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).unwrap()),
        };
        ContentInfo {
            content_type: Oid::new_unwrap("1.2.840.113549.1.7.2"),
            content: Any::encode_from(&signed_data).unwrap(),
        }
        .to_der()
        .unwrap()
    }
}

fn seq(content: Vec<u8>) -> Vec<u8> {
    Any::new(Tag::Sequence, content).unwrap().to_der().unwrap()
}

fn attr(oid: &str, value_der: Vec<u8>) -> Attribute {
    Attribute {
        oid: Oid::new_unwrap(oid),
        values: SetOfVec::try_from(vec![Any::from_der(&value_der).unwrap()]).unwrap(),
    }
}

fn signature_algorithm(scheme: Scheme, digest: Digest) -> AlgorithmIdentifierOwned {
    match scheme {
        // SHA-3 has no `rsaEncryption`-with-digest convention: its signature OIDs name the
        // hash (NIST CSOR sigAlgs, RFC 8702).
        Scheme::Pkcs1 if digest == Digest::Sha3_256 => AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("2.16.840.1.101.3.4.3.14"),
            parameters: None,
        },
        Scheme::Pkcs1 => AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(Any::null()),
        },
        Scheme::Pss => {
            // RSASSA-PSS-params: [0] hash, [1] MGF1(hash), [2] salt length.
            let alg = AlgorithmIdentifierOwned {
                oid: digest.oid(),
                parameters: None,
            }
            .to_der()
            .unwrap();
            let mgf = AlgorithmIdentifierOwned {
                oid: Oid::new_unwrap("1.2.840.113549.1.1.8"),
                parameters: Some(Any::from_der(&alg).unwrap()),
            }
            .to_der()
            .unwrap();
            let salt = (digest.md().size() as u32).to_der().unwrap();
            let explicit = |n: u8, v: Vec<u8>| {
                Any::new(
                    Tag::ContextSpecific {
                        constructed: true,
                        number: der::TagNumber::new(n),
                    },
                    v,
                )
                .unwrap()
                .to_der()
                .unwrap()
            };
            let params = seq([explicit(0, alg), explicit(1, mgf), explicit(2, salt)].concat());
            AlgorithmIdentifierOwned {
                oid: Oid::new_unwrap("1.2.840.113549.1.1.10"),
                parameters: Some(Any::from_der(&params).unwrap()),
            }
        }
        Scheme::Ecdsa => AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap(match digest {
                Digest::Sha1 => "1.2.840.10045.4.1",
                Digest::Sha384 => "1.2.840.10045.4.3.3",
                Digest::Sha512 => "1.2.840.10045.4.3.4",
                Digest::Sha3_256 => "2.16.840.1.101.3.4.3.10",
                Digest::Sha3_384 => "2.16.840.1.101.3.4.3.11",
                _ => "1.2.840.10045.4.3.2",
            }),
            parameters: None,
        },
        Scheme::Ed25519 => AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.3.101.112"),
            parameters: None,
        },
    }
}

pub fn sign(id: &Identity, scheme: Scheme, digest: Digest, data: &[u8]) -> Vec<u8> {
    match scheme {
        Scheme::Ed25519 => Signer::new_without_digest(&id.key)
            .unwrap()
            .sign_oneshot_to_vec(data)
            .unwrap(),
        _ => {
            let mut s = Signer::new(digest.md(), &id.key).unwrap();
            if scheme == Scheme::Pss {
                s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                s.set_rsa_mgf1_md(digest.md()).unwrap();
                s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            }
            s.update(data).unwrap();
            s.sign_to_vec().unwrap()
        }
    }
}

/// An RFC 3161 token (a CMS SignedData over a TSTInfo) whose imprint is `imprint_alg` of
/// `data`, signed by `tsa` at `at`.
pub fn timestamp_token(
    tsa: &Identity,
    imprint_alg: Digest,
    data: &[u8],
    at: OffsetDateTime,
) -> Vec<u8> {
    let imprint = seq([
        AlgorithmIdentifierOwned {
            oid: imprint_alg.oid(),
            parameters: None,
        }
        .to_der()
        .unwrap(),
        OctetString::new(imprint_alg.hash(&[data]))
            .unwrap()
            .to_der()
            .unwrap(),
    ]
    .concat());
    let gen_time = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
        at.unix_timestamp() as u64,
    ))
    .unwrap();
    let tst_info = seq([
        1u8.to_der().unwrap(),
        Oid::new_unwrap("1.3.6.1.4.1.99999.1.1").to_der().unwrap(),
        imprint,
        (at.unix_timestamp() as u64).to_der().unwrap(),
        gen_time.to_der().unwrap(),
    ]
    .concat());
    let scheme = if tsa.key.id() == openssl::pkey::Id::EC {
        Scheme::Ecdsa
    } else {
        Scheme::Pkcs1
    };
    let spec = CmsSpec {
        econtent_type: Oid::new_unwrap(ID_TST_INFO),
        econtent: Some(tst_info),
        ..CmsSpec::new(tsa, scheme, vec![])
    };
    spec.build(&[])
}

/// What the signature dictionary says and how the signed bytes are laid out.
pub struct SigSpec<'a> {
    pub field: &'a str,
    pub sub_filter: &'a str,
    pub kind_doc_timestamp: bool,
    pub reason: Option<&'a str>,
    pub location: Option<&'a str>,
    /// `/M`, and the CMS signingTime unless `cms.signing_time` is set otherwise.
    pub time: OffsetDateTime,
    /// `Some(P)`: a certification signature with DocMDP P.
    pub docmdp: Option<u8>,
    pub rect: [i32; 4],
    /// Size of the /Contents placeholder in bytes.
    pub contents_len: usize,
    /// Object numbers for the signature dictionary and its widget, reserved with
    /// [`Doc::alloc`] by a caller that must name them in `extra_objects`.
    pub reserved: Option<(u32, u32)>,
    /// More entries for the widget dictionary (e.g. ` /StructParent 1`).
    pub widget_extra: String,
    /// More objects written in the signing update (numbers from [`Doc::alloc`]).
    pub extra_objects: Vec<(u32, Vec<u8>)>,
    /// `Some(P)`: a FieldMDP transform locking all fields with the PDF 2.0 `/P` permissions.
    pub fieldmdp_p: Option<u8>,
    /// Write `/Contents` as an indirect reference to a string object, with the ByteRange's
    /// gap around that string (not a form ISO 32000 allows: the gap must be the dictionary's
    /// own `/Contents`).
    pub indirect_contents: bool,
    /// Lines of a visible text layer, drawn in the widget's normal appearance the way the
    /// BCY signing tools write theirs: a composite font, two-byte codes, a `/ToUnicode` CMap.
    pub appearance: Option<Vec<String>>,
}

impl<'a> SigSpec<'a> {
    pub fn new(field: &'a str, time: OffsetDateTime) -> Self {
        SigSpec {
            field,
            sub_filter: "adbe.pkcs7.detached",
            kind_doc_timestamp: false,
            reason: None,
            location: None,
            time,
            docmdp: None,
            rect: [0, 0, 0, 0],
            contents_len: 12_000,
            indirect_contents: false,
            reserved: None,
            widget_extra: String::new(),
            extra_objects: Vec::new(),
            fieldmdp_p: None,
            appearance: None,
        }
    }
}

/// A PDF under construction: the bytes so far and what the next update must repeat.
#[derive(Clone)]
pub struct Doc {
    pub bytes: Vec<u8>,
    next_obj: u32,
    last_xref: usize,
    annots: Vec<u32>,
    fields: Vec<u32>,
    perms: Option<u32>,
    page_extra: String,
    /// Entries of the page dictionary itself, beside the fixed ones.
    page_keys: String,
    /// Entries every later catalog repeats (the `/DSS` once one is added).
    catalog_extra: String,
    /// The object number of the last signature dictionary [`Doc::sign`] wrote.
    last_sig: u32,
}

/// The text of the sample: report 494-BC/TU of the Hậu Giang Provincial Party Committee,
/// transliterated to ASCII so that a standard font shows it without embedding one.
const PAGE_TEXT: &[&str] = &[
    "DANG CONG SAN VIET NAM",
    "TINH UY HAU GIANG - So 494-BC/TU",
    "Vi Thanh, ngay 28 thang 12 nam 2023",
    "BAO CAO",
    "Tong ket cong tac nam 2023 va phuong huong nhiem vu nam 2024",
    "T/M BAN THUONG VU, PHO BI THU",
    "(kyso test fixture: not an official document)",
];

impl Doc {
    /// A one-page document; `padding` bytes of an unused image stream make it larger.
    pub fn base(padding: usize) -> Doc {
        let mut content = String::from("BT /F1 12 Tf 72 760 Td 16 TL\n");
        for line in PAGE_TEXT {
            content.push_str(&format!("({line}) Tj T*\n"));
        }
        content.push_str("ET\n");
        let mut objects: Vec<Vec<u8>> = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            Vec::new(), // the page, below
            format!(
                "<< /Length {} >>\nstream\n{}endstream",
                content.len(),
                content
            )
            .into_bytes(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        ];
        let mut page_extra = String::new();
        if padding > 0 {
            // Deterministic filler (an LCG), so the benchmark documents are the same each run.
            let mut x: u32 = 12345;
            let data: Vec<u8> = (0..padding)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let mut obj = format!(
                "<< /Type /XObject /Subtype /Image /Width {} /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 /Length {} >>\nstream\n",
                padding, padding
            )
            .into_bytes();
            obj.extend_from_slice(&data);
            obj.extend_from_slice(b"\nendstream");
            objects.push(obj);
            page_extra = " /XObject << /Im1 6 0 R >>".into();
        }
        objects[2] = page_dict(&[], &page_extra, "").into_bytes();
        let mut bytes = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, obj) in objects.iter().enumerate() {
            offsets.push(bytes.len());
            bytes.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            bytes.extend_from_slice(obj);
            bytes.extend_from_slice(b"\nendobj\n");
        }
        let xref = bytes.len();
        bytes.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in &offsets {
            bytes.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        bytes.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        Doc {
            bytes,
            next_obj: objects.len() as u32 + 1,
            last_xref: xref,
            annots: Vec::new(),
            fields: Vec::new(),
            perms: None,
            page_extra,
            page_keys: String::new(),
            catalog_extra: String::new(),
            last_sig: 0,
        }
    }

    /// Appends an incremental update with `objects` (number, body) and the trailer.
    pub fn append_update(&mut self, objects: &[(u32, Vec<u8>)]) {
        let mut offsets = Vec::new();
        for (num, body) in objects {
            offsets.push((*num, self.bytes.len()));
            self.bytes
                .extend_from_slice(format!("{num} 0 obj\n").as_bytes());
            self.bytes.extend_from_slice(body);
            self.bytes.extend_from_slice(b"\nendobj\n");
        }
        let xref = self.bytes.len();
        self.bytes
            .extend_from_slice(b"xref\n0 1\n0000000000 65535 f \n");
        for (num, off) in &offsets {
            self.bytes
                .extend_from_slice(format!("{num} 1\n{off:010} 00000 n \n").as_bytes());
        }
        self.bytes.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R /Prev {} >>\nstartxref\n{xref}\n%%EOF\n",
                self.next_obj, self.last_xref
            )
            .as_bytes(),
        );
        self.last_xref = xref;
    }

    pub fn alloc(&mut self) -> u32 {
        self.next_obj += 1;
        self.next_obj - 1
    }

    /// Adds a signature in a new incremental update. `build_contents` gets the signed bytes
    /// (the two ranges joined) and returns the DER for /Contents.
    pub fn sign(&mut self, spec: &SigSpec<'_>, build_contents: impl FnOnce(&[u8]) -> Vec<u8>) {
        let (sig, widget) = spec
            .reserved
            .unwrap_or_else(|| (self.alloc(), self.alloc()));
        self.last_sig = sig;
        self.annots.push(widget);
        self.fields.push(widget);
        let mut sig_dict = String::from("<< ");
        if spec.kind_doc_timestamp {
            sig_dict.push_str("/Type /DocTimeStamp ");
        } else {
            sig_dict.push_str("/Type /Sig ");
        }
        sig_dict.push_str(&format!(
            "/Filter /Adobe.PPKLite /SubFilter /{} ",
            spec.sub_filter
        ));
        if !spec.kind_doc_timestamp {
            sig_dict.push_str(&format!("/M {} ", pdf_text(&pdf_date(spec.time))));
            if let Some(r) = spec.reason {
                sig_dict.push_str(&format!("/Reason {} ", pdf_text(r)));
            }
            if let Some(l) = spec.location {
                sig_dict.push_str(&format!("/Location {} ", pdf_text(l)));
            }
        }
        if let Some(p) = spec.docmdp {
            sig_dict.push_str(&format!(
                "/Reference [<< /Type /SigRef /TransformMethod /DocMDP /TransformParams << /Type /TransformParams /P {p} /V /1.2 >> >>] "
            ));
            self.perms = Some(sig);
        }
        if let Some(p) = spec.fieldmdp_p {
            sig_dict.push_str(&format!(
                "/Reference [<< /Type /SigRef /TransformMethod /FieldMDP /TransformParams << /Type /TransformParams /Action /All /P {p} /V /1.2 >> >>] "
            ));
        }
        let placeholder = || {
            let mut v = b"<".to_vec();
            v.extend(std::iter::repeat_n(b'0', spec.contents_len * 2));
            v.push(b'>');
            v
        };
        let contents_obj = spec.indirect_contents.then(|| self.alloc());
        let mut sig_body;
        match contents_obj {
            Some(n) => {
                sig_dict.push_str(&format!(
                    "/ByteRange [0 0000000000 0000000000 0000000000] /Contents {n} 0 R >>"
                ));
                sig_body = sig_dict.into_bytes();
            }
            None => {
                sig_dict.push_str("/ByteRange [0 0000000000 0000000000 0000000000] /Contents ");
                sig_body = sig_dict.into_bytes();
                sig_body.extend(placeholder());
                sig_body.extend_from_slice(b" >>");
            }
        }
        let [x1, y1, x2, y2] = spec.rect;
        let mut extra_objects = Vec::new();
        let ap = match &spec.appearance {
            Some(lines) => {
                let (font, descriptor, cmap, form) =
                    (self.alloc(), self.alloc(), self.alloc(), self.alloc());
                extra_objects.extend(appearance_objects(
                    lines,
                    [x2 - x1, y2 - y1],
                    [font, descriptor, cmap, form],
                ));
                format!(" /AP << /N {form} 0 R >>")
            }
            None => String::new(),
        };
        let widget_body = format!(
            "<< /Type /Annot /Subtype /Widget /FT /Sig /T {} /V {sig} 0 R /F 132 /Rect [{x1} {y1} {x2} {y2}] /P 3 0 R{ap}{} >>",
            pdf_text(spec.field),
            spec.widget_extra
        )
        .into_bytes();
        let mut objects = vec![(sig, sig_body)];
        if let Some(n) = contents_obj {
            objects.push((n, placeholder()));
        }
        objects.extend([
            (widget, widget_body),
            (
                3,
                page_dict(&self.annots, &self.page_extra, &self.page_keys).into_bytes(),
            ),
            (1, self.catalog().into_bytes()),
        ]);
        objects.extend(extra_objects);
        objects.extend(spec.extra_objects.iter().cloned());
        let sig_offset = self.bytes.len();
        self.append_update(&objects);
        // Patch /ByteRange and /Contents in place.
        let obj = &self.bytes[sig_offset..];
        let br_at = sig_offset + find(obj, b"/ByteRange [").unwrap() + 12;
        let lt = match contents_obj {
            Some(n) => {
                sig_offset
                    + find(obj, format!("\n{n} 0 obj\n<").as_bytes()).unwrap()
                    + format!("\n{n} 0 obj\n").len()
            }
            None => sig_offset + find(obj, b"/Contents <").unwrap() + 10,
        };
        let gt = lt + 1 + spec.contents_len * 2;
        let len = self.bytes.len();
        let br = format!("0 {lt:010} {:010} {:010}", gt + 1, len - gt - 1);
        self.bytes[br_at..br_at + br.len()].copy_from_slice(br.as_bytes());
        let signed = [&self.bytes[..lt], &self.bytes[gt + 1..]].concat();
        let der = build_contents(&signed);
        assert!(
            der.len() <= spec.contents_len,
            "the /Contents placeholder is too small"
        );
        let hex = hex::encode_upper(&der);
        self.bytes[lt + 1..lt + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    }

    /// The page dictionary as the last update wrote it, with `/Contents` replaced.
    pub fn page_with_contents(&self, contents: &str) -> Vec<u8> {
        page_dict(&self.annots, &self.page_extra, &self.page_keys)
            .replace("/Contents 4 0 R", &format!("/Contents {contents}"))
            .into_bytes()
    }

    /// The page dictionary with these annotation references added after the current ones.
    pub fn page_with_annots(&mut self, extra: &[u32]) -> Vec<u8> {
        self.annots.extend_from_slice(extra);
        page_dict(&self.annots, &self.page_extra, &self.page_keys).into_bytes()
    }

    /// The catalog as the last update wrote it, with `extra` entries added.
    pub fn catalog_with(&self, extra: &str) -> Vec<u8> {
        let c = self.catalog();
        format!("{} {extra} >>", &c[..c.len() - 3]).into_bytes()
    }

    /// Entries every later catalog repeats from now on (a `/StructTreeRoot`, say).
    pub fn add_catalog_entries(&mut self, extra: &str) {
        self.catalog_extra.push_str(extra);
    }

    /// Replaces `from` by `to` in the entries every later catalog repeats.
    pub fn replace_catalog_entries(&mut self, from: &str, to: &str) {
        self.catalog_extra = self.catalog_extra.replace(from, to);
    }

    /// Entries every later page dictionary repeats from now on (`/StructParents 0`, or
    /// ` /Contents [4 0 R 9 0 R]` which then stands instead of the first content stream).
    pub fn add_page_entries(&mut self, extra: &str) {
        self.page_keys.push_str(extra);
    }

    /// The page dictionary as the next update writes it.
    pub fn page(&self) -> Vec<u8> {
        page_dict(&self.annots, &self.page_extra, &self.page_keys).into_bytes()
    }

    /// The catalog as the next update writes it.
    pub fn catalog_now(&self) -> Vec<u8> {
        self.catalog().into_bytes()
    }

    /// Adds a field (or field/widget) object to `/AcroForm /Fields` and its widget to the
    /// page's `/Annots`, for the next update's page and catalog.
    pub fn register_field(&mut self, field: u32) {
        self.fields.push(field);
        self.annots.push(field);
    }

    /// Removes annotation `annot` from the page's `/Annots` for the next update's page.
    pub fn drop_annot(&mut self, annot: u32) {
        self.annots.retain(|a| *a != annot);
    }

    /// The object number of the last signature dictionary written by [`Doc::sign`].
    pub fn last_signature_object(&self) -> u32 {
        self.last_sig
    }

    fn catalog(&self) -> String {
        let fields: Vec<String> = self.fields.iter().map(|f| format!("{f} 0 R")).collect();
        let perms = self
            .perms
            .map(|p| format!(" /Perms << /DocMDP {p} 0 R >>"))
            .unwrap_or_default();
        format!(
            "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{}] /SigFlags 3 >>{perms}{} >>",
            fields.join(" "),
            self.catalog_extra
        )
    }
}

/// The objects of a visible text layer: a Type0 font with Identity-H codes equal to the
/// characters' Unicode values, its descriptor, its `/ToUnicode` CMap, and the form that
/// writes `lines` top to bottom in a box of `size`.
fn appearance_objects(lines: &[String], size: [i32; 2], ids: [u32; 4]) -> Vec<(u32, Vec<u8>)> {
    let [font, descriptor, cmap, form] = ids;
    let mut chars: Vec<char> = lines.iter().flat_map(|l| l.chars()).collect();
    chars.sort_unstable();
    chars.dedup();
    let mut cmap_text = String::from(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n/CMapName /kyso-Test-UCS def /CMapType 2 def\n1 begincodespacerange <0000> <FFFF> endcodespacerange\n",
    );
    for chunk in chars.chunks(100) {
        cmap_text.push_str(&format!("{} beginbfchar\n", chunk.len()));
        for c in chunk {
            cmap_text.push_str(&format!("<{:04X}> <{:04X}>\n", *c as u32, *c as u32));
        }
        cmap_text.push_str("endbfchar\n");
    }
    cmap_text.push_str("endcmap CMapName currentdict /CMap defineresource pop end end\n");
    let mut content = String::from("BT /F1 9 Tf 11 TL\n");
    content.push_str(&format!("4 {} Td\n", size[1] - 12));
    for line in lines {
        let hex: String = line.chars().map(|c| format!("{:04X}", c as u32)).collect();
        content.push_str(&format!("<{hex}> Tj T*\n"));
    }
    content.push_str("ET\n");
    vec![
        (font, format!(
            "<< /Type /Font /Subtype /Type0 /BaseFont /TimesNewRoman /Encoding /Identity-H /DescendantFonts [<< /Type /Font /Subtype /CIDFontType2 /BaseFont /TimesNewRoman /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /CIDToGIDMap /Identity >>] /ToUnicode {cmap} 0 R >>"
        ).into_bytes()),
        (descriptor, b"<< /Type /FontDescriptor /FontName /TimesNewRoman /Flags 34 /FontBBox [-568 -307 2000 1007] /ItalicAngle 0 /Ascent 891 /Descent -216 /CapHeight 662 /StemV 80 >>".to_vec()),
        (cmap, format!("<< /Length {} >>\nstream\n{cmap_text}endstream", cmap_text.len()).into_bytes()),
        (form, format!(
            "<< /Type /XObject /Subtype /Form /BBox [0 0 {} {}] /Resources << /Font << /F1 {font} 0 R >> >> /Length {} >>\nstream\n{content}endstream",
            size[0], size[1], content.len()
        ).into_bytes()),
    ]
}

fn page_dict(annots: &[u32], extra: &str, keys: &str) -> String {
    let annots = if annots.is_empty() {
        String::new()
    } else {
        let refs: Vec<String> = annots.iter().map(|a| format!("{a} 0 R")).collect();
        format!(" /Annots [{}]", refs.join(" "))
    };
    // A /Contents among the page's own entries stands instead of the first content stream.
    let contents = if keys.contains("/Contents") {
        ""
    } else {
        " /Contents 4 0 R"
    };
    format!(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]{contents} /Resources << /Font << /F1 5 0 R >>{extra} >>{annots}{keys} >>"
    )
}

/// A PDF text string: a literal for ASCII, UTF-16BE with a byte order mark otherwise.
pub fn pdf_text(s: &str) -> String {
    if s.is_ascii() && !s.contains(['(', ')', '\\']) {
        format!("({s})")
    } else {
        let mut hex = String::from("<FEFF");
        for unit in s.encode_utf16() {
            hex.push_str(&format!("{unit:04X}"));
        }
        hex.push('>');
        hex
    }
}

pub fn pdf_date(t: OffsetDateTime) -> String {
    let o = t.offset();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}{sign}{:02}'{:02}'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        o.whole_hours().abs(),
        o.minutes_past_hour().abs()
    )
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The sample's signing time: 2023-12-29T10:50:25+07:00 (VN-PKI.md, "An example").
pub fn personal_time() -> OffsetDateTime {
    time::macros::datetime!(2023-12-29 10:50:25 +07:00)
}

/// The organisation signs 17 seconds later.
pub fn organisation_time() -> OffsetDateTime {
    time::macros::datetime!(2023-12-29 10:50:42 +07:00)
}

pub const PERSONAL_REASON: &str = "Trần Văn Huyến<huyentv@haugiang.gov.vn> đã ký lên văn bản này!";
pub const ORGANISATION_REASON: &str =
    "Tỉnh ủy Hậu Giang<TUHauGiangQTB1@TUHauGiang> đã ký lên văn bản này!";

/// The two-signature document of VN-PKI.md: the personal certification signature (DocMDP
/// P=2), then the organisation's in an incremental update, both with a signature timestamp.
pub fn two_signature_document(pki: &Path, padding: usize) -> Vec<u8> {
    two_signature_doc(pki, padding).bytes
}

/// [`two_signature_document`], as a [`Doc`] that more updates can be appended to.
pub fn two_signature_doc(pki: &Path, padding: usize) -> Doc {
    let personal = Identity::load(pki, "personal-rsa");
    let org = Identity::load(pki, "organisation");
    let sub = Identity::load(pki, "party-ca");
    let tsa = Identity::load(pki, "tsa");
    let _ = sub;
    let mut doc = Doc::base(padding);
    let mut s1 = SigSpec::new("Signature1", personal_time());
    s1.reason = Some(PERSONAL_REASON);
    s1.location = Some("Việt Nam");
    s1.docmdp = Some(2);
    s1.rect = [330, 80, 530, 160];
    s1.sub_filter = "adbe.pkcs7.detached";
    doc.sign(&s1, |data| {
        let mut c = CmsSpec::new(&personal, Scheme::Pkcs1, vec![]);
        c.signing_time = Some(personal_time());
        c.timestamp = Some((&tsa, personal_time() + time::Duration::seconds(1)));
        c.build(data)
    });
    let mut s2 = SigSpec::new("Signature2", organisation_time());
    s2.reason = Some(ORGANISATION_REASON);
    s2.location = Some("Việt Nam");
    s2.rect = [330, 60, 470, 200];
    doc.sign(&s2, |data| {
        let mut c = CmsSpec::new(&org, Scheme::Pkcs1, vec![]);
        c.signing_time = Some(organisation_time());
        c.timestamp = Some((&tsa, organisation_time() + time::Duration::seconds(1)));
        c.build(data)
    });
    doc
}

/// A CRL of `issuer` (its certificate names the issuer), signed with `signer`'s key (the
/// issuer's own, or another to make a forged one), listing `revoked` (serial, time).
pub fn crl(
    issuer: &Identity,
    signer: &Identity,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    revoked: &[(u32, OffsetDateTime)],
) -> Vec<u8> {
    use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
    let utc = |t: OffsetDateTime| {
        x509_cert::time::Time::UtcTime(
            UtcTime::from_unix_duration(std::time::Duration::from_secs(t.unix_timestamp() as u64))
                .unwrap(),
        )
    };
    let ec = signer.key.id() == openssl::pkey::Id::EC;
    let alg = if ec {
        AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.2.840.10045.4.3.2"),
            parameters: None,
        }
    } else {
        AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.2.840.113549.1.1.11"),
            parameters: Some(Any::null()),
        }
    };
    let entries: Vec<RevokedCert> = revoked
        .iter()
        .map(|(serial, at)| RevokedCert {
            serial_number: x509_cert::serial_number::SerialNumber::new(&serial.to_be_bytes())
                .unwrap(),
            revocation_date: utc(*at),
            crl_entry_extensions: None,
        })
        .collect();
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: alg.clone(),
        issuer: issuer.x509_cert().tbs_certificate.subject,
        this_update: utc(this_update),
        next_update: next_update.map(utc),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: None,
    };
    let scheme = if ec { Scheme::Ecdsa } else { Scheme::Pkcs1 };
    let signature = sign(signer, scheme, Digest::Sha256, &tbs.to_der().unwrap());
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: der::asn1::BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// Where a certificate says its revocation data and issuer are.
#[derive(Default, Clone)]
pub struct Urls {
    pub crl: Option<String>,
    pub ocsp: Option<String>,
    pub ca_issuers: Option<String>,
}

/// What a certificate made by [`issue`] is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ca,
    Signer,
    /// A delegated OCSP responder: with or without id-kp-OCSPSigning and ocsp-nocheck.
    OcspResponder {
        eku: bool,
        nocheck: bool,
    },
    /// A TLS server for `localhost` and 127.0.0.1 (id-kp-serverAuth).
    TlsServer,
    /// A TLS client (id-kp-clientAuth), for mutual TLS.
    TlsClient,
}

/// A certificate with a new P-256 key, issued by `issuer` (self-signed when `None`), valid
/// 2020-01-01 – 2040-01-01, naming `urls`. For tests that need certificates pointing at a
/// server they start.
pub fn issue(
    cn: &str,
    issuer: Option<&Identity>,
    role: Role,
    serial: u32,
    urls: &Urls,
) -> Identity {
    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::x509::extension::{
        AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage,
        SubjectAlternativeName, SubjectKeyIdentifier,
    };
    use openssl::x509::{X509Extension, X509NameBuilder};
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COUNTRYNAME, "VN").unwrap();
    name.append_entry_by_text_with_type(
        "O",
        "TỈNH ỦY HẬU GIANG",
        openssl::asn1::Asn1Type::UTF8STRING,
    )
    .unwrap();
    name.append_entry_by_text_with_type("CN", cn, openssl::asn1::Asn1Type::UTF8STRING)
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(serial).unwrap()).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .unwrap();
    b.set_not_before(&Asn1Time::from_str("20200101000000Z").unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_str("20400101000000Z").unwrap())
        .unwrap();
    b.set_pubkey(&key).unwrap();
    if !matches!(role, Role::Ca | Role::Signer) {
        // Responders and TLS peers sign, and only that.
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    match role {
        Role::Ca => {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        }
        Role::Signer => {
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .non_repudiation()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        }
        Role::OcspResponder { eku, nocheck } => {
            if eku {
                b.append_extension(
                    ExtendedKeyUsage::new()
                        .other("1.3.6.1.5.5.7.3.9")
                        .build()
                        .unwrap(),
                )
                .unwrap();
            }
            if nocheck {
                #[allow(deprecated)]
                b.append_extension(
                    X509Extension::new_nid(None, None, Nid::ID_PKIX_OCSP_NOCHECK, "ignored")
                        .unwrap(),
                )
                .unwrap();
            }
        }
        Role::TlsServer | Role::TlsClient => {
            let mut eku = ExtendedKeyUsage::new();
            if role == Role::TlsServer {
                eku.server_auth();
                b.append_extension(
                    SubjectAlternativeName::new()
                        .dns("localhost")
                        .ip("127.0.0.1")
                        .build(&b.x509v3_context(issuer.map(|i| &*i.cert), None))
                        .unwrap(),
                )
                .unwrap();
            } else {
                eku.client_auth();
            }
            b.append_extension(eku.build().unwrap()).unwrap();
        }
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer.map(|i| &*i.cert), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    if let Some(i) = issuer {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&i.cert), None))
            .unwrap();
        b.append_extension(aki).unwrap();
    }
    #[allow(deprecated)]
    {
        if let Some(u) = &urls.crl {
            b.append_extension(
                X509Extension::new_nid(
                    None,
                    None,
                    Nid::CRL_DISTRIBUTION_POINTS,
                    &format!("URI:{u}"),
                )
                .unwrap(),
            )
            .unwrap();
        }
        let mut aia = Vec::new();
        if let Some(u) = &urls.ocsp {
            aia.push(format!("OCSP;URI:{u}"));
        }
        if let Some(u) = &urls.ca_issuers {
            aia.push(format!("caIssuers;URI:{u}"));
        }
        if !aia.is_empty() {
            b.append_extension(
                X509Extension::new_nid(None, None, Nid::INFO_ACCESS, &aia.join(",")).unwrap(),
            )
            .unwrap();
        }
    }
    b.sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())
        .unwrap();
    Identity {
        cert: b.build(),
        key,
    }
}

/// What an OCSP response says about a certificate.
#[derive(Clone, Copy)]
pub enum OcspStatus {
    Good,
    Revoked(OffsetDateTime),
    Unknown,
}

/// A signed OCSP response about `cert` (issued by `issuer`), signed by `signer` (the issuer
/// or a delegated responder, whose certificate is then included), echoing `nonce`.
pub fn ocsp_response(
    signer: &Identity,
    cert: &Identity,
    issuer: &Identity,
    status: OcspStatus,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    nonce: Option<&[u8]>,
) -> Vec<u8> {
    use x509_ocsp::{
        BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse,
        OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
    };
    let gt = |t: OffsetDateTime| {
        OcspGeneralizedTime(
            GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                t.unix_timestamp() as u64
            ))
            .unwrap(),
        )
    };
    let issuer_cert = issuer.x509_cert();
    let issuer_key = issuer_cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.3.14.3.2.26"),
            parameters: Some(Any::null()),
        },
        issuer_name_hash: OctetString::new(
            openssl::sha::sha1(&issuer_cert.tbs_certificate.subject.to_der().unwrap()).to_vec(),
        )
        .unwrap(),
        issuer_key_hash: OctetString::new(openssl::sha::sha1(&issuer_key).to_vec()).unwrap(),
        serial_number: cert.x509_cert().tbs_certificate.serial_number,
    };
    let cert_status = match status {
        OcspStatus::Good => CertStatus::good(),
        OcspStatus::Revoked(at) => CertStatus::revoked(RevokedInfo {
            revocation_time: gt(at),
            revocation_reason: None,
        }),
        OcspStatus::Unknown => CertStatus::unknown(),
    };
    let extensions = nonce.map(|n| {
        vec![x509_cert::ext::Extension {
            extn_id: Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
            critical: false,
            extn_value: OctetString::new(OctetString::new(n.to_vec()).unwrap().to_der().unwrap())
                .unwrap(),
        }]
    });
    let tbs = ResponseData {
        version: x509_ocsp::Version::V1,
        responder_id: ResponderId::ByName(signer.x509_cert().tbs_certificate.subject),
        produced_at: gt(this_update),
        responses: vec![SingleResponse {
            cert_id,
            cert_status,
            this_update: gt(this_update),
            next_update: next_update.map(gt),
            single_extensions: None,
        }],
        response_extensions: extensions,
    };
    let (scheme, alg) = if signer.key.id() == openssl::pkey::Id::EC {
        (Scheme::Ecdsa, "1.2.840.10045.4.3.2")
    } else {
        (Scheme::Pkcs1, "1.2.840.113549.1.1.11")
    };
    let signature = sign(signer, scheme, Digest::Sha256, &tbs.to_der().unwrap());
    let delegated = signer.cert.subject_name().to_der().unwrap()
        != issuer.cert.subject_name().to_der().unwrap();
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap(alg),
            parameters: (scheme == Scheme::Pkcs1).then(Any::null),
        },
        signature: der::asn1::BitString::from_bytes(&signature).unwrap(),
        certs: delegated.then(|| vec![signer.x509_cert()]),
    };
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1"),
            response: OctetString::new(basic.to_der().unwrap()).unwrap(),
        }),
    }
    .to_der()
    .unwrap()
}

/// The nonce of a DER OCSP request, if it has one.
pub fn ocsp_request_nonce(request: &[u8]) -> Option<Vec<u8>> {
    let req = x509_ocsp::OcspRequest::from_der(request).ok()?;
    let ext = req
        .tbs_request
        .request_extensions?
        .into_iter()
        .find(|e| e.extn_id == Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2"))?;
    OctetString::from_der(ext.extn_value.as_bytes())
        .ok()
        .map(|o| o.as_bytes().to_vec())
}

impl Doc {
    /// Appends an incremental update with a `/DSS` holding these certificates, CRLs and OCSP
    /// responses (PAdES B-LT: the validation data beside the signatures).
    pub fn add_dss(&mut self, certs: &[Vec<u8>], crls: &[Vec<u8>], ocsp: &[Vec<u8>]) {
        let dss = self.alloc();
        let mut objects = Vec::new();
        let mut arrays = String::new();
        for (key, items) in [("Certs", certs), ("CRLs", crls), ("OCSPs", ocsp)] {
            if items.is_empty() {
                continue;
            }
            let mut refs = Vec::new();
            for der in items {
                let n = self.alloc();
                let mut body = format!("<< /Length {} >>\nstream\n", der.len()).into_bytes();
                body.extend_from_slice(der);
                body.extend_from_slice(b"\nendstream");
                objects.push((n, body));
                refs.push(format!("{n} 0 R"));
            }
            arrays.push_str(&format!(" /{key} [{}]", refs.join(" ")));
        }
        objects.push((dss, format!("<< /Type /DSS{arrays} >>").into_bytes()));
        self.catalog_extra = format!(" /DSS {dss} 0 R");
        objects.push((1, self.catalog().into_bytes()));
        self.append_update(&objects);
    }
}
