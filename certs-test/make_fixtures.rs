//! Generates the test PKI (`certs-test/pki/`) and the signed PDFs (`certs-test/pdf/`) that
//! kyso's tests read. Run from the repository root:
//!
//! ```text
//! cargo run --example make-fixtures            # PDFs only, with the committed keys
//! cargo run --example make-fixtures -- --pki   # new keys and certificates, then PDFs
//! ```
//!
//! Dates are fixed (README.md beside this file), so the committed files only change when
//! the keys do. The keys are test keys and are committed on purpose: later fixtures (CRLs,
//! OCSP responses) are signed with them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture.rs"]
mod fixture;

use std::path::Path;

use fixture::*;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Extension, X509NameBuilder, X509};

enum KeyKind {
    Rsa(u32),
    Ec(Nid),
    Ed25519,
}

enum Role {
    Root,
    SubCa,
    Personal,
    Organisation,
    Tsa,
    Ocsp,
    WrongKeyUsage,
}

struct Spec {
    file: &'static str,
    issuer: Option<&'static str>,
    subject: &'static [(&'static str, &'static str)],
    key: KeyKind,
    role: Role,
    not_before: &'static str,
    not_after: &'static str,
    serial: u32,
}

const ROOT_NAME: &[(&str, &str)] = &[
    ("C", "VN"),
    ("O", "Ban Cơ yếu Chính phủ"),
    ("CN", "kyso Test RootCA chuyên dùng G2"),
];
const PARTY_CA: &[(&str, &str)] = &[
    ("C", "VN"),
    ("O", "Ban Cơ yếu Chính phủ"),
    ("CN", "kyso Test CA phục vụ các cơ quan Đảng G2"),
];
const HUYEN: &[(&str, &str)] = &[
    ("C", "VN"),
    ("L", "Hậu Giang"),
    ("O", "TỈNH ỦY HẬU GIANG"),
    ("OU", "VĂN PHÒNG TỈNH ỦY"),
    ("CN", "Trần Văn Huyến"),
    ("emailAddress", "huyentv@haugiang.gov.vn"),
];

fn specs() -> Vec<Spec> {
    let ee = |file, subject, key, serial| Spec {
        file,
        issuer: Some("party-ca"),
        subject,
        key,
        role: Role::Personal,
        not_before: "20230101000000Z",
        not_after: "20280101000000Z",
        serial,
    };
    vec![
        Spec {
            file: "root-ca",
            issuer: None,
            subject: ROOT_NAME,
            key: KeyKind::Rsa(4096),
            role: Role::Root,
            not_before: "20200101000000Z",
            not_after: "20450101000000Z",
            serial: 1,
        },
        Spec {
            file: "party-ca",
            issuer: Some("root-ca"),
            subject: PARTY_CA,
            key: KeyKind::Rsa(4096),
            role: Role::SubCa,
            not_before: "20200101000000Z",
            not_after: "20400101000000Z",
            serial: 2,
        },
        ee("personal-rsa", HUYEN, KeyKind::Rsa(2048), 0x1001),
        ee(
            "personal-ecdsa-p384",
            &[
                ("C", "VN"),
                ("L", "Hà Nội"),
                ("O", "BAN TUYÊN GIÁO TRUNG ƯƠNG"),
                ("OU", "VỤ TỔNG HỢP"),
                ("CN", "Nguyễn Thị Lan"),
                ("emailAddress", "lannt@tuyengiao.vn"),
            ],
            KeyKind::Ec(Nid::SECP384R1),
            0x1002,
        ),
        ee(
            "personal-ecdsa-p256",
            &[
                ("C", "VN"),
                ("L", "Hà Nội"),
                ("O", "BAN TỔ CHỨC TRUNG ƯƠNG"),
                ("CN", "Lê Văn Bình"),
                ("emailAddress", "binhlv@btctw.vn"),
            ],
            KeyKind::Ec(Nid::X9_62_PRIME256V1),
            0x1003,
        ),
        ee(
            "personal-ecdsa-p521",
            &[
                ("C", "VN"),
                ("L", "Hà Nội"),
                ("O", "BAN TỔ CHỨC TRUNG ƯƠNG"),
                ("CN", "Phạm Minh Châu"),
                ("emailAddress", "chaupm@btctw.vn"),
            ],
            KeyKind::Ec(Nid::SECP521R1),
            0x1004,
        ),
        ee(
            "personal-brainpool",
            &[
                ("C", "VN"),
                ("L", "Hà Nội"),
                ("O", "BAN TỔ CHỨC TRUNG ƯƠNG"),
                ("CN", "Đinh Văn Brainpool"),
                ("emailAddress", "brainpool@btctw.vn"),
            ],
            KeyKind::Ec(Nid::BRAINPOOL_P384R1),
            0x100D,
        ),
        ee(
            "personal-ed25519",
            &[
                ("C", "VN"),
                ("L", "Hà Nội"),
                ("O", "BAN TỔ CHỨC TRUNG ƯƠNG"),
                ("CN", "Võ Thị Hoa"),
                ("emailAddress", "hoavt@btctw.vn"),
            ],
            KeyKind::Ed25519,
            0x1005,
        ),
        Spec {
            role: Role::Organisation,
            ..ee(
                "organisation",
                &[
                    ("C", "VN"),
                    ("L", "Hậu Giang"),
                    ("O", "Tỉnh ủy Hậu Giang"),
                    ("CN", "Tỉnh ủy Hậu Giang"),
                    ("emailAddress", "TUHauGiangQTB1@TUHauGiang"),
                ],
                KeyKind::Rsa(2048),
                0x1006,
            )
        },
        Spec {
            role: Role::Organisation,
            ..ee(
                "organisation-other",
                &[
                    ("C", "VN"),
                    ("L", "Cần Thơ"),
                    ("O", "Tỉnh ủy Cần Thơ"),
                    ("CN", "Tỉnh ủy Cần Thơ"),
                    ("emailAddress", "TUCanThoQTB1@TUCanTho"),
                ],
                KeyKind::Rsa(2048),
                0x100C,
            )
        },
        Spec {
            role: Role::Tsa,
            ..ee(
                "tsa",
                &[
                    ("C", "VN"),
                    ("O", "Ban Cơ yếu Chính phủ"),
                    ("CN", "kyso Test Time Stamping Authority"),
                ],
                KeyKind::Rsa(2048),
                0x1007,
            )
        },
        Spec {
            role: Role::Ocsp,
            ..ee(
                "ocsp-signer",
                &[
                    ("C", "VN"),
                    ("O", "Ban Cơ yếu Chính phủ"),
                    ("CN", "kyso Test OCSP Responder"),
                ],
                KeyKind::Rsa(2048),
                0x1008,
            )
        },
        ee(
            "personal-revoked",
            &[
                ("C", "VN"),
                ("L", "Hậu Giang"),
                ("O", "TỈNH ỦY HẬU GIANG"),
                ("CN", "Đỗ Văn Thu Hồi"),
                ("emailAddress", "thuhoi@haugiang.gov.vn"),
            ],
            KeyKind::Rsa(2048),
            0x1009,
        ),
        Spec {
            not_before: "20210101000000Z",
            not_after: "20220101000000Z",
            ..ee(
                "personal-expired",
                &[
                    ("C", "VN"),
                    ("L", "Hậu Giang"),
                    ("O", "TỈNH ỦY HẬU GIANG"),
                    ("CN", "Hồ Văn Hết Hạn"),
                    ("emailAddress", "hethan@haugiang.gov.vn"),
                ],
                KeyKind::Rsa(2048),
                0x100A,
            )
        },
        Spec {
            role: Role::WrongKeyUsage,
            ..ee(
                "personal-wrong-ku",
                &[
                    ("C", "VN"),
                    ("L", "Hậu Giang"),
                    ("O", "TỈNH ỦY HẬU GIANG"),
                    ("CN", "Mai Văn Mã Hóa"),
                    ("emailAddress", "mahoa@haugiang.gov.vn"),
                ],
                KeyKind::Rsa(2048),
                0x100B,
            )
        },
        Spec {
            file: "other-root",
            issuer: None,
            subject: &[
                ("C", "VN"),
                ("O", "Không tin cậy"),
                ("CN", "kyso Test Untrusted Root"),
            ],
            key: KeyKind::Rsa(2048),
            role: Role::Root,
            not_before: "20200101000000Z",
            not_after: "20450101000000Z",
            serial: 1,
        },
        Spec {
            issuer: Some("other-root"),
            ..ee(
                "untrusted-signer",
                &[
                    ("C", "VN"),
                    ("L", "Hà Nội"),
                    ("O", "CÔNG TY KHÔNG TIN CẬY"),
                    ("CN", "Ngô Văn Lạ"),
                    ("emailAddress", "la@example.vn"),
                ],
                KeyKind::Rsa(2048),
                0x2001,
            )
        },
    ]
}

fn new_key(kind: &KeyKind) -> PKey<Private> {
    match kind {
        KeyKind::Rsa(bits) => PKey::from_rsa(Rsa::generate(*bits).unwrap()).unwrap(),
        KeyKind::Ec(nid) => {
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(*nid).unwrap()).unwrap())
                .unwrap()
        }
        KeyKind::Ed25519 => PKey::generate_ed25519().unwrap(),
    }
}

/// Makes the PKI of [`specs`]: every certificate and key anew, or with `only_missing` just
/// those not there yet (a certificate added to the list), leaving the others as they are.
fn make_pki(dir: &Path, only_missing: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for spec in specs() {
        if only_missing && dir.join(format!("{}.pem", spec.file)).exists() {
            continue;
        }
        let key = new_key(&spec.key);
        let issuer = spec.issuer.map(|i| Identity::load(dir, i));
        let mut name = X509NameBuilder::new().unwrap();
        for (k, v) in spec.subject {
            match *k {
                "C" => name.append_entry_by_nid(Nid::COUNTRYNAME, v).unwrap(),
                "emailAddress" => name
                    .append_entry_by_nid(Nid::PKCS9_EMAILADDRESS, v)
                    .unwrap(),
                other => name
                    .append_entry_by_text_with_type(other, v, openssl::asn1::Asn1Type::UTF8STRING)
                    .unwrap(),
            }
        }
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(
            &Asn1Integer::from_bn(&BigNum::from_u32(spec.serial).unwrap()).unwrap(),
        )
        .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.as_ref().map_or(&name, |i| i.cert.subject_name()))
            .unwrap();
        b.set_not_before(&Asn1Time::from_str(spec.not_before).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_str(spec.not_after).unwrap())
            .unwrap();
        b.set_pubkey(&key).unwrap();
        match spec.role {
            Role::Root => {
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
            Role::SubCa => {
                b.append_extension(
                    BasicConstraints::new()
                        .critical()
                        .ca()
                        .pathlen(0)
                        .build()
                        .unwrap(),
                )
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
            Role::Personal | Role::Organisation => {
                b.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .non_repudiation()
                        .key_encipherment()
                        .build()
                        .unwrap(),
                )
                .unwrap();
                // No document-signing EKU: the BCY's certificates have none (VN-PKI.md).
                b.append_extension(
                    ExtendedKeyUsage::new()
                        .client_auth()
                        .email_protection()
                        .other("1.3.6.1.4.1.311.20.2.2")
                        .build()
                        .unwrap(),
                )
                .unwrap();
            }
            Role::Tsa => {
                b.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .non_repudiation()
                        .build()
                        .unwrap(),
                )
                .unwrap();
                b.append_extension(
                    ExtendedKeyUsage::new()
                        .critical()
                        .time_stamping()
                        .build()
                        .unwrap(),
                )
                .unwrap();
            }
            Role::Ocsp => {
                b.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .build()
                        .unwrap(),
                )
                .unwrap();
                b.append_extension(
                    ExtendedKeyUsage::new()
                        .critical()
                        .other("1.3.6.1.5.5.7.3.9")
                        .build()
                        .unwrap(),
                )
                .unwrap();
                #[allow(deprecated)]
                b.append_extension(
                    X509Extension::new_nid(None, None, Nid::ID_PKIX_OCSP_NOCHECK, "ignored")
                        .unwrap(),
                )
                .unwrap();
            }
            Role::WrongKeyUsage => {
                b.append_extension(
                    KeyUsage::new()
                        .critical()
                        .key_encipherment()
                        .build()
                        .unwrap(),
                )
                .unwrap();
            }
        }
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(issuer.as_ref().map(|i| &*i.cert), None))
            .unwrap();
        b.append_extension(ski).unwrap();
        if let Some(i) = &issuer {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(Some(&i.cert), None))
                .unwrap();
            b.append_extension(aki).unwrap();
            #[allow(deprecated)]
            b.append_extension(
                X509Extension::new_nid(
                    None,
                    None,
                    Nid::CRL_DISTRIBUTION_POINTS,
                    &format!("URI:http://127.0.0.1:8080/crl/{}.crl", spec.issuer.unwrap()),
                )
                .unwrap(),
            )
            .unwrap();
        }
        let signing_key = issuer.as_ref().map_or(&key, |i| &i.key);
        let md = if matches!(spec.key, KeyKind::Ed25519) && issuer.is_none() {
            MessageDigest::null()
        } else {
            MessageDigest::sha256()
        };
        b.sign(signing_key, md).unwrap();
        let cert = b.build();
        std::fs::write(
            dir.join(format!("{}.pem", spec.file)),
            cert.to_pem().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{}.key.pem", spec.file)),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        let subject: Vec<String> = cert
            .subject_name()
            .entries()
            .map(|e| e.data().to_string().unwrap_or_default())
            .collect();
        println!("pki/{}.pem  {}", spec.file, subject.join(", "));
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("pdf/{name}  {} bytes", bytes.len());
}

/// One signature on the base document with `cms` options set by `tweak`.
fn single(
    pki: &Path,
    signer: &str,
    scheme: Scheme,
    sub_filter: &str,
    tweak: impl Fn(&mut CmsSpec<'_>),
) -> Vec<u8> {
    single_embedding(pki, signer, &[], scheme, sub_filter, tweak)
}

/// [`single`], with the certificates `embed` added to the CMS.
fn single_embedding(
    pki: &Path,
    signer: &str,
    embed: &[&str],
    scheme: Scheme,
    sub_filter: &str,
    tweak: impl Fn(&mut CmsSpec<'_>),
) -> Vec<u8> {
    let id = Identity::load(pki, signer);
    let extra: Vec<Identity> = embed.iter().map(|n| Identity::load(pki, n)).collect();
    let mut doc = Doc::base(0);
    let mut s = SigSpec::new("Signature1", personal_time());
    s.sub_filter = sub_filter;
    s.location = Some("Việt Nam");
    doc.sign(&s, |data| {
        let mut c = CmsSpec::new(&id, scheme, extra.iter().collect());
        c.signing_time = Some(personal_time());
        tweak(&mut c);
        c.build(data)
    });
    doc.bytes
}

fn make_pdfs(pki: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    make_vn_cases(pki, out);
    make_real_world_cases(pki, out);
    let two = two_signature_document(pki, 0);
    write(out, "two-signatures.pdf", &two);
    write(out, "unsigned.pdf", &Doc::base(0).bytes);

    // One signature of each SubFilter and algorithm.
    write(
        out,
        "cades-rsa-pss.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pss,
            "ETSI.CAdES.detached",
            |_| {},
        ),
    );
    // This one carries its intermediate, so the chain is built from the CMS.
    let p384 = single_embedding(
        pki,
        "personal-ecdsa-p384",
        &["party-ca"],
        Scheme::Ecdsa,
        "ETSI.CAdES.detached",
        |c| {
            c.digest = Digest::Sha384;
        },
    );
    write(out, "cades-ecdsa-p384.pdf", &p384);
    write(
        out,
        "cades-ecdsa-p256.pdf",
        &single(
            pki,
            "personal-ecdsa-p256",
            Scheme::Ecdsa,
            "ETSI.CAdES.detached",
            |_| {},
        ),
    );
    write(
        out,
        "cades-ecdsa-p521.pdf",
        &single(
            pki,
            "personal-ecdsa-p521",
            Scheme::Ecdsa,
            "ETSI.CAdES.detached",
            |c| c.digest = Digest::Sha512,
        ),
    );
    write(
        out,
        "cades-ed25519.pdf",
        &single(
            pki,
            "personal-ed25519",
            Scheme::Ed25519,
            "ETSI.CAdES.detached",
            |c| c.digest = Digest::Sha512,
        ),
    );
    write(
        out,
        "pkcs7-rsa-sha1.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |c| c.digest = Digest::Sha1,
        ),
    );
    write(
        out,
        "pkcs7-rsa-sha512.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |c| c.digest = Digest::Sha512,
        ),
    );
    write(
        out,
        "pkcs7-no-signed-attrs.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |c| c.signed_attrs = false,
        ),
    );
    write(
        out,
        "pkcs7-ski-sid.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |c| c.ski_sid = true,
        ),
    );
    write(
        out,
        "pkcs7-no-ess.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |c| c.ess_v2 = false,
        ),
    );
    // adbe.pkcs7.sha1: the encapsulated content is the SHA-1 of the ranges.
    {
        let id = Identity::load(pki, "personal-rsa");
        let mut doc = Doc::base(0);
        let mut s = SigSpec::new("Signature1", personal_time());
        s.sub_filter = "adbe.pkcs7.sha1";
        doc.sign(&s, |data| {
            let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
            c.digest = Digest::Sha1;
            c.signing_time = Some(personal_time());
            c.econtent = Some(Digest::Sha1.hash(&[data]));
            c.build(data)
        });
        write(out, "pkcs7-sha1.pdf", &doc.bytes);
    }
    // A document timestamp alone (ETSI.RFC3161).
    {
        let tsa = Identity::load(pki, "tsa");
        let mut doc = Doc::base(0);
        let mut s = SigSpec::new("DocTimeStamp1", personal_time());
        s.sub_filter = "ETSI.RFC3161";
        s.kind_doc_timestamp = true;
        doc.sign(&s, |data| {
            timestamp_token(&tsa, Digest::Sha256, data, personal_time())
        });
        write(out, "doc-timestamp.pdf", &doc.bytes);
    }

    // Timestamps: a tool writing Vietnam time with a UTC label (claimed 7 hours after the
    // proof), a signature timestamp by a document signer, a document timestamp likewise.
    {
        let id = Identity::load(pki, "personal-rsa");
        let tsa = Identity::load(pki, "tsa");
        let not_tsa = Identity::load(pki, "personal-ecdsa-p256");
        let mut doc = Doc::base(0);
        doc.sign(&SigSpec::new("Signature1", personal_time()), |data| {
            let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
            c.signing_time = Some(personal_time().replace_offset(time::UtcOffset::UTC));
            c.timestamp = Some((&tsa, personal_time() + time::Duration::seconds(1)));
            c.build(data)
        });
        write(out, "ts-local-time-as-utc.pdf", &doc.bytes);
        let mut doc = Doc::base(0);
        doc.sign(&SigSpec::new("Signature1", personal_time()), |data| {
            let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
            c.signing_time = Some(personal_time());
            c.timestamp = Some((&not_tsa, personal_time() + time::Duration::seconds(1)));
            c.build(data)
        });
        write(out, "ts-not-a-tsa.pdf", &doc.bytes);
        let mut doc = Doc::base(0);
        let mut s = SigSpec::new("DocTimeStamp1", personal_time());
        s.sub_filter = "ETSI.RFC3161";
        s.kind_doc_timestamp = true;
        doc.sign(&s, |data| {
            timestamp_token(&id, Digest::Sha256, data, personal_time())
        });
        write(out, "ts-doc-timestamp-not-a-tsa.pdf", &doc.bytes);
    }

    // Trust variants.
    write(
        out,
        "expired-signer.pdf",
        &single(
            pki,
            "personal-expired",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |_| {},
        ),
    );
    write(
        out,
        "untrusted-root.pdf",
        &single(
            pki,
            "untrusted-signer",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |_| {},
        ),
    );
    write(
        out,
        "wrong-key-usage.pdf",
        &single(
            pki,
            "personal-wrong-ku",
            Scheme::Pkcs1,
            "adbe.pkcs7.detached",
            |_| {},
        ),
    );

    // A later update that overwrites the personal signature's dictionary (object 6) with an
    // empty one and drops /V from its field (object 7): the final revision shows only the
    // organisation's signature, but the first one was there.
    let mut removed = two_signature_doc(pki, 0);
    removed.append_update(&[
        (6, b"<< >>".to_vec()),
        (7, b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Signature1) /F 132 /Rect [0 0 0 0] /P 3 0 R >>".to_vec()),
    ]);
    write(out, "signature-removed.pdf", &removed.bytes);

    make_modification_cases(pki, out);
    make_revocation_cases(pki, out);

    // Broken ones.
    let mut flipped = two.clone();
    let at = find(&flipped, b"Tong ket").unwrap();
    flipped[at] ^= 0x20; // "Tong" -> "tong": one bit of the page content
    write(out, "flipped-byte.pdf", &flipped);

    let wrong_key = {
        let id = Identity::load(pki, "personal-rsa");
        let other = Identity::load(pki, "organisation");
        let mut doc = Doc::base(0);
        let s = SigSpec::new("Signature1", personal_time());
        doc.sign(&s, |data| {
            // The certificate says personal-rsa; the signature is by the organisation's key.
            let with_cert = CmsSpec::new(&id, Scheme::Pkcs1, vec![]).build(data);
            let with_key = CmsSpec::new(&other, Scheme::Pkcs1, vec![]).build(data);
            splice_signature(&with_cert, &with_key)
        });
        doc.bytes
    };
    write(out, "wrong-signature-key.pdf", &wrong_key);

    let mut zeroed = single(
        pki,
        "personal-rsa",
        Scheme::Pkcs1,
        "adbe.pkcs7.detached",
        |_| {},
    );
    let (lt, gt) = contents_span(&zeroed);
    zeroed[lt + 1..gt].fill(b'0');
    write(out, "zeroed-contents.pdf", &zeroed);

    let mut garbage = single(
        pki,
        "personal-rsa",
        Scheme::Pkcs1,
        "adbe.pkcs7.detached",
        |_| {},
    );
    let (lt, _) = contents_span(&garbage);
    garbage[lt + 1..lt + 41].copy_from_slice(b"3082FFFF0609DEADBEEF0102030405060708090A");
    write(out, "garbage-cms.pdf", &garbage);

    // Crafted ByteRanges whose digest matches the bogus ranges: structurally wrong, so they
    // must fail as FORMAT_FAILURE even though the cryptography holds.
    write(
        out,
        "byterange-gap-too-big.pdf",
        &crafted_byte_range(pki, |lt, gt, len| [0, lt - 40, gt + 1, len - gt - 1]),
    );
    write(
        out,
        "byterange-not-from-zero.pdf",
        &crafted_byte_range(pki, |lt, gt, len| [1, lt - 1, gt + 1, len - gt - 1]),
    );
    write(
        out,
        "byterange-tail-uncovered.pdf",
        &crafted_byte_range(pki, |lt, gt, len| [0, lt, gt + 1, len - gt - 1 - 60]),
    );
}

/// The personal signature on the base document, certifying with DocMDP `p` when given.
fn personal_signed(pki: &Path, docmdp: Option<u8>) -> Doc {
    let id = Identity::load(pki, "personal-rsa");
    let mut doc = Doc::base(0);
    let mut s = SigSpec::new("Signature1", personal_time());
    s.reason = Some(PERSONAL_REASON);
    s.location = Some("Việt Nam");
    s.docmdp = docmdp;
    s.rect = [330, 80, 530, 160];
    doc.sign(&s, |data| {
        let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
        c.signing_time = Some(personal_time());
        c.build(data)
    });
    doc
}

/// Adds the organisation's signature in a new update.
fn organisation_signs(pki: &Path, doc: &mut Doc) {
    let org = Identity::load(pki, "organisation");
    let mut s = SigSpec::new("Signature2", organisation_time());
    s.reason = Some(ORGANISATION_REASON);
    s.location = Some("Việt Nam");
    doc.sign(&s, |data| {
        let mut c = CmsSpec::new(&org, Scheme::Pkcs1, vec![]);
        c.signing_time = Some(organisation_time());
        c.build(data)
    });
}

/// Adds a sticky-note annotation to the page in a new update.
fn annotate(doc: &mut Doc) {
    let note = doc.alloc();
    let page = doc.page_with_annots(&[note]);
    doc.append_update(&[
        (
            note,
            b"<< /Type /Annot /Subtype /Text /Rect [50 700 70 720] /Contents (Da xem) /P 3 0 R >>"
                .to_vec(),
        ),
        (3, page),
    ]);
}

/// What later updates do to a signed document (issue "Document integrity"), one file each.
fn make_modification_cases(pki: &Path, out: &Path) {
    // Content overlay: a new content stream appended to the page's /Contents.
    let mut doc = personal_signed(pki, None);
    let overlay = doc.alloc();
    let text =
        "1 1 1 rg 60 560 480 60 re f BT /F1 20 Tf 72 580 Td (SO LIEU DA DUOC DIEU CHINH) Tj ET";
    let page = doc.page_with_contents(&format!("[4 0 R {overlay} 0 R]"));
    doc.append_update(&[
        (
            overlay,
            format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()).into_bytes(),
        ),
        (3, page),
    ]);
    write(out, "mod-content-overlay.pdf", &doc.bytes);

    // A page added: the page tree gains a second page.
    let mut doc = personal_signed(pki, None);
    let page2 = doc.alloc();
    doc.append_update(&[
        (page2, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec()),
        (2, format!("<< /Type /Pages /Kids [3 0 R {page2} 0 R] /Count 2 >>").into_bytes()),
    ]);
    write(out, "mod-page-added.pdf", &doc.bytes);

    // DocMDP P=1 (no changes), then another signature.
    let mut doc = personal_signed(pki, Some(1));
    organisation_signs(pki, &mut doc);
    write(out, "mod-p1-then-signature.pdf", &doc.bytes);

    // DocMDP P=2 (form filling and signing), then an annotation.
    let mut doc = personal_signed(pki, Some(2));
    annotate(&mut doc);
    write(out, "mod-p2-then-annotation.pdf", &doc.bytes);

    // DocMDP P=3 allows annotations.
    let mut doc = personal_signed(pki, Some(3));
    annotate(&mut doc);
    write(out, "mod-p3-then-annotation.pdf", &doc.bytes);

    // No DocMDP: an annotation-only update keeps the document valid, with a warning.
    let mut doc = personal_signed(pki, None);
    annotate(&mut doc);
    write(out, "mod-annotation-only.pdf", &doc.bytes);

    // A DSS-only update (validation data after signing, as PAdES-LT adds).
    let mut doc = personal_signed(pki, Some(2));
    let (dss, cert) = (doc.alloc(), doc.alloc());
    let der = Identity::load(pki, "party-ca").cert.to_der().unwrap();
    let mut cert_obj = format!("<< /Length {} >>\nstream\n", der.len()).into_bytes();
    cert_obj.extend_from_slice(&der);
    cert_obj.extend_from_slice(b"\nendstream");
    let catalog = doc.catalog_with(&format!("/DSS {dss} 0 R"));
    doc.append_update(&[
        (cert, cert_obj),
        (
            dss,
            format!("<< /Type /DSS /Certs [{cert} 0 R] >>").into_bytes(),
        ),
        (1, catalog),
    ]);
    write(out, "mod-dss-only.pdf", &doc.bytes);

    // The signature dictionary rewritten: same ByteRange and /Contents, forged /Reason.
    let mut doc = personal_signed(pki, None);
    let sig = doc.last_signature_object();
    let start = find(&doc.bytes, format!("\n{sig} 0 obj\n").as_bytes()).unwrap() + 1;
    let end = start + find(&doc.bytes[start..], b"\nendobj").unwrap();
    let original = String::from_utf8(doc.bytes[start..end].to_vec()).unwrap();
    let body = original.split_once("obj\n").unwrap().1.to_owned();
    let forged = body.replace(
        &pdf_text(PERSONAL_REASON),
        &pdf_text("Nguyễn Văn Giả<gia@example.vn> đã ký lên văn bản này!"),
    );
    doc.append_update(&[(sig, forged.into_bytes())]);
    write(out, "mod-signature-dictionary-rewritten.pdf", &doc.bytes);

    // Shadow hide: the signed page content stream itself overwritten, covering a line.
    let mut doc = personal_signed(pki, None);
    let hidden = "BT /F1 12 Tf 72 760 Td 16 TL (DANG CONG SAN VIET NAM) Tj T* (TINH UY HAU GIANG - So 494-BC/TU) Tj ET 1 1 1 rg 60 600 480 100 re f";
    doc.append_update(&[(
        4,
        format!(
            "<< /Length {} >>\nstream\n{hidden}\nendstream",
            hidden.len()
        )
        .into_bytes(),
    )]);
    write(out, "mod-shadow-hide.pdf", &doc.bytes);

    // Shadow replace: the font of the signed page overwritten by another one.
    let mut doc = personal_signed(pki, None);
    doc.append_update(&[(
        5,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /ZapfDingbats >>".to_vec(),
    )]);
    write(out, "mod-shadow-replace.pdf", &doc.bytes);
}

/// The CRLs of `certs-test/crl/` and the documents signed by the certificate they revoke.
fn make_revocation_cases(pki: &Path, out: &Path) {
    use time::macros::datetime;
    let dir = out.parent().unwrap().join("crl");
    std::fs::create_dir_all(&dir).unwrap();
    let party = Identity::load(pki, "party-ca");
    let root = Identity::load(pki, "root-ca");
    let org = Identity::load(pki, "organisation");
    let revoked_serial = 0x1009; // personal-revoked.pem
    let july = datetime!(2024-07-01 00:00:00 UTC);
    let crls = [
        (
            "party-ca-revoked-after.crl",
            crl(
                &party,
                &party,
                july,
                Some(datetime!(2024-08-01 00:00:00 UTC)),
                &[(revoked_serial, datetime!(2024-06-01 00:00:00 UTC))],
            ),
        ),
        (
            "party-ca-revoked-before.crl",
            crl(
                &party,
                &party,
                july,
                Some(datetime!(2024-08-01 00:00:00 UTC)),
                &[(revoked_serial, datetime!(2023-06-01 00:00:00 UTC))],
            ),
        ),
        (
            "party-ca-good.crl",
            crl(
                &party,
                &party,
                datetime!(2024-01-15 00:00:00 UTC),
                Some(datetime!(2024-02-15 00:00:00 UTC)),
                &[],
            ),
        ),
        (
            "party-ca-stale.crl",
            crl(
                &party,
                &party,
                datetime!(2022-01-01 00:00:00 UTC),
                Some(datetime!(2022-02-01 00:00:00 UTC)),
                &[],
            ),
        ),
        (
            "party-ca-wrong-key.crl",
            crl(
                &party,
                &org,
                datetime!(2024-01-15 00:00:00 UTC),
                Some(datetime!(2024-02-15 00:00:00 UTC)),
                &[],
            ),
        ),
        (
            "root-ca-good.crl",
            crl(
                &root,
                &root,
                datetime!(2024-01-15 00:00:00 UTC),
                Some(datetime!(2024-07-15 00:00:00 UTC)),
                &[],
            ),
        ),
    ];
    for (name, der) in &crls {
        std::fs::write(dir.join(name), der).unwrap();
        println!("crl/{name}  {} bytes", der.len());
    }
    let id = Identity::load(pki, "personal-revoked");
    let tsa = Identity::load(pki, "tsa");
    let sign_revoked = |timestamped: bool, embedded: Vec<Vec<u8>>| {
        let mut doc = Doc::base(0);
        doc.sign(&SigSpec::new("Signature1", personal_time()), |data| {
            let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
            c.signing_time = Some(personal_time());
            if timestamped {
                c.timestamp = Some((&tsa, personal_time() + time::Duration::seconds(1)));
            }
            c.crls = embedded.clone();
            c.build(data)
        });
        doc
    };
    write(
        out,
        "revoked-signer-timestamped.pdf",
        &sign_revoked(true, vec![]).bytes,
    );
    write(
        out,
        "revoked-signer.pdf",
        &sign_revoked(false, vec![]).bytes,
    );
    // The CRL inside the signature (CMS `crls`), and in a /DSS added by a later update
    // (PAdES B-LT: the validation data beside the signature).
    write(
        out,
        "revoked-signer-crl-in-signature.pdf",
        &sign_revoked(true, vec![crls[0].1.clone()]).bytes,
    );
    let mut doc = sign_revoked(true, vec![]);
    let (dss, stream) = (doc.alloc(), doc.alloc());
    let mut body = format!("<< /Length {} >>\nstream\n", crls[0].1.len()).into_bytes();
    body.extend_from_slice(&crls[0].1);
    body.extend_from_slice(b"\nendstream");
    let catalog = doc.catalog_with(&format!("/DSS {dss} 0 R"));
    doc.append_update(&[
        (stream, body),
        (
            dss,
            format!("<< /Type /DSS /CRLs [{stream} 0 R] >>").into_bytes(),
        ),
        (1, catalog),
    ]);
    write(out, "revoked-signer-crl-in-dss.pdf", &doc.bytes);
}

/// The /Contents hex string's delimiters `<` and `>` of the (single) signature.
fn contents_span(bytes: &[u8]) -> (usize, usize) {
    let lt = find(bytes, b"/Contents <").unwrap() + 10;
    let gt = lt + find(&bytes[lt..], b">").unwrap();
    (lt, gt)
}

/// Replaces the signature value of `cms` by the one of `donor` (same length: both RSA-2048).
fn splice_signature(cms: &[u8], donor: &[u8]) -> Vec<u8> {
    let sig = |d: &[u8]| {
        use der::Decode;
        let info = cms::content_info::ContentInfo::from_der(d).unwrap();
        let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
        signed
            .signer_infos
            .0
            .get(0)
            .unwrap()
            .signature
            .as_bytes()
            .to_vec()
    };
    let (a, b) = (sig(cms), sig(donor));
    let at = find(cms, &a).unwrap();
    let mut out = cms.to_vec();
    out[at..at + a.len()].copy_from_slice(&b);
    out
}

/// A single-signature file whose /ByteRange is rewritten by `ranges(lt, gt, len)` and whose
/// CMS is then made over exactly those (bogus) ranges.
fn crafted_byte_range(pki: &Path, ranges: impl Fn(usize, usize, usize) -> [usize; 4]) -> Vec<u8> {
    let id = Identity::load(pki, "personal-rsa");
    let mut bytes = single(
        pki,
        "personal-rsa",
        Scheme::Pkcs1,
        "adbe.pkcs7.detached",
        |_| {},
    );
    let (lt, gt) = contents_span(&bytes);
    let r = ranges(lt, gt, bytes.len());
    let text = format!("{} {:010} {:010} {:010}", r[0], r[1], r[2], r[3]);
    let at = find(&bytes, b"/ByteRange [").unwrap() + 12;
    bytes[at..at + text.len()].copy_from_slice(text.as_bytes());
    let signed = [&bytes[r[0]..r[0] + r[1]], &bytes[r[2]..r[2] + r[3]]].concat();
    let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
    c.signing_time = Some(personal_time());
    let hex = hex::encode_upper(c.build(&signed));
    bytes[lt + 1..gt].fill(b'0');
    bytes[lt + 1..lt + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    bytes
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-test");
    let pki = root.join("pki");
    let args: Vec<String> = std::env::args().collect();
    // `--sized BYTES OUT`: the two-signature document grown to about BYTES, for benches.
    if let Some(i) = args.iter().position(|a| a == "--sized") {
        let (Some(size), Some(out)) = (args.get(i + 1), args.get(i + 2)) else {
            panic!("--sized BYTES OUT");
        };
        let size: usize = size.parse().expect("--sized BYTES: a number of bytes");
        let base = fixture::two_signature_document(&pki, 0).len();
        let doc = fixture::two_signature_document(&pki, size.saturating_sub(base));
        std::fs::write(out, doc).expect("the document written");
        return;
    }
    let all = std::env::args().any(|a| a == "--pki") || !pki.join("root-ca.pem").exists();
    make_pki(&pki, !all);
    if std::env::args().any(|a| a == "--vn") {
        make_vn_cases(&pki, &root.join("pdf"));
    } else if std::env::args().any(|a| a == "--real-world") {
        make_real_world_cases(&pki, &root.join("pdf"));
    } else {
        make_pdfs(&pki, &root.join("pdf"));
    }
}

/// A signature of the Vietnamese document shapes: who signs, in which field, what it shows.
struct VnSig<'a> {
    signer: &'a str,
    field: &'a str,
    time: time::OffsetDateTime,
    reason: String,
    rect: [i32; 4],
    text: Option<Vec<String>>,
    docmdp: Option<u8>,
}

impl<'a> VnSig<'a> {
    /// The competent person, Trần Văn Huyến, as the BCY desktop signer writes it.
    fn person() -> Self {
        VnSig {
            signer: "personal-rsa",
            field: "Signature1",
            time: personal_time(),
            reason: PERSONAL_REASON.into(),
            rect: [330, 80, 530, 160],
            text: Some(lines(&[
                "Người ký: Trần Văn Huyến",
                "Email: huyentv@haugiang.gov.vn",
                "Cơ quan: Tỉnh ủy Hậu Giang",
                "Chức vụ: Phó Bí thư",
                "Thời gian ký: 2023-12-29T10:50:25+0700",
            ])),
            docmdp: Some(2),
        }
    }

    /// The body, Tỉnh ủy Hậu Giang, its seal over the left third of the person's image.
    fn seal() -> Self {
        VnSig {
            signer: "organisation",
            field: "Signature2",
            time: organisation_time(),
            reason: ORGANISATION_REASON.into(),
            rect: [300, 70, 400, 170],
            text: Some(lines(&[
                "Tỉnh ủy Hậu Giang",
                "Cơ quan: Tỉnh ủy Hậu Giang",
                "Thời gian ký: 2023-12-29T10:50:42+07:00",
            ])),
            docmdp: None,
        }
    }

    fn sign(&self, pki: &Path, doc: &mut Doc) {
        let id = Identity::load(pki, self.signer);
        let tsa = Identity::load(pki, "tsa");
        let mut s = SigSpec::new(self.field, self.time);
        s.reason = Some(&self.reason);
        s.location = Some("Việt Nam");
        s.docmdp = self.docmdp;
        s.rect = self.rect;
        s.appearance = self.text.clone();
        let scheme = if self.signer.contains("ecdsa") {
            Scheme::Ecdsa
        } else {
            Scheme::Pkcs1
        };
        doc.sign(&s, |data| {
            let mut c = CmsSpec::new(&id, scheme, vec![]);
            c.signing_time = Some(self.time);
            c.timestamp = Some((&tsa, self.time + time::Duration::seconds(1)));
            c.build(data)
        });
    }
}

fn lines(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| (*s).to_owned()).collect()
}

fn signed(pki: &Path, sigs: &[VnSig<'_>]) -> Doc {
    let mut doc = Doc::base(0);
    for s in sigs {
        s.sign(pki, &mut doc);
    }
    doc
}

/// The shapes of Decree 30's Appendix I and the ways a file misses them (policy
/// `decree-30`), one file each.
fn make_vn_cases(pki: &Path, out: &Path) {
    let person = VnSig::person;
    let seal = VnSig::seal;
    write(
        out,
        "vn-issued.pdf",
        &signed(pki, &[person(), seal()]).bytes,
    );
    write(out, "vn-person-only.pdf", &signed(pki, &[person()]).bytes);
    let bare_seal = VnSig {
        field: "Signature1",
        rect: [0, 0, 0, 0],
        text: None,
        docmdp: Some(2),
        ..seal()
    };
    write(out, "vn-seal-only.pdf", &signed(pki, &[bare_seal]).bytes);
    let seal_first = VnSig {
        field: "Signature1",
        docmdp: Some(2),
        ..seal()
    };
    let person_second = VnSig {
        field: "Signature2",
        time: organisation_time() + time::Duration::seconds(30),
        docmdp: None,
        ..person()
    };
    write(
        out,
        "vn-seal-before-person.pdf",
        &signed(pki, &[seal_first, person_second]).bytes,
    );
    let other_body = VnSig {
        signer: "organisation-other",
        reason: "Tỉnh ủy Cần Thơ<TUCanThoQTB1@TUCanTho> đã ký lên văn bản này!".into(),
        text: Some(lines(&[
            "Tỉnh ủy Cần Thơ",
            "Cơ quan: Tỉnh ủy Cần Thơ",
            "Thời gian ký: 2023-12-29T10:50:42+07:00",
        ])),
        ..seal()
    };
    write(
        out,
        "vn-seal-other-body.pdf",
        &signed(pki, &[person(), other_body]).bytes,
    );
    let other_reason = VnSig {
        reason: "Nguyễn Văn Khác<khacnv@haugiang.gov.vn> đã ký lên văn bản này!".into(),
        ..person()
    };
    write(
        out,
        "vn-reason-other-person.pdf",
        &signed(pki, &[other_reason, seal()]).bytes,
    );
    let other_text = VnSig {
        text: Some(lines(&[
            "Người ký: Lê Văn Khác",
            "Email: huyentv@haugiang.gov.vn",
            "Cơ quan: Tỉnh ủy Hậu Giang",
            "Thời gian ký: 2023-12-29T10:50:25+0700",
        ])),
        ..person()
    };
    write(
        out,
        "vn-text-other-person.pdf",
        &signed(pki, &[other_text, seal()]).bytes,
    );
    let after_seal = VnSig {
        signer: "personal-ecdsa-p384",
        field: "Signature3",
        time: organisation_time() + time::Duration::seconds(60),
        reason: "Nguyễn Thị Lan<lannt@tuyengiao.vn> đã ký lên văn bản này!".into(),
        rect: [60, 80, 260, 160],
        text: None,
        docmdp: None,
    };
    write(
        out,
        "vn-signature-after-seal.pdf",
        &signed(pki, &[person(), seal(), after_seal]).bytes,
    );
    let attachment = VnSig {
        field: "Signature1",
        rect: [400, 770, 580, 830],
        text: Some(lines(&[
            "Tỉnh ủy Hậu Giang",
            "494-BC/TU",
            "2023-12-29T10:50:42+07:00",
        ])),
        docmdp: Some(2),
        ..seal()
    };
    write(out, "vn-attachment.pdf", &signed(pki, &[attachment]).bytes);
    let copy = VnSig {
        field: "Signature1",
        time: time::macros::datetime!(2024-01-05 09:00:00 +07:00),
        rect: [400, 770, 580, 830],
        text: Some(lines(&[
            "SAO Y",
            "Tỉnh ủy Hậu Giang",
            "2024-01-05T09:00:00+07:00",
        ])),
        docmdp: Some(2),
        ..seal()
    };
    write(out, "vn-copy.pdf", &signed(pki, &[copy]).bytes);
    let person_local_time = VnSig {
        text: Some(lines(&[
            "Người ký: Trần Văn Huyến",
            "Cơ quan: Tỉnh ủy Hậu Giang",
            "Thời gian ký: 29/12/2023 10:50:25",
        ])),
        ..person()
    };
    let seal_aside = VnSig {
        rect: [480, 60, 580, 160],
        ..seal()
    };
    write(
        out,
        "vn-appearance-off.pdf",
        &signed(pki, &[person_local_time, seal_aside]).bytes,
    );
    // The seal's signature value blanked after signing: its /ByteRange stays, its
    // appearance still shows, its /Contents is all zero.
    let mut blanked = signed(pki, &[person(), seal()]).bytes;
    let (lt, gt) = contents_span_last(&blanked);
    blanked[lt + 1..gt].fill(b'0');
    write(out, "vn-signature-blanked.pdf", &blanked);
}

/// The hex digits of the last `/Contents <…>` in the file.
fn contents_span_last(bytes: &[u8]) -> (usize, usize) {
    let needle = b"/Contents <";
    let lt = bytes
        .windows(needle.len())
        .rposition(|w| w == needle)
        .unwrap()
        + needle.len()
        - 1;
    let gt = lt + bytes[lt..].iter().position(|b| *b == b'>').unwrap();
    (lt, gt)
}

/// The classes of mistake real-world files exposed (issue "Right on real-world files"), one
/// file each: signature values of newer algorithms and encodings, and the edits signing
/// tools and attackers make to a signed document.
fn make_real_world_cases(pki: &Path, out: &Path) {
    // SHA-3: RSA PKCS#1 v1.5 with SHA3-256 (its own signature OID), ECDSA over Brainpool
    // P-384 with SHA3-384.
    write(
        out,
        "cades-rsa-sha3-256.pdf",
        &single(
            pki,
            "personal-rsa",
            Scheme::Pkcs1,
            "ETSI.CAdES.detached",
            |c| {
                c.digest = Digest::Sha3_256;
            },
        ),
    );
    write(
        out,
        "cades-brainpool-sha3-384.pdf",
        &single(
            pki,
            "personal-brainpool",
            Scheme::Ecdsa,
            "ETSI.CAdES.detached",
            |c| {
                c.digest = Digest::Sha3_384;
            },
        ),
    );
    // A document timestamp whose token is BER: the outer ContentInfo with an indefinite
    // length, as some timestamping clients write it.
    {
        let tsa = Identity::load(pki, "tsa");
        let mut doc = Doc::base(0);
        let mut s = SigSpec::new("DocTimeStamp1", personal_time());
        s.sub_filter = "ETSI.RFC3161";
        s.kind_doc_timestamp = true;
        doc.sign(&s, |data| {
            indefinite_length(&timestamp_token(
                &tsa,
                Digest::Sha256,
                data,
                personal_time(),
            ))
        });
        write(out, "doc-timestamp-ber.pdf", &doc.bytes);
    }
    // /Contents as an indirect string object: the ByteRange's gap is that string, not the
    // signature dictionary's own /Contents, so the signature must fail structurally.
    {
        let id = Identity::load(pki, "personal-rsa");
        let mut doc = Doc::base(0);
        let mut s = SigSpec::new("Signature1", personal_time());
        s.indirect_contents = true;
        doc.sign(&s, |data| {
            let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
            c.signing_time = Some(personal_time());
            c.build(data)
        });
        write(out, "contents-indirect.pdf", &doc.bytes);
    }
    // PDF 2.0 FieldMDP permissions: a lock with /P 1 forbids the signature that follows, as
    // DocMDP P=1 would; /P 2 allows it.
    for p in [1, 2] {
        let id = Identity::load(pki, "personal-rsa");
        let mut doc = Doc::base(0);
        let mut s = SigSpec::new("Signature1", personal_time());
        s.reason = Some(PERSONAL_REASON);
        s.fieldmdp_p = Some(p);
        doc.sign(&s, |data| {
            let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
            c.signing_time = Some(personal_time());
            c.build(data)
        });
        organisation_signs(pki, &mut doc);
        write(
            out,
            &format!("mod-fieldmdp-p{p}-then-signature.pdf"),
            &doc.bytes,
        );
    }
    make_tagged_cases(pki, out);
    make_annotation_removed_cases(pki, out);
    make_cosmetic_case(pki, out);
    make_form_shadow_cases(pki, out);
    make_catalog_copy_cases(pki, out);
}

/// A catalog entry (`/ViewerPreferences`) written again after signing as a new object: an
/// equal copy, or one that says something else.
fn make_catalog_copy_cases(pki: &Path, out: &Path) {
    for (name, prefs) in [
        ("catalog-entry-copied.pdf", "<< /DisplayDocTitle true >>"),
        (
            "catalog-entry-changed.pdf",
            "<< /DisplayDocTitle true /HideToolbar true >>",
        ),
    ] {
        let mut doc = Doc::base(0);
        let old = doc.alloc();
        doc.add_catalog_entries(&format!(" /ViewerPreferences {old} 0 R"));
        let catalog = doc.catalog_now();
        doc.append_update(&[(old, b"<< /DisplayDocTitle true >>".to_vec()), (1, catalog)]);
        sign_with(
            pki,
            &mut doc,
            "personal-rsa",
            "Signature1",
            Some(2),
            "",
            |_| Vec::new(),
        );
        let new = doc.alloc();
        doc.replace_catalog_entries(&format!("{old} 0 R"), &format!("{new} 0 R"));
        let catalog = doc.catalog_now();
        doc.append_update(&[(new, prefs.as_bytes().to_vec()), (1, catalog)]);
        write(out, name, &doc.bytes);
    }
}

/// `der` (a definite-length SEQUENCE) with its outer length made indefinite: `30 80`, the
/// same content, then the end-of-contents octets `00 00` (X.690 §8.1.3.6).
fn indefinite_length(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "a SEQUENCE");
    let header = match der[1] {
        n if n < 0x80 => 2,
        n => 2 + usize::from(n & 0x7f),
    };
    [&[0x30, 0x80][..], &der[header..], &[0, 0]].concat()
}

/// Signs `doc` as `who` (`personal-rsa` or `organisation`) in field `field`, the update also
/// writing the objects `extra` gives for the widget's number.
fn sign_with(
    pki: &Path,
    doc: &mut Doc,
    who: &str,
    field: &str,
    docmdp: Option<u8>,
    widget_extra: &str,
    extra: impl FnOnce(u32) -> Vec<(u32, Vec<u8>)>,
) {
    let id = Identity::load(pki, who);
    let (sig, widget) = (doc.alloc(), doc.alloc());
    let time = if who == "organisation" {
        organisation_time()
    } else {
        personal_time()
    };
    let mut s = SigSpec::new(field, time);
    s.docmdp = docmdp;
    s.reserved = Some((sig, widget));
    s.widget_extra = widget_extra.into();
    s.extra_objects = extra(widget);
    doc.sign(&s, |data| {
        let mut c = CmsSpec::new(&id, Scheme::Pkcs1, vec![]);
        c.signing_time = Some(time);
        c.build(data)
    });
}

/// A tagged PDF (ISO 32000-1 §14.7: a structure tree, a parent tree, a tagged page) signed
/// twice, each signature adding its widget to the structure as the signing tools do; and the
/// same with a structure element dropped afterwards.
fn make_tagged_cases(pki: &Path, out: &Path) {
    let mut doc = Doc::base(0);
    let (root, document, para, tree) = (doc.alloc(), doc.alloc(), doc.alloc(), doc.alloc());
    doc.add_catalog_entries(&format!(
        " /StructTreeRoot {root} 0 R /MarkInfo << /Marked true >>"
    ));
    doc.add_page_entries(" /StructParents 0");
    let page = doc.page();
    let catalog = doc.catalog_now();
    let obj = |s: String| s.into_bytes();
    doc.append_update(&[
        (root, obj(format!("<< /Type /StructTreeRoot /K [{document} 0 R] /ParentTree {tree} 0 R /ParentTreeNextKey 1 >>"))),
        (document, obj(format!("<< /Type /StructElem /S /Document /P {root} 0 R /K [{para} 0 R] >>"))),
        (para, obj(format!("<< /Type /StructElem /S /P /P {document} 0 R /Pg 3 0 R /K 0 >>"))),
        (tree, obj(format!("<< /Nums [0 [{para} 0 R]] >>"))),
        (3, page),
        (1, catalog),
    ]);
    let mut kids = vec![para];
    let signers = [
        ("personal-rsa", "Signature1", Some(2)),
        ("organisation", "Signature2", None),
    ];
    for (n, (who, field, docmdp)) in signers.into_iter().enumerate() {
        let (elem, new_tree) = (doc.alloc(), doc.alloc());
        kids.push(elem);
        let key = n + 1;
        let mut nums = format!("0 [{para} 0 R]");
        for (i, e) in kids[1..].iter().enumerate() {
            nums.push_str(&format!(" {} {e} 0 R", i + 1));
        }
        let k: Vec<String> = kids.iter().map(|k| format!("{k} 0 R")).collect();
        let k = k.join(" ");
        let struct_parent = format!(" /StructParent {key}");
        sign_with(
            pki,
            &mut doc,
            who,
            field,
            docmdp,
            &struct_parent,
            |widget| {
                vec![
                (elem, obj(format!("<< /Type /StructElem /S /Form /P {document} 0 R /Pg 3 0 R /K [<< /Type /OBJR /Obj {widget} 0 R /Pg 3 0 R >>] >>"))),
                (new_tree, obj(format!("<< /Nums [{nums}] >>"))),
                (document, obj(format!("<< /Type /StructElem /S /Document /P {root} 0 R /K [{k}] >>"))),
                (root, obj(format!("<< /Type /StructTreeRoot /K [{document} 0 R] /ParentTree {new_tree} 0 R /ParentTreeNextKey {} >>", key + 1))),
            ]
            },
        );
    }
    write(out, "tagged-signed-twice.pdf", &doc.bytes);
    // Afterwards the paragraph leaves the structure: what a screen reader reads changed.
    let k: Vec<String> = kids[1..].iter().map(|k| format!("{k} 0 R")).collect();
    doc.append_update(&[(
        document,
        obj(format!(
            "<< /Type /StructElem /S /Document /P {root} 0 R /K [{}] >>",
            k.join(" ")
        )),
    )]);
    write(out, "tagged-structure-removed.pdf", &doc.bytes);
}

/// A sticky note on the page before signing; after the certification signature (P=3, and
/// P=2) an update removes it from the page.
fn make_annotation_removed_cases(pki: &Path, out: &Path) {
    for p in [3, 2] {
        let mut doc = Doc::base(0);
        let note = doc.alloc();
        let page = doc.page_with_annots(&[note]);
        doc.append_update(&[
            (
                note,
                b"<< /Type /Annot /Subtype /Text /Rect [50 700 70 720] /Contents (Can xem lai) /P 3 0 R >>"
                    .to_vec(),
            ),
            (3, page),
        ]);
        sign_with(
            pki,
            &mut doc,
            "personal-rsa",
            "Signature1",
            Some(p),
            "",
            |_| Vec::new(),
        );
        doc.drop_annot(note);
        let page = doc.page();
        doc.append_update(&[(3, page)]);
        write(out, &format!("mod-p{p}-annotation-removed.pdf"), &doc.bytes);
    }
}

/// Acrobat's cosmetic rewrite: the page font had an obsolete /Name when signed; the
/// organisation's approval signature comes with the font dictionary written without it.
fn make_cosmetic_case(pki: &Path, out: &Path) {
    let mut doc = Doc::base(0);
    doc.append_update(&[(
        5,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Name /F1 >>".to_vec(),
    )]);
    sign_with(
        pki,
        &mut doc,
        "personal-rsa",
        "Signature1",
        Some(2),
        "",
        |_| Vec::new(),
    );
    sign_with(
        pki,
        &mut doc,
        "organisation",
        "Signature2",
        None,
        "",
        |_| {
            vec![(
                5,
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
            )]
        },
    );
    write(out, "font-name-dropped.pdf", &doc.bytes);
}

/// A shadow attack through a form field: in the signed revision a text field's white
/// appearance hides a line of the page; after signing the field is "filled" with an
/// appearance without the box, and the hidden line shows. The control fills it keeping the
/// box.
fn make_form_shadow_cases(pki: &Path, out: &Path) {
    for (name, keeps_box) in [
        ("form-field-shadow.pdf", false),
        ("form-field-filled.pdf", true),
    ] {
        let mut doc = Doc::base(0);
        let (hidden, field, cover) = (doc.alloc(), doc.alloc(), doc.alloc());
        let text = "BT /F1 14 Tf 80 600 Td (SO TIEN: 900.000.000 DONG) Tj ET\n";
        let white = "1 1 1 rg 0 0 330 30 re f\n";
        doc.add_page_entries(&format!(" /Contents [4 0 R {hidden} 0 R]"));
        doc.register_field(field);
        let widget = |ap: u32, value: &str| {
            format!("<< /Type /Annot /Subtype /Widget /FT /Tx /T (GhiChu){value} /F 4 /Rect [70 590 400 620] /P 3 0 R /DA (/F1 10 Tf 0 g) /AP << /N {ap} 0 R >> >>").into_bytes()
        };
        let form = |content: &str| {
            format!("<< /Type /XObject /Subtype /Form /BBox [0 0 330 30] /Resources << /Font << /F1 5 0 R >> >> /Length {} >>\nstream\n{content}endstream", content.len()).into_bytes()
        };
        let page = doc.page();
        let catalog = doc.catalog_now();
        doc.append_update(&[
            (
                hidden,
                format!("<< /Length {} >>\nstream\n{text}endstream", text.len()).into_bytes(),
            ),
            (field, widget(cover, "")),
            (cover, form(white)),
            (3, page),
            (1, catalog),
        ]);
        sign_with(
            pki,
            &mut doc,
            "personal-rsa",
            "Signature1",
            Some(2),
            "",
            |_| Vec::new(),
        );
        let filled = doc.alloc();
        let value = "BT /F1 10 Tf 2 10 Td (Da duyet) Tj ET\n";
        let content = if keeps_box {
            format!("{white}0 g {value}")
        } else {
            value.to_owned()
        };
        doc.append_update(&[
            (field, widget(filled, " /V (Da duyet)")),
            (filled, form(&content)),
        ]);
        write(out, name, &doc.bytes);
    }
}
