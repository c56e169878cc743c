//! The fixtures of `certs-test/pdf/` (see `certs-test/README.md`), each with the verdict,
//! sub-indication and deciding check a user must see.

mod common;

use common::{check, context, fixture, root, verify_fixture};
use kyso::pdf::{Coverage, SignatureKind};
use kyso::report::{CheckId, Indication, Outcome, SubIndication, TimeSource};
use kyso::Verdict;
use time::macros::datetime;

#[test]
fn two_signature_document_is_valid_personal_then_organisation() {
    let r = verify_fixture("two-signatures.pdf");
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.reasons);
    assert_eq!(r.signatures.len(), 2);
    assert_eq!(r.revisions, 3);
    let (personal, org) = (&r.signatures[0], &r.signatures[1]);

    assert_eq!(personal.field.as_deref(), Some("Signature1"));
    assert_eq!(personal.kind, SignatureKind::Signature);
    assert_eq!(
        personal.certification,
        Some(2),
        "the first signature certifies with DocMDP P=2"
    );
    assert_eq!(personal.revision, 2);
    assert_eq!(personal.coverage, Some(Coverage::EntireRevision(2)));
    let signer = personal.signer.as_ref().expect("signer");
    assert_eq!(signer.common_name.as_deref(), Some("Trần Văn Huyến"));
    assert_eq!(signer.email.as_deref(), Some("huyentv@haugiang.gov.vn"));
    assert_eq!(signer.organization.as_deref(), Some("TỈNH ỦY HẬU GIANG"));
    assert_eq!(signer.serial, "1001");
    assert_eq!(
        personal.reason.as_deref(),
        Some("Trần Văn Huyến<huyentv@haugiang.gov.vn> đã ký lên văn bản này!")
    );
    assert_eq!(personal.location.as_deref(), Some("Việt Nam"));
    assert_eq!(
        personal.signing_time,
        Some(datetime!(2023-12-29 10:50:25 +07:00))
    );
    // The BCY tools add a signature timestamp: the signer is judged at the time it proves.
    assert_eq!(personal.validation_time.source, TimeSource::TimestampToken);
    assert!(personal.validation_time.proven);
    assert_eq!(
        personal.validation_time.time,
        datetime!(2023-12-29 10:50:26 +07:00)
    );
    assert_eq!(
        personal.chain.len(),
        3,
        "signer → Party sub-CA → root: {:?}",
        personal.chain
    );
    let widget = personal.widget.as_ref().expect("widget");
    assert_eq!(widget.page, Some(1));
    assert_eq!(widget.rect, Some([330.0, 80.0, 530.0, 160.0]));
    assert_eq!(
        check(personal, CheckId::SignatureTimestamp),
        Outcome::Passed
    );

    assert_eq!(org.field.as_deref(), Some("Signature2"));
    assert_eq!(org.certification, None);
    assert_eq!(org.revision, 3);
    assert_eq!(org.coverage, Some(Coverage::EntireFile));
    let org_signer = org.signer.as_ref().expect("signer");
    assert_eq!(org_signer.common_name.as_deref(), Some("Tỉnh ủy Hậu Giang"));
    assert_eq!(
        org_signer.email.as_deref(),
        Some("TUHauGiangQTB1@TUHauGiang"),
        "a pseudo-address is not rejected"
    );
    assert_eq!(
        org.signing_time,
        Some(datetime!(2023-12-29 10:50:42 +07:00))
    );
    for s in &r.signatures {
        for id in [
            CheckId::ByteRange,
            CheckId::MessageDigest,
            CheckId::SignatureValue,
            CheckId::SigningCertificateAttribute,
            CheckId::SignatureTimestamp,
            CheckId::CertificateChain,
        ] {
            assert_eq!(check(s, id), Outcome::Passed, "{id:?} of {:?}", s.field);
        }
    }
}

#[test]
fn every_algorithm_and_sub_filter_verifies() {
    for (file, sub_filter, algorithm) in [
        (
            "cades-rsa-pss.pdf",
            "ETSI.CAdES.detached",
            "RSA-PSS with SHA-256",
        ),
        (
            "cades-ecdsa-p256.pdf",
            "ETSI.CAdES.detached",
            "ECDSA with SHA-256",
        ),
        (
            "cades-ecdsa-p384.pdf",
            "ETSI.CAdES.detached",
            "ECDSA with SHA-384",
        ),
        (
            "cades-ecdsa-p521.pdf",
            "ETSI.CAdES.detached",
            "ECDSA with SHA-512",
        ),
        ("cades-ed25519.pdf", "ETSI.CAdES.detached", "Ed25519"),
        (
            "pkcs7-rsa-sha512.pdf",
            "adbe.pkcs7.detached",
            "RSA PKCS#1 v1.5 with SHA-512",
        ),
        (
            "pkcs7-rsa-sha1.pdf",
            "adbe.pkcs7.detached",
            "RSA PKCS#1 v1.5 with SHA-1",
        ),
        (
            "pkcs7-sha1.pdf",
            "adbe.pkcs7.sha1",
            "RSA PKCS#1 v1.5 with SHA-1",
        ),
        (
            "pkcs7-ski-sid.pdf",
            "adbe.pkcs7.detached",
            "RSA PKCS#1 v1.5 with SHA-256",
        ),
        (
            "pkcs7-no-signed-attrs.pdf",
            "adbe.pkcs7.detached",
            "RSA PKCS#1 v1.5 with SHA-256",
        ),
    ] {
        let r = verify_fixture(file);
        assert_eq!(
            r.verdict,
            Verdict::Valid,
            "{file}: {:#?}",
            r.signatures[0].checks
        );
        let s = &r.signatures[0];
        assert_eq!(s.sub_filter.as_deref(), Some(sub_filter), "{file}");
        let detail = &s
            .checks
            .iter()
            .find(|c| c.id == CheckId::SignatureValue)
            .expect("value check")
            .detail;
        assert!(detail.contains(algorithm), "{file}: {detail}");
    }
}

#[test]
fn embedded_intermediate_completes_the_chain() {
    // cades-ecdsa-p384.pdf carries the Party sub-CA in its CMS; with only the root
    // configured the chain is still found.
    let trust =
        kyso::trust::TrustStore::from_paths(&[common::pki("root-ca.pem")], &[]).expect("loads");
    let r = kyso::verify(
        &fixture("cades-ecdsa-p384.pdf"),
        &kyso::Context::new(trust.clone()),
        common::inputs(),
    )
    .expect("verifies");
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(
        r.signatures[0].signer.as_ref().expect("signer").key,
        "EC secp384r1 384"
    );
    // The BCY's shape (only the signer's certificate embedded) needs the configured one.
    let r = kyso::verify(
        &fixture("two-signatures.pdf"),
        &kyso::Context::new(trust),
        common::inputs(),
    )
    .expect("verifies");
    assert_eq!(r.verdict, Verdict::Indeterminate);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
}

#[test]
fn weak_algorithms_are_flagged_not_failed() {
    let r = verify_fixture("pkcs7-rsa-sha1.pdf");
    assert_eq!(
        check(&r.signatures[0], CheckId::AlgorithmPolicy),
        Outcome::Warning
    );
    let mut ctx = context();
    ctx.algorithms.sha1 = kyso::verify::WeakAlgorithmAction::Reject;
    let r = kyso::verify(&fixture("pkcs7-rsa-sha1.pdf"), &ctx, common::inputs()).expect("verifies");
    assert_eq!(r.verdict, Verdict::Indeterminate);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
}

#[test]
fn ess_absent_is_a_warning_apart_from_mismatch() {
    let r = verify_fixture("pkcs7-no-ess.pdf");
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(
        check(&r.signatures[0], CheckId::SigningCertificateAttribute),
        Outcome::Warning
    );
}

#[test]
fn document_timestamp_alone() {
    let r = verify_fixture("doc-timestamp.pdf");
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.signatures[0].checks);
    let s = &r.signatures[0];
    assert_eq!(s.kind, SignatureKind::DocumentTimestamp);
    assert_eq!(check(s, CheckId::TimestampImprint), Outcome::Passed);
    assert_eq!(s.signing_time, Some(datetime!(2023-12-29 10:50:25 +07:00)));
    assert_eq!(s.validation_time.source, TimeSource::TimestampToken);
}

#[test]
fn unsigned_and_wiped_documents_say_no_signature() {
    let r = verify_fixture("unsigned.pdf");
    assert_eq!(r.verdict, Verdict::Unsigned);
    assert!(r.signatures.is_empty());
    // A signature whose /Contents was zeroed holds no signature: the field is listed as
    // empty, and the document has no signature.
    let r = verify_fixture("zeroed-contents.pdf");
    assert_eq!(r.verdict, Verdict::Unsigned);
    assert_eq!(r.unsigned_fields.len(), 1);
    assert_eq!(r.unsigned_fields[0].field, "Signature1");
}

fn assert_failed(file: &str, sub: SubIndication, id: CheckId) {
    let r = verify_fixture(file);
    assert_eq!(r.verdict, Verdict::Invalid, "{file}");
    let s = &r.signatures[0];
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Failed, Some(sub)),
        "{file}: {:#?}",
        s.checks
    );
    assert_eq!(check(s, id), Outcome::Failed, "{file}");
}

#[test]
fn broken_signatures_fail_with_the_deciding_check() {
    assert_failed(
        "flipped-byte.pdf",
        SubIndication::HashFailure,
        CheckId::MessageDigest,
    );
    assert_failed(
        "wrong-signature-key.pdf",
        SubIndication::SigCryptoFailure,
        CheckId::SignatureValue,
    );
    assert_failed(
        "garbage-cms.pdf",
        SubIndication::FormatFailure,
        CheckId::CmsStructure,
    );
}

#[test]
fn flipped_byte_fails_both_signatures() {
    let r = verify_fixture("flipped-byte.pdf");
    assert!(r
        .signatures
        .iter()
        .all(|s| s.sub_indication == Some(SubIndication::HashFailure)));
    assert!(
        r.reasons.iter().any(|x| x.vi.contains("đã bị thay đổi")),
        "{:#?}",
        r.reasons
    );
}

#[test]
fn crafted_byte_ranges_fail_although_their_digest_matches() {
    // Each file's CMS is a valid signature over its bogus ranges: only the structure check
    // stands between the forgery and a VALID.
    assert_failed(
        "byterange-gap-too-big.pdf",
        SubIndication::FormatFailure,
        CheckId::ByteRange,
    );
    assert_failed(
        "byterange-not-from-zero.pdf",
        SubIndication::FormatFailure,
        CheckId::ByteRange,
    );
    assert_failed(
        "byterange-tail-uncovered.pdf",
        SubIndication::FormatFailure,
        CheckId::Coverage,
    );
    for file in ["byterange-gap-too-big.pdf", "byterange-tail-uncovered.pdf"] {
        let s = &verify_fixture(file).signatures[0];
        assert_eq!(
            check(s, CheckId::SignatureValue),
            Outcome::Passed,
            "{file}: the cryptography itself holds"
        );
    }
}

#[test]
fn trust_problems_are_indeterminate_never_invalid() {
    for (file, sub) in [
        ("untrusted-root.pdf", SubIndication::NoCertificateChainFound),
        ("expired-signer.pdf", SubIndication::OutOfBoundsNoPoe),
        (
            "wrong-key-usage.pdf",
            SubIndication::ChainConstraintsFailure,
        ),
    ] {
        let r = verify_fixture(file);
        assert_eq!(r.verdict, Verdict::Indeterminate, "{file}");
        let s = &r.signatures[0];
        assert_eq!(
            (s.indication, s.sub_indication),
            (Indication::Indeterminate, Some(sub)),
            "{file}: {:#?}",
            s.checks
        );
        assert_eq!(check(s, CheckId::SignatureValue), Outcome::Passed, "{file}");
    }
}

#[test]
fn caller_fixed_time_overrides_the_claimed_time() {
    let ctx = context();
    let at = |t| kyso::Inputs {
        at: Some(t),
        ..common::inputs()
    };
    // The signer's certificate is valid 2023-01-01 .. 2028-01-01.
    let r = kyso::verify(
        &fixture("two-signatures.pdf"),
        &ctx,
        at(datetime!(2029-01-01 00:00:00 UTC)),
    )
    .expect("verifies");
    assert_eq!(r.verdict, Verdict::Indeterminate);
    let s = &r.signatures[0];
    assert_eq!(s.validation_time.source, TimeSource::Caller);
    assert_eq!(s.sub_indication, Some(SubIndication::OutOfBoundsNoPoe));
    assert_eq!(
        kyso::verify(
            &fixture("two-signatures.pdf"),
            &ctx,
            at(datetime!(2024-06-01 00:00:00 UTC))
        )
        .expect("verifies")
        .verdict,
        Verdict::Valid
    );
}

#[test]
fn report_json_names_the_documented_fields() {
    let r = verify_fixture("two-signatures.pdf");
    let v = r.to_json("two-signatures.pdf");
    for key in [
        "file",
        "sha256",
        "verdict",
        "signatures",
        "reasons",
        "revisions",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    let s = &v["signatures"][0];
    for key in [
        "field",
        "kind",
        "indication",
        "sub_indication",
        "signer",
        "signing_time",
        "coverage",
        "checks",
    ] {
        assert!(s.get(key).is_some(), "missing signatures[].{key} in {s}");
    }
    assert_eq!(s["kind"], "signature");
    assert_eq!(s["indication"], "PASSED");
    // CMS signingTime is UTC; 03:50:25Z is 10:50:25 in Vietnam.
    assert_eq!(s["signing_time"], "2023-12-29T03:50:25Z");
    assert_eq!(v["verdict"], "VALID");
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn without_signed_attributes_the_claimed_time_is_m() {
    let r = verify_fixture("pkcs7-no-signed-attrs.pdf");
    let s = &r.signatures[0];
    assert_eq!(s.validation_time.source, TimeSource::PdfM);
    assert_eq!(s.signing_time, Some(datetime!(2023-12-29 10:50:25 +07:00)));
    assert_eq!(
        s.location.as_deref(),
        Some("Việt Nam"),
        "UTF-16 text strings decode"
    );
}

#[test]
fn a_signature_removed_by_a_later_revision_is_still_found_and_fails() {
    let r = verify_fixture("signature-removed.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(
        r.signatures.len(),
        2,
        "the removed personal signature and the organisation's"
    );
    let removed = &r.signatures[0];
    assert_eq!(removed.field.as_deref(), Some("Signature1"));
    assert_eq!(removed.revision, 2);
    assert_eq!(check(removed, CheckId::FinalRevision), Outcome::Failed);
    assert_eq!(
        check(removed, CheckId::SignatureValue),
        Outcome::Passed,
        "the signature itself is genuine"
    );
    // The update that removed it came after the organisation's signature too: a disallowed
    // change for that one as well.
    assert_eq!(
        r.signatures[1].sub_indication,
        Some(SubIndication::DisallowedModification)
    );
    assert_eq!(r.unsigned_fields.len(), 1, "its field is now empty");
}

#[test]
fn without_a_timestamp_the_claimed_time_is_used_and_said_to_be_unproven() {
    let r = verify_fixture("cades-rsa-pss.pdf");
    let s = &r.signatures[0];
    assert_eq!(s.validation_time.source, TimeSource::CmsSigningTime);
    assert!(
        !s.validation_time.proven,
        "a claimed time is never reported as proven"
    );
}

#[test]
fn local_time_labelled_utc_is_tolerated_and_reported() {
    let r = verify_fixture("ts-local-time-as-utc.pdf");
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.signatures[0].checks);
    let s = &r.signatures[0];
    assert!(s.validation_time.proven);
    assert_eq!(
        s.validation_time.time,
        datetime!(2023-12-29 10:50:26 +07:00)
    );
    assert_eq!(
        s.signing_time,
        Some(datetime!(2023-12-29 10:50:25 UTC)),
        "the claim as written"
    );
    assert!(
        s.checks
            .iter()
            .any(|c| c.id == CheckId::ValidationTime
                && c.detail.contains("Vietnam time written as UTC")),
        "{:#?}",
        s.checks
    );
}

#[test]
fn a_token_from_a_non_tsa_certificate_proves_nothing() {
    let r = verify_fixture("ts-not-a-tsa.pdf");
    let s = &r.signatures[0];
    assert_eq!(check(s, CheckId::SignatureTimestamp), Outcome::Warning);
    let detail = &s
        .checks
        .iter()
        .find(|c| c.id == CheckId::SignatureTimestamp)
        .expect("check")
        .detail;
    assert!(detail.contains("timeStamping"), "{detail}");
    assert_eq!(
        s.validation_time.source,
        TimeSource::CmsSigningTime,
        "the claimed time stays"
    );
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "an unusable timestamp does not fail the signature"
    );
}

#[test]
fn document_timestamp_proves_its_time_once_its_tsa_validates() {
    let s = &verify_fixture("doc-timestamp.pdf").signatures[0];
    assert!(s.validation_time.proven);
    // Signed by a document signer instead of a TSA, the same token is not a proof.
    let r = verify_fixture("ts-doc-timestamp-not-a-tsa.pdf");
    let s = &r.signatures[0];
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::ChainConstraintsFailure)
    );
    assert!(!s.validation_time.proven);
}

#[test]
fn the_document_hash_is_the_sha256_of_the_whole_file() {
    // It is computed as one more branch of the hashing the signatures share (not a pass of
    // its own), so check it against a plain hash on files of every shape.
    for file in [
        "two-signatures.pdf",
        "unsigned.pdf",
        "cades-ecdsa-p384.pdf",
        "pkcs7-sha1.pdf",
        "doc-timestamp.pdf",
        "mod-content-overlay.pdf",
        "byterange-not-from-zero.pdf",
    ] {
        let bytes = fixture(file);
        let r = kyso::verify(&bytes, &context(), common::inputs()).expect("verifies");
        assert_eq!(
            r.sha256,
            hex::encode(openssl::sha::sha256(&bytes)),
            "{file}"
        );
    }
}

/// The cache a context shares between verifications (parsed certificates, signature checks)
/// changes no outcome: every fixture reads the same with a fresh context, after all the
/// others through one shared context, and through a cache so small it evicts all the time.
#[test]
fn a_shared_cache_changes_no_outcome() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("certs-test/pdf"))
        .expect("the fixture folder")
        .map(|e| {
            e.expect("a fixture")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".pdf"))
        .collect();
    names.sort();
    let fresh: Vec<_> = names
        .iter()
        .map(|n| {
            kyso::verify(&fixture(n), &context(), common::inputs())
                .map(|r| r.to_json(n))
                .ok()
        })
        .collect();
    let shared = context();
    let mut tiny = context();
    tiny.cache = std::sync::Arc::new(kyso::trust::Cache::new(1, 1));
    for ctx in [&shared, &shared, &tiny] {
        for (n, expected) in names.iter().zip(&fresh).rev() {
            let got = kyso::verify(&fixture(n), ctx, common::inputs())
                .map(|r| r.to_json(n))
                .ok();
            assert_eq!(&got, expected, "{n}");
        }
    }
}

#[test]
fn no_report_passes_and_fails_the_same_check() {
    // A signature whose gap lies outside its own dictionary (a rewritten signature
    // dictionary) once got a byte_range check both FAILED and PASSED.
    let dir = common::root().join("certs-test/pdf");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    files.sort();
    assert!(files.len() > 40, "{} fixtures", files.len());
    for path in files {
        let bytes = std::fs::read(&path).expect("fixture");
        let Ok(report) = kyso::verify(&bytes, &context(), common::inputs()) else {
            continue;
        };
        for s in &report.signatures {
            for c in &s.checks {
                let outcomes: Vec<_> = s
                    .checks
                    .iter()
                    .filter(|o| o.id == c.id)
                    .map(|o| o.outcome)
                    .collect();
                assert!(
                    !(outcomes.contains(&Outcome::Passed) && outcomes.contains(&Outcome::Failed)),
                    "{}: {:?} is {:?}",
                    path.display(),
                    c.id,
                    outcomes
                );
            }
        }
    }
}
