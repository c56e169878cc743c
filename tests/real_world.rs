//! The classes of mistake real-world files exposed, each isolated in a fixture of
//! `certs-test/pdf/` (certs-test/README.md, "Real-world classes"), with its verdict and the
//! explanation a user reads.

#[path = "../certs-test/fixture.rs"]
mod certs;
mod common;

use common::{check, fixture, verify_fixture};
use kyso::report::{CheckId, Indication, Outcome, SubIndication};
use kyso::Verdict;

#[test]
fn sha3_signatures_and_brainpool_keys_verify() {
    for (name, key) in [
        ("cades-rsa-sha3-256.pdf", "RSA 2048"),
        ("cades-brainpool-sha3-384.pdf", "EC brainpoolP384r1 384"),
    ] {
        let r = verify_fixture(name);
        assert_eq!(r.verdict, Verdict::Valid, "{name}: {:#?}", r.reasons);
        let s = &r.signatures[0];
        assert_eq!(s.signer.as_ref().map(|x| x.key.as_str()), Some(key));
        assert_eq!(check(s, CheckId::SignatureValue), Outcome::Passed, "{name}");
    }
}

#[test]
fn an_algorithm_kyso_does_not_know_is_indeterminate_and_named() {
    // The SHA3-256 RSA signature with its algorithm OID (…4.3.14) turned into an unknown
    // one (…4.3.127). The OID is outside the signed attributes, so nothing else breaks.
    let mut bytes = fixture("cades-rsa-sha3-256.pdf");
    let known = b"060960864801650304030E";
    let at = bytes
        .windows(known.len())
        .position(|w| w == known)
        .expect("the algorithm OID in /Contents");
    bytes[at + known.len() - 2..at + known.len()].copy_from_slice(b"7F");
    let r = kyso::verify(&bytes, &common::context(), common::inputs()).expect("verifies");
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::Indeterminate, "{:#?}", s.checks);
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::CryptoConstraintsFailure)
    );
    let c = s
        .checks
        .iter()
        .find(|c| c.id == CheckId::SignatureValue)
        .expect("signature_value");
    assert!(
        c.detail.contains("2.16.840.1.101.3.4.3.127"),
        "{}",
        c.detail
    );
    assert_eq!(r.verdict, Verdict::Indeterminate);
}

#[test]
fn a_ber_timestamp_token_is_read() {
    let r = verify_fixture("doc-timestamp-ber.pdf");
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.reasons);
    let s = &r.signatures[0];
    assert_eq!(check(s, CheckId::CmsStructure), Outcome::Passed);
    assert_eq!(check(s, CheckId::TimestampImprint), Outcome::Passed);
    assert!(s.validation_time.proven);
}

#[test]
fn an_indirect_contents_fails_structurally_and_is_no_unsigned_field() {
    let r = verify_fixture("contents-indirect.pdf");
    assert_eq!(r.verdict, Verdict::Invalid, "{:#?}", r.reasons);
    assert!(r.unsigned_fields.is_empty(), "{:?}", r.unsigned_fields);
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::Failed);
    assert_eq!(s.sub_indication, Some(SubIndication::FormatFailure));
    assert_eq!(check(s, CheckId::ByteRange), Outcome::Failed);
}

#[test]
fn a_fieldmdp_lock_with_p1_forbids_later_signatures_and_p2_allows_them() {
    let r = verify_fixture("mod-fieldmdp-p1-then-signature.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    let s = &r.signatures[0];
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::DisallowedModification)
    );
    let c = modifications(s);
    assert!(c.detail.contains("FieldMDP lock P=1"), "{}", c.detail);
    let r = verify_fixture("mod-fieldmdp-p2-then-signature.pdf");
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.reasons);
}

/// The `modifications` check of `s`.
fn modifications(s: &kyso::report::SignatureReport) -> &kyso::report::Check {
    s.checks
        .iter()
        .find(|c| c.id == CheckId::Modifications)
        .expect("a modifications check")
}

/// The change of `class` a signature's analysis lists, with its rule.
fn change_rule(r: &kyso::Report, sig: usize, class: kyso::integrity::ChangeClass) -> String {
    r.signatures[sig]
        .modifications
        .iter()
        .find(|c| c.class == class)
        .map(|c| c.rule.clone())
        .unwrap_or_else(|| {
            panic!(
                "no {class:?} change in {:#?}",
                r.signatures[sig].modifications
            )
        })
}

#[test]
fn a_tagged_pdf_signed_twice_gains_structure_and_stays_valid() {
    let r = verify_fixture("tagged-signed-twice.pdf");
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "{:#?}",
        r.signatures[0].modifications
    );
    let structure = r.signatures[0]
        .modifications
        .iter()
        .filter(|c| c.rule.contains("structure tree"))
        .count();
    assert!(structure >= 3, "{:#?}", r.signatures[0].modifications);
    assert!(
        r.signatures[0]
            .modifications
            .iter()
            .any(|c| c.rule.contains("new signature field 'Signature2'")),
        "{:#?}",
        r.signatures[0].modifications
    );
    // Losing a structure element is no growth.
    let r = verify_fixture("tagged-structure-removed.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    let c = modifications(&r.signatures[1]);
    assert!(
        c.detail
            .contains("the structure tree changed: /K lost or changed entries"),
        "{}",
        c.detail
    );
}

#[test]
fn removing_an_annotation_is_what_p3_permits_and_p2_does_not() {
    use kyso::integrity::ChangeClass;
    let r = verify_fixture("mod-p3-annotation-removed.pdf");
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "{:#?}",
        r.signatures[0].modifications
    );
    assert!(change_rule(&r, 0, ChangeClass::Annotation).contains("1 annotations removed"));
    let r = verify_fixture("mod-p2-annotation-removed.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    let c = modifications(&r.signatures[0]);
    assert!(
        c.detail
            .contains("annotations removed — not allowed by the certification's DocMDP P=2"),
        "{}",
        c.detail
    );
}

#[test]
fn a_dropped_font_name_is_a_warning_that_names_the_key() {
    use kyso::integrity::ChangeClass;
    let r = verify_fixture("font-name-dropped.pdf");
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "{:#?}",
        r.signatures[0].modifications
    );
    let s = &r.signatures[0];
    assert_eq!(check(s, CheckId::Modifications), Outcome::Warning);
    assert!(change_rule(&r, 0, ChangeClass::Cosmetic).contains("(/Name)"));
}

#[test]
fn a_field_appearance_that_uncovers_hidden_text_is_a_shadow_attack() {
    let r = verify_fixture("form-field-shadow.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    let s = &r.signatures[0];
    assert_eq!(
        s.sub_indication,
        Some(SubIndication::DisallowedModification)
    );
    let c = modifications(s);
    assert!(
        c.detail.contains("uncovers what its signed appearance hid"),
        "{}",
        c.detail
    );
    // Filling the same field and keeping its box is form filling, allowed by P=2.
    let r = verify_fixture("form-field-filled.pdf");
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "{:#?}",
        r.signatures[0].modifications
    );
}

#[test]
fn a_catalog_entry_written_again_as_an_equal_copy_is_no_change() {
    let r = verify_fixture("catalog-entry-copied.pdf");
    assert_eq!(
        r.verdict,
        Verdict::Valid,
        "{:#?}",
        r.signatures[0].modifications
    );
    assert!(
        r.signatures[0]
            .modifications
            .iter()
            .any(|c| c.rule.contains("/ViewerPreferences (an equal copy)")),
        "{:#?}",
        r.signatures[0].modifications
    );
    let r = verify_fixture("catalog-entry-changed.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn a_signature_with_a_large_contents_placeholder_verifies() {
    // Signatures that embed whole CRLs reserve many MiB for /Contents; 6 MiB was refused when
    // the search for the end of the signature's object stopped at 4 MiB.
    let pki = common::root().join("certs-test/pki");
    let signer = certs::Identity::load(&pki, "personal-rsa");
    let mut doc = certs::Doc::base(0);
    let mut spec = certs::SigSpec::new("Signature1", certs::personal_time());
    spec.contents_len = 6 << 20;
    doc.sign(&spec, |data| {
        let mut c = certs::CmsSpec::new(&signer, certs::Scheme::Pkcs1, vec![]);
        c.signing_time = Some(certs::personal_time());
        c.build(data)
    });
    let r = kyso::verify(&doc.bytes, &common::context(), common::inputs()).expect("verifies");
    let s = &r.signatures[0];
    assert_eq!(
        check(s, CheckId::ByteRange),
        Outcome::Passed,
        "{:#?}",
        s.checks
    );
    assert_eq!(s.indication, Indication::Passed, "{:#?}", s.checks);
}
