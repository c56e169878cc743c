//! Vietnamese official documents (policy `decree-30`): the role of each signature, the
//! profile a file matches, each rule's outcome and what the clerk reads, one fixture per
//! shape of `certs-test/pdf/vn-*.pdf` (certs-test/README.md).

mod common;

use std::process::Command;

use common::{context, fixture, pki, root};
use kyso::policy::{Expect, PolicyReport, Profile, Role, RuleOutcome};
use kyso::report::{render_text, Indication, Lang, SubIndication};
use kyso::{Report, Verdict};

fn verify_expecting(name: &str, expect: Expect) -> Report {
    let mut ctx = context();
    ctx.policy.expect = expect;
    kyso::verify(&fixture(name), &ctx, common::inputs()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn policy(r: &Report) -> &PolicyReport {
    r.policy.as_ref().expect("policy decree-30 is the default")
}

/// Every rule's outcome, in the order the policy reports them.
fn outcomes(r: &Report) -> Vec<(&'static str, RuleOutcome)> {
    policy(r).rules.iter().map(|x| (x.id, x.outcome)).collect()
}

fn outcome(r: &Report, id: &str) -> RuleOutcome {
    policy(r)
        .rules
        .iter()
        .find(|x| x.id == id)
        .map(|x| x.outcome)
        .unwrap_or_else(|| panic!("no rule {id} in {:#?}", policy(r).rules))
}

fn roles(r: &Report) -> Vec<Role> {
    r.signatures.iter().map(|s| s.role).collect()
}

fn vi_text(r: &Report) -> String {
    render_text(r, "f.pdf", Lang::Vi)
}

use RuleOutcome::{Failed, Passed, Skipped, Warning};

#[test]
fn person_then_seal_is_a_properly_issued_document() {
    let r = verify_expecting("vn-issued.pdf", Expect::Issued);
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.reasons);
    assert_eq!(roles(&r), [Role::Personal, Role::Organisation]);
    assert!(r.signatures[0]
        .role_evidence
        .contains("huyentv@haugiang.gov.vn"));
    assert!(r.signatures[1].role_evidence.contains("Tỉnh ủy Hậu Giang"));
    let p = policy(&r);
    assert_eq!((p.id, p.version), ("decree-30", "1"));
    assert_eq!(p.sha256.len(), 64);
    assert_eq!(p.profile, Profile::Issued);
    assert_eq!(p.expected, Expect::Issued);
    assert!(p.conforms, "{:#?}", p.rules);
    assert_eq!(
        outcomes(&r),
        [
            ("profile", Passed),
            ("personal_signature", Passed),
            ("organisation_signature", Passed),
            ("signing_order", Passed),
            ("seal_last", Passed),
            ("own_seal", Passed),
            ("shown_identity", Passed),
            ("seal_position", Passed),
            ("time_format", Passed),
        ]
    );
    // The visible text is read from the composite font through its ToUnicode CMap.
    let text = r.signatures[0]
        .widget
        .as_ref()
        .and_then(|w| w.text.as_deref());
    assert_eq!(
        text,
        Some("Người ký: Trần Văn Huyến\nEmail: huyentv@haugiang.gov.vn\nCơ quan: Tỉnh ủy Hậu Giang\nChức vụ: Phó Bí thư\nThời gian ký: 2023-12-29T10:50:25+0700")
    );
    let t = vi_text(&r);
    assert!(t.contains("Vai trò: Chữ ký của người có thẩm quyền"), "{t}");
    assert!(t.contains("Vai trò: Chữ ký số của cơ quan, tổ chức"), "{t}");
    assert!(
        t.contains(
            "Thể thức (Nghị định 30/2020/NĐ-CP): ĐÚNG — văn bản điện tử đã được ban hành hợp lệ"
        ),
        "{t}"
    );
}

#[test]
fn the_person_alone_never_issued_the_document() {
    let r = verify_expecting("vn-person-only.pdf", Expect::Issued);
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(roles(&r), [Role::Personal]);
    let p = policy(&r);
    assert_eq!(p.profile, Profile::None);
    assert!(!p.conforms);
    assert_eq!(outcome(&r, "profile"), Failed);
    assert_eq!(outcome(&r, "personal_signature"), Passed);
    assert_eq!(outcome(&r, "organisation_signature"), Failed);
    assert_eq!(outcome(&r, "signing_order"), Skipped);
    let t = vi_text(&r);
    assert!(
        t.contains("KHÔNG ĐÚNG — chưa phải văn bản điện tử đã được ban hành hợp lệ"),
        "{t}"
    );
    assert!(
        t.contains("thiếu chữ ký số của cơ quan, tổ chức (thay cho con dấu)"),
        "{t}"
    );
}

#[test]
fn a_seal_alone_is_an_attachment_not_an_issued_document() {
    let r = verify_expecting("vn-seal-only.pdf", Expect::Issued);
    assert_eq!(roles(&r), [Role::Organisation]);
    assert_eq!(policy(&r).profile, Profile::Attachment);
    assert!(!policy(&r).conforms, "never a conforming issued document");
    assert_eq!(outcome(&r, "profile"), Failed);
    assert_eq!(outcome(&r, "personal_signature"), Failed);
    assert_eq!(outcome(&r, "time_format"), Skipped, "no visible text");
    let t = vi_text(&r);
    assert!(
        t.contains("tệp chỉ có chữ ký số của cơ quan, tổ chức"),
        "{t}"
    );
}

#[test]
fn the_seal_before_the_person_fails_the_order() {
    let r = verify_expecting("vn-seal-before-person.pdf", Expect::Issued);
    assert_eq!(roles(&r), [Role::Organisation, Role::Personal]);
    assert_eq!(policy(&r).profile, Profile::None);
    assert!(!policy(&r).conforms);
    assert_eq!(outcome(&r, "signing_order"), Failed);
    assert_eq!(outcome(&r, "seal_last"), Failed);
    let t = vi_text(&r);
    assert!(
        t.contains("chữ ký số 1 (Tỉnh ủy Hậu Giang) của cơ quan, tổ chức được ký trước chữ ký 2 (Trần Văn Huyến) của người có thẩm quyền"),
        "{t}"
    );
}

#[test]
fn a_seal_of_another_body_is_not_the_signers_own() {
    let r = verify_expecting("vn-seal-other-body.pdf", Expect::Issued);
    assert_eq!(roles(&r), [Role::Personal, Role::Organisation]);
    assert_eq!(policy(&r).profile, Profile::Issued);
    assert!(!policy(&r).conforms);
    assert_eq!(outcome(&r, "own_seal"), Failed);
    let rule = policy(&r)
        .rules
        .iter()
        .find(|x| x.id == "own_seal")
        .expect("own_seal");
    assert!(
        rule.en.contains("Tỉnh ủy Cần Thơ") && rule.en.contains("TỈNH ỦY HẬU GIANG"),
        "{}",
        rule.en
    );
    assert!(vi_text(&r).contains("không phải con dấu của cơ quan mình"));
}

#[test]
fn a_reason_naming_another_person_is_reported_with_both_names() {
    let r = verify_expecting("vn-reason-other-person.pdf", Expect::Issued);
    assert_eq!(r.verdict, Verdict::Valid, "the signatures themselves hold");
    assert_eq!(outcome(&r, "shown_identity"), Failed);
    assert!(!policy(&r).conforms);
    let rule = policy(&r)
        .rules
        .iter()
        .find(|x| x.id == "shown_identity")
        .expect("rule");
    assert!(
        rule.en
            .contains("its /Reason names Nguyễn Văn Khác, its certificate Trần Văn Huyến"),
        "{}",
        rule.en
    );
    assert!(rule.en.contains("khacnv@haugiang.gov.vn"), "{}", rule.en);
    assert!(vi_text(&r).contains(
        "lý do ký (/Reason) ghi Nguyễn Văn Khác, nhưng chứng thư số cấp cho Trần Văn Huyến"
    ));
}

#[test]
fn visible_text_naming_another_person_is_reported() {
    let r = verify_expecting("vn-text-other-person.pdf", Expect::Issued);
    assert_eq!(outcome(&r, "shown_identity"), Failed);
    let rule = policy(&r)
        .rules
        .iter()
        .find(|x| x.id == "shown_identity")
        .expect("rule");
    assert!(
        rule.en
            .contains("its visible text names Lê Văn Khác, its certificate Trần Văn Huyến"),
        "{}",
        rule.en
    );
}

#[test]
fn a_signature_after_the_seal_breaks_the_seal_last_rule() {
    let r = verify_expecting("vn-signature-after-seal.pdf", Expect::Issued);
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(
        roles(&r),
        [Role::Personal, Role::Organisation, Role::Personal]
    );
    assert_eq!(outcome(&r, "seal_last"), Failed);
    assert!(!policy(&r).conforms);
    assert!(vi_text(&r)
        .contains("chữ ký 3 (Nguyễn Thị Lan) được thêm vào sau chữ ký số 2 (Tỉnh ủy Hậu Giang)"));
}

#[test]
fn an_attachment_conforms_when_the_caller_expects_one() {
    let r = verify_expecting("vn-attachment.pdf", Expect::Attachment);
    let p = policy(&r);
    assert_eq!(p.profile, Profile::Attachment);
    assert!(p.conforms, "{:#?}", p.rules);
    assert_eq!(
        outcomes(&r),
        [
            ("profile", Passed),
            ("organisation_signature", Passed),
            ("organisation_only", Passed),
            ("seal_last", Passed),
            ("shown_identity", Passed),
            ("document_number", Passed),
            ("time_format", Passed),
        ]
    );
    assert!(vi_text(&r).contains("ĐÚNG — phụ lục gửi kèm hợp lệ"));
    // Expected as issued (the default), the same file does not conform.
    let r = verify_expecting("vn-attachment.pdf", Expect::Issued);
    assert!(!policy(&r).conforms);
    // A main document is no attachment.
    let r = verify_expecting("vn-issued.pdf", Expect::Attachment);
    assert!(!policy(&r).conforms);
    assert_eq!(outcome(&r, "organisation_only"), Failed);
}

#[test]
fn a_copy_is_marked_and_carries_only_the_copying_body() {
    let r = verify_expecting("vn-copy.pdf", Expect::Copy);
    let p = policy(&r);
    assert_eq!(p.profile, Profile::Copy);
    assert!(p.conforms, "{:#?}", p.rules);
    assert_eq!(outcome(&r, "copy_mark"), Passed);
    assert!(vi_text(&r).contains("ĐÚNG — bản sao điện tử hợp lệ"));
    // `any` accepts each shape that is properly made, and no other.
    assert!(policy(&verify_expecting("vn-copy.pdf", Expect::Any)).conforms);
    assert!(policy(&verify_expecting("vn-issued.pdf", Expect::Any)).conforms);
    assert!(!policy(&verify_expecting("vn-person-only.pdf", Expect::Any)).conforms);
    // An attachment is not a copy: no copy mark.
    let r = verify_expecting("vn-attachment.pdf", Expect::Copy);
    assert_eq!(outcome(&r, "copy_mark"), Failed);
}

#[test]
fn appearance_rules_warn_and_never_fail_the_document() {
    let r = verify_expecting("vn-appearance-off.pdf", Expect::Issued);
    assert_eq!(outcome(&r, "seal_position"), Warning);
    assert_eq!(outcome(&r, "time_format"), Warning);
    assert!(policy(&r).conforms, "{:#?}", policy(&r).rules);
    let t = vi_text(&r);
    assert!(
        t.contains("! hình con dấu không trùm lên khoảng 1/3 bên trái"),
        "{t}"
    );
    assert!(
        t.contains("không hiển thị thời gian ký theo ISO 8601"),
        "{t}"
    );
}

#[test]
fn a_blanked_signature_value_is_a_removed_signature() {
    let r = verify_expecting("vn-signature-blanked.pdf", Expect::Issued);
    assert_eq!(r.verdict, Verdict::Invalid, "{:#?}", r.reasons);
    assert!(
        r.unsigned_fields.is_empty(),
        "not an unsigned field: {:?}",
        r.unsigned_fields
    );
    let seal = &r.signatures[1];
    assert_eq!(seal.indication, Indication::Failed);
    assert_eq!(seal.sub_indication, Some(SubIndication::FormatFailure));
    assert!(seal
        .checks
        .iter()
        .any(|c| c.detail.contains("removed after signing")));
    assert!(!policy(&r).conforms);
}

#[test]
fn policy_none_judges_only_the_signatures() {
    let mut ctx = context();
    ctx.policy.choice = kyso::policy::PolicyChoice::None;
    let r = kyso::verify(&fixture("vn-person-only.pdf"), &ctx, common::inputs()).expect("verifies");
    assert!(r.policy.is_none());
    assert_eq!(
        roles(&r),
        [Role::Personal],
        "roles are reported whatever the policy"
    );
    assert!(!vi_text(&r).contains("Thể thức"));
}

fn kyso_verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .current_dir(root())
        .arg("verify")
        .arg("--trust")
        .arg(pki("root-ca.pem"))
        .arg("--intermediates")
        .arg(pki("party-ca.pem"))
        .args(["--revocation", "offline"])
        .args(args)
        .output()
        .expect("kyso runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).expect("utf-8"),
    )
}

#[test]
fn exit_status_5_when_valid_signatures_make_no_proper_document() {
    let (code, out) = kyso_verify(&["certs-test/pdf/vn-issued.pdf"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = kyso_verify(&["certs-test/pdf/vn-person-only.pdf"]);
    assert_eq!(code, 5, "{out}");
    let (code, _) = kyso_verify(&["--policy", "none", "certs-test/pdf/vn-person-only.pdf"]);
    assert_eq!(code, 0);
    let (code, _) = kyso_verify(&["--expect", "attachment", "certs-test/pdf/vn-attachment.pdf"]);
    assert_eq!(code, 0);
    let (code, out) = kyso_verify(&["--format", "json", "certs-test/pdf/vn-seal-only.pdf"]);
    assert_eq!(code, 5);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["policy"]["profile"], "attachment");
    assert_eq!(json["policy"]["expected"], "issued");
    assert_eq!(json["policy"]["conforms"], false);
    assert_eq!(json["signatures"][0]["role"], "organisation");
    assert!(json["signatures"][0]["role_evidence"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    // INVALID outranks "not conforming".
    let (code, _) = kyso_verify(&["certs-test/pdf/vn-signature-blanked.pdf"]);
    assert_eq!(code, 1);
    let (code, _) = kyso_verify(&["--expect", "nonsense", "certs-test/pdf/vn-issued.pdf"]);
    assert_eq!(code, 64);
}

#[test]
fn an_operators_roles_file_wins_and_changes_the_policy_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let roles_file = dir.path().join("roles.toml");
    let org = std::fs::read(pki("organisation.pem")).expect("pem");
    let der = openssl::x509::X509::from_pem(&org)
        .and_then(|c| c.to_der())
        .expect("certificate");
    let sha = hex::encode(openssl::sha::sha256(&der));
    // The operator says the body's certificate is a person's: it wins over the shape.
    std::fs::write(
        &roles_file,
        format!("[[personal]]\nsha256 = \"{sha}\"\nnote = \"test\"\n"),
    )
    .expect("written");
    let mut ctx = context();
    ctx.policy.roles = kyso::policy::RoleRules::with_operator(&roles_file).expect("roles read");
    let r = kyso::verify(&fixture("vn-issued.pdf"), &ctx, common::inputs()).expect("verifies");
    assert_eq!(roles(&r), [Role::Personal, Role::Personal]);
    assert!(r.signatures[1].role_evidence.contains(&sha));
    let default = verify_expecting("vn-issued.pdf", Expect::Issued);
    assert_ne!(policy(&r).sha256, policy(&default).sha256);
    let (code, _) = kyso_verify(&[
        "--roles",
        roles_file.to_str().expect("utf-8 path"),
        "certs-test/pdf/vn-issued.pdf",
    ]);
    assert_eq!(code, 5);
}

/// Every rule's outcome, fixture by fixture: the complete picture the tests above look into.
#[test]
fn every_fixture_has_the_rule_outcomes_it_was_made_for() {
    type Outcomes = &'static [(&'static str, RuleOutcome)];
    let issued_rules = |o: [RuleOutcome; 9]| -> Vec<(&'static str, RuleOutcome)> {
        [
            "profile",
            "personal_signature",
            "organisation_signature",
            "signing_order",
            "seal_last",
            "own_seal",
            "shown_identity",
            "seal_position",
            "time_format",
        ]
        .into_iter()
        .zip(o)
        .collect()
    };
    let cases: [(&str, [RuleOutcome; 9]); 9] = [
        (
            "vn-person-only.pdf",
            [
                Failed, Passed, Failed, Skipped, Skipped, Skipped, Passed, Skipped, Passed,
            ],
        ),
        (
            "vn-seal-only.pdf",
            [
                Failed, Failed, Passed, Skipped, Passed, Skipped, Passed, Skipped, Skipped,
            ],
        ),
        (
            "vn-seal-before-person.pdf",
            [
                Failed, Passed, Passed, Failed, Failed, Passed, Passed, Passed, Passed,
            ],
        ),
        (
            "vn-seal-other-body.pdf",
            [
                Passed, Passed, Passed, Passed, Passed, Failed, Passed, Passed, Passed,
            ],
        ),
        (
            "vn-reason-other-person.pdf",
            [
                Passed, Passed, Passed, Passed, Passed, Passed, Failed, Passed, Passed,
            ],
        ),
        (
            "vn-text-other-person.pdf",
            [
                Passed, Passed, Passed, Passed, Passed, Passed, Failed, Passed, Passed,
            ],
        ),
        (
            "vn-signature-after-seal.pdf",
            [
                Passed, Passed, Passed, Passed, Failed, Passed, Passed, Passed, Passed,
            ],
        ),
        (
            "vn-appearance-off.pdf",
            [
                Passed, Passed, Passed, Passed, Passed, Passed, Passed, Warning, Warning,
            ],
        ),
        (
            "vn-signature-blanked.pdf",
            [
                Failed, Passed, Failed, Skipped, Skipped, Skipped, Passed, Skipped, Passed,
            ],
        ),
    ];
    for (name, want) in cases {
        let r = verify_expecting(name, Expect::Issued);
        assert_eq!(outcomes(&r), issued_rules(want), "{name}");
        let conforms = !want.contains(&Failed);
        assert_eq!(policy(&r).conforms, conforms, "{name}");
        let t = vi_text(&r);
        let line = if conforms {
            "ĐÚNG — văn bản điện tử đã được ban hành hợp lệ"
        } else {
            "KHÔNG ĐÚNG — chưa phải văn bản điện tử đã được ban hành hợp lệ"
        };
        assert!(t.contains(line), "{name}: {t}");
    }
    let copy: Outcomes = &[
        ("profile", Passed),
        ("organisation_signature", Passed),
        ("organisation_only", Passed),
        ("seal_last", Passed),
        ("shown_identity", Passed),
        ("copy_mark", Passed),
        ("time_format", Passed),
    ];
    assert_eq!(
        outcomes(&verify_expecting("vn-copy.pdf", Expect::Copy)),
        copy
    );
}
