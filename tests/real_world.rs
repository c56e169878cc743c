//! The classes of mistake real-world files exposed, each isolated in a fixture of
//! `certs-test/pdf/` (certs-test/README.md, "Real-world classes"), with its verdict and the
//! explanation a user reads.

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
    let r = kyso::verify(&bytes, &common::context()).expect("verifies");
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
    let c = s
        .checks
        .iter()
        .find(|c| c.id == CheckId::Modifications)
        .expect("modifications");
    assert!(c.detail.contains("FieldMDP lock P=1"), "{}", c.detail);
    let r = verify_fixture("mod-fieldmdp-p2-then-signature.pdf");
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.reasons);
}
