//! Policy `decree-30`: the rules for an issued Vietnamese electronic document, from Decree
//! 30/2020/NĐ-CP (Art. 5, 32–33) and its Appendix I as summarised in VN-PKI.md.
//!
//! - A main document carries a valid personal signature and after it the valid signature of
//!   the issuing body, the last signature, covering the whole file (later revisions add only
//!   validation data and document timestamps). The seal is the signer's own body.
//! - Attachments sent as their own file and electronic copies (`SAO Y`, `SAO LỤC`,
//!   `TRÍCH SAO`) carry only the body's signature.
//! - What a signature shows (the BCY `/Reason`, `/Name`, its visible text) names its
//!   certificate's holder.
//! - The appearance rules of Appendix I that the file lets a reader check (the seal over the
//!   left third of the person's image, the signing time in ISO 8601 with the Vietnam offset)
//!   are warnings, never a reason on their own for a document not to conform.
//!
//! [`definition`] is the policy as data; its SHA-256 goes into every result.

use serde::Serialize;

use super::outcome::Role;
use super::outcome::{Expect, PolicyReport, Profile, RuleOutcome, RuleResult};
use super::roles::{fold, same_name, RoleRules};
use crate::integrity::ChangeClass;
use crate::pdf::SignatureKind;
use crate::report::{Indication, Report, SignatureReport};

/// The policy's id, as reports and records name it.
pub const ID: &str = "decree-30";
/// Bumped whenever a rule or a number below changes meaning.
pub const VERSION: &str = "1";

/// The BCY tools' `/Reason` ends so: `"<CN><<email>> đã ký lên văn bản này!"` (VN-PKI.md).
const BCY_REASON_SUFFIX: &str = "đã ký lên văn bản này!";
/// How far right of the person's image's left edge the seal's centre may sit, as a share of
/// that image's width: the seal covers "about the left third" (Appendix I), so its centre
/// falls in the left half of the image.
const SEAL_CENTRE_MAX: f32 = 0.5;
/// The offsets a Vietnam-time ISO 8601 timestamp carries: `+0700` as the BCY tools write it,
/// `+07:00` as RFC 3339 does.
const VIETNAM_OFFSETS: [&str; 2] = ["+0700", "+07:00"];
/// The marks of an electronic copy (Appendix I), folded as [`fold`] does.
const COPY_MARKS: [&str; 3] = ["sao y", "sao luc", "trich sao"];
/// Labels of the visible text layer (VN-PKI.md), folded: whose name, which body, which
/// address, which time.
const NAME_LABELS: [&str; 3] = ["nguoi ky", "ky boi", "signed by"];
const BODY_LABELS: [&str; 3] = ["co quan", "don vi", "to chuc"];
const EMAIL_LABELS: [&str; 2] = ["email", "thu dien tu"];
const TIME_LABELS: [&str; 3] = ["thoi gian ky", "ngay ky", "thoi gian"];

/// One rule of the definition.
#[derive(Debug, Serialize)]
struct RuleDef {
    id: &'static str,
    /// `fail` rules can make a document non-conforming; `warn` rules never do.
    severity: &'static str,
    profiles: &'static [&'static str],
    en: &'static str,
}

const RULES: &[RuleDef] = &[
    RuleDef { id: "profile", severity: "fail", profiles: &["issued", "attachment", "copy"],
        en: "the file has the shape of the expected profile" },
    RuleDef { id: "personal_signature", severity: "fail", profiles: &["issued"],
        en: "a valid signature of the competent person" },
    RuleDef { id: "organisation_signature", severity: "fail", profiles: &["issued", "attachment", "copy"],
        en: "a valid signature of the issuing body" },
    RuleDef { id: "signing_order", severity: "fail", profiles: &["issued"],
        en: "the body signs after the person (Art. 32-33)" },
    RuleDef { id: "organisation_only", severity: "fail", profiles: &["attachment", "copy"],
        en: "only the body's signature" },
    RuleDef { id: "seal_last", severity: "fail", profiles: &["issued", "attachment", "copy"],
        en: "the body's signature is the last and covers the whole file; later revisions add only validation data and document timestamps" },
    RuleDef { id: "own_seal", severity: "fail", profiles: &["issued"],
        en: "the body's certificate names the body of the person's certificate (its O or an OU), case and diacritics aside" },
    RuleDef { id: "shown_identity", severity: "fail", profiles: &["issued", "attachment", "copy"],
        en: "the BCY /Reason, /Name and the visible text name the certificate's holder" },
    RuleDef { id: "copy_mark", severity: "fail", profiles: &["copy"],
        en: "the copying body's text says SAO Y, SAO LỤC or TRÍCH SAO" },
    RuleDef { id: "seal_position", severity: "warn", profiles: &["issued"],
        en: "the seal's widget lies over about the left third of the person's" },
    RuleDef { id: "document_number", severity: "warn", profiles: &["attachment"],
        en: "the body's text gives the document's number and symbol" },
    RuleDef { id: "time_format", severity: "warn", profiles: &["issued", "attachment", "copy"],
        en: "the visible signing time is ISO 8601 with the Vietnam offset" },
];

#[derive(Serialize)]
struct Definition<'a> {
    id: &'static str,
    version: &'static str,
    rules: &'static [RuleDef],
    bcy_reason_suffix: &'static str,
    seal_centre_max: f32,
    vietnam_offsets: [&'static str; 2],
    copy_marks: [&'static str; 3],
    name_labels: [&'static str; 3],
    body_labels: [&'static str; 3],
    email_labels: [&'static str; 2],
    time_labels: [&'static str; 3],
    roles: &'a RoleRules,
}

/// The policy's definition as the JSON that is hashed: every rule and number, and the role
/// rules in force (an operator's list changes the hash).
pub fn definition(roles: &RoleRules) -> String {
    serde_json::to_string(&Definition {
        id: ID,
        version: VERSION,
        rules: RULES,
        bcy_reason_suffix: BCY_REASON_SUFFIX,
        seal_centre_max: SEAL_CENTRE_MAX,
        vietnam_offsets: VIETNAM_OFFSETS,
        copy_marks: COPY_MARKS,
        name_labels: NAME_LABELS,
        body_labels: BODY_LABELS,
        email_labels: EMAIL_LABELS,
        time_labels: TIME_LABELS,
        roles,
    })
    // Serialising plain structs of strings and numbers cannot fail.
    .unwrap_or_default()
}

/// A signature with its number in the report (1-based), for the messages.
struct Sig<'a> {
    n: usize,
    s: &'a SignatureReport,
}

impl Sig<'_> {
    fn who(&self) -> String {
        let name = self
            .s
            .signer
            .as_ref()
            .and_then(|x| x.common_name.clone())
            .or_else(|| self.s.field.clone())
            .unwrap_or_default();
        format!("{} ({name})", self.n)
    }
    fn passed(&self) -> bool {
        self.s.indication == Indication::Passed
    }
    fn text(&self) -> Option<&str> {
        self.s.widget.as_ref().and_then(|w| w.text.as_deref())
    }
}

/// Judges `report` (whose signatures have their roles) under `decree-30`.
pub fn judge(report: &Report, expected: Expect, roles: &RoleRules) -> PolicyReport {
    let sigs: Vec<Sig<'_>> = report
        .signatures
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == SignatureKind::Signature)
        .map(|(i, s)| Sig { n: i + 1, s })
        .collect();
    let personal: Vec<&Sig<'_>> = sigs.iter().filter(|s| s.s.role == Role::Personal).collect();
    let bodies: Vec<&Sig<'_>> = sigs
        .iter()
        .filter(|s| s.s.role == Role::Organisation)
        .collect();
    let first_personal = personal.first().map(|s| s.n);
    let seal_after_person = bodies
        .iter()
        .any(|b| first_personal.is_some_and(|p| b.n > p));
    let profile = if seal_after_person {
        Profile::Issued
    } else if !personal.is_empty() || bodies.is_empty() {
        Profile::None
    } else if bodies.iter().any(|b| has_copy_mark(b)) {
        Profile::Copy
    } else {
        Profile::Attachment
    };
    // The rules of the profile the caller expects; with `any`, of the one the file has.
    let judged = match expected {
        Expect::Issued => Profile::Issued,
        Expect::Attachment => Profile::Attachment,
        Expect::Copy => Profile::Copy,
        Expect::Any if profile == Profile::None => Profile::Issued,
        Expect::Any => profile,
    };
    let mut rules = Vec::new();
    rules.push(profile_rule(profile, expected, &personal, &bodies));
    // The seal that counts: the last body signature after the person's for a main
    // document, the last body signature otherwise.
    let seal = match judged {
        Profile::Issued => bodies
            .iter()
            .rev()
            .find(|b| first_personal.is_some_and(|p| b.n > p))
            .or(bodies.last())
            .copied(),
        _ => bodies.last().copied(),
    };
    if judged == Profile::Issued {
        rules.push(personal_rule(&personal));
    }
    rules.push(organisation_rule(&bodies, seal));
    if judged == Profile::Issued {
        rules.push(order_rule(&personal, &bodies));
    } else {
        rules.push(organisation_only_rule(&personal, &sigs));
    }
    rules.push(seal_last_rule(&sigs, seal));
    if judged == Profile::Issued {
        rules.push(own_seal_rule(&personal, seal));
    }
    rules.push(shown_identity_rule(&sigs));
    if judged == Profile::Copy {
        rules.push(copy_mark_rule(seal));
    }
    if judged == Profile::Issued {
        rules.push(seal_position_rule(&personal, seal));
    }
    if judged == Profile::Attachment {
        rules.push(document_number_rule(seal));
    }
    rules.push(time_format_rule(&sigs));
    let conforms = rules.iter().all(|r| r.outcome != RuleOutcome::Failed);
    PolicyReport {
        id: ID,
        version: VERSION,
        sha256: hex::encode(openssl::sha::sha256(definition(roles).as_bytes())),
        profile,
        expected,
        conforms,
        rules,
    }
}

fn rule(id: &'static str, outcome: RuleOutcome, en: String, vi: String) -> RuleResult {
    RuleResult {
        id,
        outcome,
        en,
        vi,
    }
}

fn profile_rule(
    profile: Profile,
    expected: Expect,
    personal: &[&Sig<'_>],
    bodies: &[&Sig<'_>],
) -> RuleResult {
    let matches = match expected {
        Expect::Issued => profile == Profile::Issued,
        Expect::Attachment => profile == Profile::Attachment,
        Expect::Copy => profile == Profile::Copy,
        Expect::Any => profile != Profile::None,
    };
    if matches {
        return rule(
            "profile",
            RuleOutcome::Passed,
            format!("the file is {}", profile.en()),
            format!("tệp là {}", profile.vi()),
        );
    }
    let (en, vi) = match (profile, personal.is_empty(), bodies.is_empty()) {
        (Profile::Attachment | Profile::Copy, _, _) => (
            format!("the file carries only the body's signature: it is {}, not a properly issued document", profile.en()),
            format!("tệp chỉ có chữ ký số của cơ quan, tổ chức: đây là {}, không phải văn bản đã ban hành hợp lệ", profile.vi()),
        ),
        (Profile::None, false, true) => (
            "the file carries the competent person's signature but not the body's: it was never issued".to_owned(),
            "tệp có chữ ký của người có thẩm quyền nhưng chưa có chữ ký số của cơ quan, tổ chức: văn bản chưa được ban hành".to_owned(),
        ),
        (Profile::None, false, false) => (
            "the body's signature comes before the competent person's, never after it".to_owned(),
            "chữ ký số của cơ quan, tổ chức có trước chữ ký của người có thẩm quyền, không phải sau".to_owned(),
        ),
        (Profile::None, true, _) => (
            "no signature is known to be the competent person's or the body's".to_owned(),
            "không có chữ ký nào được xác định là của người có thẩm quyền hay của cơ quan, tổ chức".to_owned(),
        ),
        (Profile::Issued, _, _) => (
            format!("the file is {}, not what the caller expected", profile.en()),
            format!("tệp là {}, không phải dạng được yêu cầu", profile.vi()),
        ),
    };
    rule("profile", RuleOutcome::Failed, en, vi)
}

fn personal_rule(personal: &[&Sig<'_>]) -> RuleResult {
    match personal.iter().find(|s| s.passed()) {
        Some(s) => rule(
            "personal_signature",
            RuleOutcome::Passed,
            format!(
                "signature {} is the competent person's and is valid",
                s.who()
            ),
            format!("chữ ký {} là của người có thẩm quyền và hợp lệ", s.who()),
        ),
        None if personal.is_empty() => rule(
            "personal_signature",
            RuleOutcome::Failed,
            "the competent person's signature is missing".into(),
            "thiếu chữ ký của người có thẩm quyền".into(),
        ),
        None => rule(
            "personal_signature",
            RuleOutcome::Failed,
            format!(
                "the competent person's signature {} is not valid",
                personal[0].who()
            ),
            format!(
                "chữ ký {} của người có thẩm quyền không hợp lệ",
                personal[0].who()
            ),
        ),
    }
}

fn organisation_rule(bodies: &[&Sig<'_>], seal: Option<&Sig<'_>>) -> RuleResult {
    match seal {
        Some(s) if s.passed() => rule(
            "organisation_signature",
            RuleOutcome::Passed,
            format!("signature {} is the body's and is valid", s.who()),
            format!(
                "chữ ký {} là chữ ký số của cơ quan, tổ chức và hợp lệ",
                s.who()
            ),
        ),
        Some(s) => rule(
            "organisation_signature",
            RuleOutcome::Failed,
            format!("the body's signature {} is not valid", s.who()),
            format!("chữ ký số {} của cơ quan, tổ chức không hợp lệ", s.who()),
        ),
        None => {
            debug_assert!(bodies.is_empty());
            rule(
                "organisation_signature",
                RuleOutcome::Failed,
                "the body's signature (which stands for its seal) is missing".into(),
                "thiếu chữ ký số của cơ quan, tổ chức (thay cho con dấu)".into(),
            )
        }
    }
}

fn order_rule(personal: &[&Sig<'_>], bodies: &[&Sig<'_>]) -> RuleResult {
    let (Some(p), false) = (personal.first(), bodies.is_empty()) else {
        return rule(
            "signing_order",
            RuleOutcome::Skipped,
            "there are not both a personal and a body's signature to order".into(),
            "không có đủ chữ ký cá nhân và chữ ký của cơ quan để xét thứ tự".into(),
        );
    };
    match bodies.iter().find(|b| b.n < p.n) {
        Some(b) => rule(
            "signing_order",
            RuleOutcome::Failed,
            format!(
                "the body's signature {} was applied before the competent person's {}",
                b.who(),
                p.who()
            ),
            format!(
                "chữ ký số {} của cơ quan, tổ chức được ký trước chữ ký {} của người có thẩm quyền",
                b.who(),
                p.who()
            ),
        ),
        None => rule(
            "signing_order",
            RuleOutcome::Passed,
            format!("the body signed after the competent person {}", p.who()),
            format!("cơ quan, tổ chức ký sau người có thẩm quyền {}", p.who()),
        ),
    }
}

fn organisation_only_rule(personal: &[&Sig<'_>], sigs: &[Sig<'_>]) -> RuleResult {
    let others: Vec<String> = sigs
        .iter()
        .filter(|s| s.s.role != Role::Organisation)
        .map(Sig::who)
        .collect();
    if others.is_empty() {
        rule(
            "organisation_only",
            RuleOutcome::Passed,
            "only the body has signed".into(),
            "chỉ có chữ ký số của cơ quan, tổ chức".into(),
        )
    } else {
        let kind = if personal.is_empty() {
            "another"
        } else {
            "a personal"
        };
        rule(
            "organisation_only",
            RuleOutcome::Failed,
            format!(
                "{kind} signature is there besides the body's: {}",
                others.join(", ")
            ),
            format!(
                "ngoài chữ ký số của cơ quan, tổ chức còn có chữ ký khác: {}",
                others.join(", ")
            ),
        )
    }
}

fn seal_last_rule(sigs: &[Sig<'_>], seal: Option<&Sig<'_>>) -> RuleResult {
    let Some(seal) = seal else {
        return rule(
            "seal_last",
            RuleOutcome::Skipped,
            "there is no body's signature".into(),
            "không có chữ ký số của cơ quan, tổ chức".into(),
        );
    };
    if let Some(later) = sigs.iter().find(|s| s.n > seal.n) {
        return rule(
            "seal_last",
            RuleOutcome::Failed,
            format!(
                "signature {} was added after the body's signature {}",
                later.who(),
                seal.who()
            ),
            format!(
                "chữ ký {} được thêm vào sau chữ ký số {} của cơ quan, tổ chức",
                later.who(),
                seal.who()
            ),
        );
    }
    let allowed = |c: ChangeClass| {
        matches!(
            c,
            ChangeClass::Bookkeeping
                | ChangeClass::Dss
                | ChangeClass::DocumentTimestamp
                | ChangeClass::Signing
        )
    };
    if let Some(c) = seal.s.modifications.iter().find(|c| !allowed(c.class)) {
        let outcome = if c.class == ChangeClass::Metadata {
            RuleOutcome::Warning
        } else {
            RuleOutcome::Failed
        };
        return rule(
            "seal_last",
            outcome,
            format!("after the body's signature {}, revision {} changed object {}: {}", seal.who(), c.revision, c.object, c.rule),
            format!("sau chữ ký số {} của cơ quan, tổ chức, lần cập nhật {} đã thay đổi đối tượng {} ({})", seal.who(), c.revision, c.object, crate::report::change_class_vi(c.class)),
        );
    }
    rule(
        "seal_last",
        RuleOutcome::Passed,
        format!("the body's signature {} is the last and covers the document; anything after it is validation data or a document timestamp", seal.who()),
        format!("chữ ký số {} của cơ quan, tổ chức là chữ ký cuối cùng và bao trùm văn bản", seal.who()),
    )
}

fn own_seal_rule(personal: &[&Sig<'_>], seal: Option<&Sig<'_>>) -> RuleResult {
    let (Some(p), Some(seal)) = (personal.first(), seal) else {
        return rule(
            "own_seal",
            RuleOutcome::Skipped,
            "there are not both a personal and a body's signature to compare".into(),
            "không có đủ chữ ký cá nhân và chữ ký của cơ quan để đối chiếu".into(),
        );
    };
    let (Some(ps), Some(bs)) = (p.s.signer.as_ref(), seal.s.signer.as_ref()) else {
        return rule(
            "own_seal",
            RuleOutcome::Skipped,
            "a certificate to compare is missing".into(),
            "thiếu chứng thư số để đối chiếu".into(),
        );
    };
    // The person's body at any level: O, then each OU.
    let chain: Vec<&String> = ps
        .organization
        .iter()
        .chain(&ps.organizational_units)
        .collect();
    let body_names: Vec<&String> = bs.common_name.iter().chain(&bs.organization).collect();
    let body = bs
        .common_name
        .clone()
        .or_else(|| bs.organization.clone())
        .unwrap_or_default();
    let person_body = chain
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" / ");
    match chain
        .iter()
        .find(|c| body_names.iter().any(|b| same_name(b, c)))
    {
        Some(level) => rule(
            "own_seal",
            RuleOutcome::Passed,
            format!("the seal {body} is the body {level} of the person's certificate"),
            format!("chữ ký số của {body} là của chính cơ quan {level} của người ký"),
        ),
        None => rule(
            "own_seal",
            RuleOutcome::Failed,
            format!("the seal is the body {body}, but the person's certificate belongs to {person_body}"),
            format!("chữ ký số là của {body}, nhưng người ký thuộc {person_body}: không phải con dấu của cơ quan mình"),
        ),
    }
}

/// What a signature shows of its holder, compared with its certificate.
fn identity_mismatches(sig: &Sig<'_>, out: &mut Vec<(String, String)>) -> usize {
    let Some(cert) = sig.s.signer.as_ref() else {
        return 0;
    };
    let cn = cert.common_name.clone().unwrap_or_default();
    // Folded once: every name shown is compared with it.
    let cn_folded = fold(&cn);
    let mut compared = 0;
    let name = |what_en: &str, what_vi: &str, shown: &str, out: &mut Vec<(String, String)>| {
        if cn_folded.is_empty() || fold(shown) != cn_folded {
            out.push((
                format!(
                    "signature {}: its {what_en} names {shown}, its certificate {cn}",
                    sig.who()
                ),
                format!(
                    "chữ ký {}: {what_vi} ghi {shown}, nhưng chứng thư số cấp cho {cn}",
                    sig.who()
                ),
            ));
        }
        1
    };
    if let Some((shown, email)) = sig.s.reason.as_deref().and_then(bcy_reason) {
        compared += name("/Reason", "lý do ký (/Reason)", &shown, out);
        if let (Some(shown_email), Some(cert_email)) = (email, cert.email.as_deref()) {
            if !shown_email.eq_ignore_ascii_case(cert_email) {
                out.push((
                    format!("signature {}: its /Reason gives the address {shown_email}, its certificate {cert_email}", sig.who()),
                    format!("chữ ký {}: lý do ký ghi thư điện tử {shown_email}, nhưng chứng thư số ghi {cert_email}", sig.who()),
                ));
            }
        }
    }
    if let Some(n) = sig.s.name.as_deref().filter(|n| !n.trim().is_empty()) {
        compared += name("/Name", "tên người ký (/Name)", n, out);
    }
    let mut body_names: Vec<&String> = cert.organization.iter().collect();
    body_names.extend(&cert.organizational_units);
    body_names.extend(&cert.common_name);
    let bodies_folded: Vec<String> = body_names.iter().map(|b| fold(b)).collect();
    for line in sig.text().into_iter().flat_map(str::lines) {
        if let Some((shown, _)) = bcy_reason(line) {
            compared += name("visible text", "phần hiển thị", &shown, out);
            continue;
        }
        let Some((label, value)) = labelled(line) else {
            continue;
        };
        if NAME_LABELS.contains(&label.as_str()) {
            compared += name("visible text", "phần hiển thị", value, out);
        } else if BODY_LABELS.contains(&label.as_str()) {
            compared += 1;
            let shown = fold(value);
            if shown.is_empty() || !bodies_folded.contains(&shown) {
                let cert_bodies = body_names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" / ");
                out.push((
                    format!("signature {}: its visible text names the body {value}, its certificate {cert_bodies}", sig.who()),
                    format!("chữ ký {}: phần hiển thị ghi cơ quan {value}, nhưng chứng thư số ghi {cert_bodies}", sig.who()),
                ));
            }
        } else if EMAIL_LABELS.contains(&label.as_str()) {
            compared += 1;
            if let Some(e) = cert
                .email
                .as_deref()
                .filter(|e| !e.eq_ignore_ascii_case(value))
            {
                out.push((
                    format!("signature {}: its visible text gives the address {value}, its certificate {e}", sig.who()),
                    format!("chữ ký {}: phần hiển thị ghi thư điện tử {value}, nhưng chứng thư số ghi {e}", sig.who()),
                ));
            }
        }
    }
    compared
}

fn shown_identity_rule(sigs: &[Sig<'_>]) -> RuleResult {
    let mut mismatches = Vec::new();
    let compared: usize = sigs
        .iter()
        .map(|s| identity_mismatches(s, &mut mismatches))
        .sum();
    if !mismatches.is_empty() {
        let (en, vi): (Vec<String>, Vec<String>) = mismatches.into_iter().unzip();
        return rule(
            "shown_identity",
            RuleOutcome::Failed,
            en.join("; "),
            vi.join("; "),
        );
    }
    if compared == 0 {
        return rule(
            "shown_identity",
            RuleOutcome::Skipped,
            "no signature shows a name to compare (no BCY /Reason, /Name or visible text)".into(),
            "không chữ ký nào hiển thị tên để đối chiếu".into(),
        );
    }
    rule(
        "shown_identity",
        RuleOutcome::Passed,
        format!("every name shown ({compared}) is the certificate's"),
        format!("các tên hiển thị ({compared}) khớp với chứng thư số"),
    )
}

fn copy_mark_rule(seal: Option<&Sig<'_>>) -> RuleResult {
    match seal {
        Some(s) if has_copy_mark(s) => rule(
            "copy_mark",
            RuleOutcome::Passed,
            format!("signature {} marks the file as a copy", s.who()),
            format!("chữ ký {} ghi rõ hình thức sao", s.who()),
        ),
        _ => rule(
            "copy_mark",
            RuleOutcome::Failed,
            "no signature text says SAO Y, SAO LỤC or TRÍCH SAO".into(),
            "không có chữ ký nào ghi hình thức sao (SAO Y, SAO LỤC, TRÍCH SAO)".into(),
        ),
    }
}

fn has_copy_mark(s: &Sig<'_>) -> bool {
    let folded = fold(&format!(
        "{} {}",
        s.text().unwrap_or_default(),
        s.s.reason.as_deref().unwrap_or_default()
    ));
    COPY_MARKS.iter().any(|m| folded.contains(m))
}

fn seal_position_rule(personal: &[&Sig<'_>], seal: Option<&Sig<'_>>) -> RuleResult {
    let skipped = || {
        rule(
            "seal_position",
            RuleOutcome::Skipped,
            "the person's and the body's signatures are not both visible on one page".into(),
            "chữ ký cá nhân và chữ ký của cơ quan không cùng hiển thị trên một trang".into(),
        )
    };
    let (Some(p), Some(seal)) = (personal.first(), seal) else {
        return skipped();
    };
    let visible = |s: &Sig<'_>| {
        let w = s.s.widget.as_ref()?;
        let r = w.rect?;
        let r = [
            r[0].min(r[2]),
            r[1].min(r[3]),
            r[0].max(r[2]),
            r[1].max(r[3]),
        ];
        (r[2] - r[0] > 0.0 && r[3] - r[1] > 0.0).then_some((w.page, r))
    };
    let (Some((pp, pr)), Some((sp, sr))) = (visible(p), visible(seal)) else {
        return skipped();
    };
    if pp != sp {
        return skipped();
    }
    let overlaps = sr[0] < pr[2] && pr[0] < sr[2] && sr[1] < pr[3] && pr[1] < sr[3];
    let centre = (sr[0] + sr[2]) / 2.0;
    let left = pr[0] + (pr[2] - pr[0]) * SEAL_CENTRE_MAX;
    if overlaps && centre >= pr[0] && centre <= left {
        rule(
            "seal_position",
            RuleOutcome::Passed,
            "the seal lies over the left part of the person's signature".into(),
            "hình con dấu trùm lên khoảng 1/3 bên trái chữ ký của người có thẩm quyền".into(),
        )
    } else {
        rule(
            "seal_position",
            RuleOutcome::Warning,
            format!(
                "the seal's widget {sr:?} does not lie over the left third of the person's {pr:?}"
            ),
            "hình con dấu không trùm lên khoảng 1/3 bên trái chữ ký của người có thẩm quyền".into(),
        )
    }
}

fn document_number_rule(seal: Option<&Sig<'_>>) -> RuleResult {
    let found = seal
        .and_then(Sig::text)
        .and_then(|t| t.split_whitespace().find(|w| is_document_number(w)));
    match found {
        Some(n) => rule(
            "document_number",
            RuleOutcome::Passed,
            format!("the body's text gives the document number {n}"),
            format!("phần hiển thị ghi số, ký hiệu văn bản {n}"),
        ),
        None => rule(
            "document_number",
            RuleOutcome::Warning,
            "the body's text gives no document number and symbol (e.g. 494-BC/TU)".into(),
            "phần hiển thị chưa ghi số, ký hiệu văn bản (ví dụ 494-BC/TU)".into(),
        ),
    }
}

/// A document's number and symbol: digits, a hyphen, then letters with slashes
/// (`494-BC/TU`, `12/2024/NĐ-CP` is written number first too).
fn is_document_number(w: &str) -> bool {
    let w = w.trim_matches(|c: char| matches!(c, ',' | ';' | '.' | '(' | ')'));
    let Some((num, sym)) = w.split_once(['-', '/']) else {
        return false;
    };
    !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit())
        && sym.contains('/')
        && sym.chars().any(char::is_alphabetic)
}

fn time_format_rule(sigs: &[Sig<'_>]) -> RuleResult {
    let mut checked = 0;
    let mut problems: Vec<(String, String)> = Vec::new();
    for s in sigs {
        let Some(text) = s.text() else {
            continue;
        };
        checked += 1;
        match iso_times(text).first() {
            Some((_, true)) => {}
            Some((time, false)) => problems.push((
                format!(
                    "signature {} shows the time {time} without the Vietnam offset +07:00",
                    s.who()
                ),
                format!(
                    "chữ ký {} hiển thị thời gian {time} không kèm múi giờ Việt Nam +07:00",
                    s.who()
                ),
            )),
            None => problems.push((
                format!(
                    "signature {} shows no signing time in ISO 8601 with +07:00",
                    s.who()
                ),
                format!(
                    "chữ ký {} không hiển thị thời gian ký theo ISO 8601 kèm múi giờ +07:00",
                    s.who()
                ),
            )),
        }
    }
    if checked == 0 {
        return rule(
            "time_format",
            RuleOutcome::Skipped,
            "no signature shows text".into(),
            "không chữ ký nào có phần chữ hiển thị".into(),
        );
    }
    if problems.is_empty() {
        return rule(
            "time_format",
            RuleOutcome::Passed,
            "every visible signing time is ISO 8601 with the Vietnam offset".into(),
            "thời gian ký hiển thị đúng ISO 8601 kèm múi giờ Việt Nam".into(),
        );
    }
    let (en, vi): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
    rule(
        "time_format",
        RuleOutcome::Warning,
        en.join("; "),
        vi.join("; "),
    )
}

/// The ISO 8601 date-times in `text` (`YYYY-MM-DDThh:mm:ss`, optional fraction and offset),
/// each with whether its offset is Vietnam's.
fn iso_times(text: &str) -> Vec<(String, bool)> {
    let b = text.as_bytes();
    let digits = |at: usize, n: usize| {
        b.get(at..at + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i + 19 <= b.len() {
        let shape = digits(i, 4)
            && b[i + 4] == b'-'
            && digits(i + 5, 2)
            && b[i + 7] == b'-'
            && digits(i + 8, 2)
            && (b[i + 10] == b'T' || b[i + 10] == b' ')
            && digits(i + 11, 2)
            && b[i + 13] == b':'
            && digits(i + 14, 2)
            && b[i + 16] == b':'
            && digits(i + 17, 2);
        if !shape {
            i += 1;
            continue;
        }
        let mut end = i + 19;
        if b.get(end) == Some(&b'.') {
            end += 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        let rest = &text[end..];
        let offset = VIETNAM_OFFSETS.iter().find(|o| rest.starts_with(*o));
        if let Some(o) = offset {
            end += o.len();
        } else {
            end += rest
                .bytes()
                .take_while(|c| matches!(c, b'+' | b'-' | b':' | b'Z') || c.is_ascii_digit())
                .take(6)
                .count();
        }
        out.push((text[i..end].to_owned(), offset.is_some()));
        i = end;
    }
    out
}

/// The name (and address) a BCY `/Reason` gives: `"<CN><<email>> đã ký lên văn bản này!"`.
fn bcy_reason(reason: &str) -> Option<(String, Option<String>)> {
    let r = reason.trim();
    let folded_suffix = fold(BCY_REASON_SUFFIX);
    // The suffix is matched folded (tools differ in case and in how they compose ý), at one
    // of the last places it can start: its length in characters, twice over for
    // decomposed marks, so that a long reason costs no more than a short one.
    let room = BCY_REASON_SUFFIX.chars().count() * 2;
    let cut = r
        .char_indices()
        .rev()
        .take(room)
        // The suffix starts with đ: only there is a fold worth making.
        .filter(|(_, c)| matches!(c, 'đ' | 'Đ' | 'd' | 'D'))
        .map(|(i, _)| i)
        .find(|&i| fold(&r[i..]) == folded_suffix)?;
    let who = r[..cut].trim();
    match who.strip_suffix('>').and_then(|w| w.rsplit_once('<')) {
        Some((name, email)) => Some((name.trim().to_owned(), Some(email.trim().to_owned()))),
        None => Some((who.to_owned(), None)),
    }
}

/// A `Label: value` line of the visible text, the label folded.
fn labelled(line: &str) -> Option<(String, &str)> {
    let (label, value) = line.split_once(':')?;
    let value = value.trim();
    (!value.is_empty() && label.chars().count() <= 24).then(|| (fold(label), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bcy_reason_gives_name_and_address() {
        assert_eq!(
            bcy_reason("Trần Văn Huyến<huyentv@haugiang.gov.vn> đã ký lên văn bản này!"),
            Some((
                "Trần Văn Huyến".into(),
                Some("huyentv@haugiang.gov.vn".into())
            ))
        );
        assert_eq!(
            bcy_reason("Tỉnh ủy Hậu Giang đã ký lên văn bản này!"),
            Some(("Tỉnh ủy Hậu Giang".into(), None))
        );
        assert_eq!(bcy_reason("Tôi đồng ý với nội dung"), None);
    }

    #[test]
    fn iso_times_know_the_vietnam_offset() {
        assert_eq!(
            iso_times("Thời gian ký: 2023-12-29T10:50:25+0700"),
            vec![("2023-12-29T10:50:25+0700".to_owned(), true)]
        );
        assert_eq!(
            iso_times("2023-12-29T10:50:25+07:00 and 2023-12-29T03:50:25Z"),
            vec![
                ("2023-12-29T10:50:25+07:00".to_owned(), true),
                ("2023-12-29T03:50:25Z".to_owned(), false)
            ]
        );
        assert!(iso_times("29/12/2023 10:50:25").is_empty());
    }

    #[test]
    fn document_numbers_have_a_number_and_a_symbol() {
        assert!(is_document_number("494-BC/TU"));
        assert!(is_document_number("(494-BC/TU)"));
        assert!(!is_document_number("2023-12-29"));
        assert!(!is_document_number("Hậu"));
    }

    #[test]
    fn the_definition_hash_follows_the_role_rules() {
        let default = definition(&RoleRules::default());
        let mut more = RoleRules::default();
        more.rules.insert(
            0,
            super::super::roles::RoleRule::CertificatePolicy {
                oid: "1.2.3".into(),
                role: Role::Organisation,
                meaning: String::new(),
            },
        );
        assert_ne!(default, definition(&more));
        assert!(default.contains("\"id\":\"decree-30\""));
    }
}
