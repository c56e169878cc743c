//! What later revisions did to a signed document, and whether it was allowed: each case of
//! `certs-test/pdf/mod-*.pdf` with its verdict and the explanation a reader gets.

mod common;

use common::{check, verify_fixture};
use kyso::integrity::{ChangeClass, ChangeKind, Verdict as Allowed};
use kyso::report::{CheckId, Outcome, SignatureReport, SubIndication};
use kyso::Verdict;

/// The first disallowed change of `sig`, with the whole list in the panic message.
fn first_disallowed(sig: &SignatureReport) -> &kyso::integrity::Change {
    sig.modifications
        .iter()
        .find(|c| c.verdict == Allowed::Disallowed)
        .unwrap_or_else(|| panic!("no disallowed change in {:#?}", sig.modifications))
}

fn assert_modified(
    file: &str,
    revision: usize,
    object: u32,
    kind: ChangeKind,
    rule_mentions: &str,
) {
    let r = verify_fixture(file);
    assert_eq!(r.verdict, Verdict::Invalid, "{file}");
    let sig = &r.signatures[0];
    assert_eq!(
        check(sig, CheckId::Modifications),
        Outcome::Failed,
        "{file}"
    );
    assert_eq!(
        check(sig, CheckId::SignatureValue),
        Outcome::Passed,
        "{file}: the signature itself is intact"
    );
    let change = first_disallowed(sig);
    assert_eq!(
        (change.revision, change.object, change.kind),
        (revision, object, kind),
        "{file}: {change:#?}"
    );
    assert_eq!(change.class, ChangeClass::Disallowed, "{file}");
    assert!(
        change.rule.contains(rule_mentions),
        "{file}: rule {:?} should mention {rule_mentions:?}",
        change.rule
    );
}

#[test]
fn content_overlay_after_signing_is_invalid() {
    assert_modified(
        "mod-content-overlay.pdf",
        3,
        3,
        ChangeKind::Changed,
        "page changed: /Contents",
    );
    let sig = &verify_fixture("mod-content-overlay.pdf").signatures[0];
    assert_eq!(
        sig.sub_indication,
        Some(SubIndication::DisallowedModification)
    );
}

#[test]
fn added_page_is_invalid() {
    assert_modified(
        "mod-page-added.pdf",
        3,
        2,
        ChangeKind::Changed,
        "page tree changed",
    );
}

#[test]
fn shadow_hide_overwriting_the_signed_content_stream_is_invalid() {
    assert_modified("mod-shadow-hide.pdf", 3, 4, ChangeKind::Changed, "object 4");
}

#[test]
fn shadow_replace_overwriting_the_signed_font_is_invalid() {
    assert_modified(
        "mod-shadow-replace.pdf",
        3,
        5,
        ChangeKind::Changed,
        "object 5",
    );
}

#[test]
fn rewritten_signature_dictionary_is_invalid_and_named() {
    let r = verify_fixture("mod-signature-dictionary-rewritten.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.signatures.len(), 1, "one signature value, one signature");
    let sig = &r.signatures[0];
    assert!(
        sig.reason.as_deref().is_some_and(|x| x.contains("Giả")),
        "the report shows what the file now claims"
    );
    assert_eq!(check(sig, CheckId::ByteRange), Outcome::Failed);
    let change = first_disallowed(sig);
    assert!(
        change
            .rule
            .contains("signed signature dictionary was rewritten: /Reason"),
        "{change:#?}"
    );
}

#[test]
fn docmdp_p1_forbids_a_later_signature() {
    let r = verify_fixture("mod-p1-then-signature.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    let first = &r.signatures[0];
    assert_eq!(first.certification, Some(1));
    assert!(
        first_disallowed(first).rule.contains("DocMDP P=1"),
        "{:#?}",
        first.modifications
    );
    assert_eq!(
        r.signatures[1].sub_indication, None,
        "the later signature itself is fine"
    );
}

#[test]
fn docmdp_p2_forbids_annotations_and_p3_allows_them() {
    let r = verify_fixture("mod-p2-then-annotation.pdf");
    assert_eq!(r.verdict, Verdict::Invalid);
    let change = first_disallowed(&r.signatures[0]);
    assert_eq!(change.class, ChangeClass::Annotation);
    assert!(change.rule.contains("DocMDP P=2"), "{change:#?}");

    let r = verify_fixture("mod-p3-then-annotation.pdf");
    assert_eq!(r.verdict, Verdict::Valid);
    assert!(r.signatures[0]
        .modifications
        .iter()
        .any(|c| c.class == ChangeClass::Annotation && c.verdict == Allowed::Allowed));
}

#[test]
fn docmdp_p2_allows_the_organisation_signature() {
    let r = verify_fixture("two-signatures.pdf");
    assert_eq!(r.verdict, Verdict::Valid);
    let personal = &r.signatures[0];
    assert_eq!(check(personal, CheckId::Modifications), Outcome::Passed);
    assert!(!personal.modifications.is_empty());
    for c in &personal.modifications {
        assert_eq!(c.verdict, Allowed::Allowed, "{c:#?}");
        assert_eq!(c.revision, 3);
        assert!(
            matches!(c.class, ChangeClass::Signing | ChangeClass::Bookkeeping),
            "{c:#?}"
        );
    }
    assert!(personal
        .modifications
        .iter()
        .any(|c| c.rule.contains("new signature field 'Signature2'")));
    assert_eq!(
        check(&r.signatures[1], CheckId::Modifications),
        Outcome::Passed,
        "nothing follows the last one"
    );
}

#[test]
fn annotation_only_update_without_docmdp_is_valid_with_a_warning() {
    let r = verify_fixture("mod-annotation-only.pdf");
    assert_eq!(r.verdict, Verdict::Valid);
    let sig = &r.signatures[0];
    assert_eq!(check(sig, CheckId::Modifications), Outcome::Warning);
    let detail = &sig
        .checks
        .iter()
        .find(|c| c.id == CheckId::Modifications)
        .expect("check")
        .detail;
    assert!(
        detail.contains("/Text"),
        "the warning names the annotation: {detail}"
    );
}

#[test]
fn dss_only_update_is_valid() {
    let r = verify_fixture("mod-dss-only.pdf");
    assert_eq!(r.verdict, Verdict::Valid);
    let sig = &r.signatures[0];
    assert_eq!(check(sig, CheckId::Modifications), Outcome::Passed);
    assert!(
        sig.modifications
            .iter()
            .any(|c| c.class == ChangeClass::Dss),
        "{:#?}",
        sig.modifications
    );
}

#[test]
fn text_output_lists_the_changes_for_a_clerk() {
    let r = verify_fixture("mod-content-overlay.pdf");
    let text = kyso::report::render_text(&r, "mod-content-overlay.pdf", kyso::report::Lang::Vi);
    assert!(text.contains("Thay đổi sau khi ký (2):"), "{text}");
    // The clerk reads the change in Vietnamese; the English text keeps the rule's detail.
    assert!(
        text.contains(
            "✗ lần cập nhật 3, đối tượng 3: sửa đổi — thay đổi nội dung văn bản (không được phép)"
        ),
        "{text}"
    );
    let en = kyso::report::render_text(&r, "mod-content-overlay.pdf", kyso::report::Lang::En);
    assert!(
        en.contains("✗ revision 3, object 3: page changed: /Contents"),
        "{en}"
    );
    let r = verify_fixture("two-signatures.pdf");
    let text = kyso::report::render_text(&r, "two-signatures.pdf", kyso::report::Lang::Vi);
    assert!(
        text.contains(
            "Nội dung đã ký không thay đổi; các thay đổi sau đó nằm trong phạm vi cho phép."
        ),
        "{text}"
    );
}

#[test]
fn hybrid_reference_trailers_are_a_finding_of_their_own() {
    // A trailer gains /XRefStm after signing: the second signature's hash breaks, and the
    // document reports the hybrid reference apart.
    let mut bytes = common::fixture("two-signatures.pdf");
    let at = bytes
        .windows(16)
        .rposition(|w| w == b"trailer\n<< /Size")
        .expect("last trailer");
    bytes.splice(at + 11..at + 11, b"/XRefStm 0 ".iter().copied());
    let r = kyso::verify(&bytes, &common::context(), common::inputs()).expect("a report");
    assert!(r.hybrid_reference);
    assert!(
        r.reasons.iter().any(|x| x.code == "HYBRID_REFERENCE"),
        "{:#?}",
        r.reasons
    );
    assert!(!common::verify_fixture("two-signatures.pdf").hybrid_reference);
}
