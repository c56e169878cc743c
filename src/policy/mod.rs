//! Vietnamese official documents: the role of each signature ([`roles`]) and the rules a
//! properly issued electronic document follows ([`decree30`]), judged beside the signature
//! verdict on a finished [`Report`].
//!
//! A policy is a named, versioned set of rules. Its definition — every rule, every number
//! it uses, the role rules in force — is serialised and hashed, and the id, version and hash
//! travel with every result and audit record, so a verdict can be re-derived later from the
//! same definition. The signature verdict keeps its meaning: a policy never changes it.

pub mod decree30;
pub mod roles;

use serde::{Deserialize, Serialize};

use crate::names::names;
use crate::report::Report;
pub use roles::{Role, RoleDecision, RoleRules};

/// Which policy judges the document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PolicyChoice {
    /// Decree 30/2020/NĐ-CP and its Appendix I ([`decree30`]).
    #[default]
    Decree30,
    /// No document rules: only the signatures are judged.
    None,
}

names!(PolicyChoice, "policy", { Decree30 = "decree-30", None = "none" });

/// The shape of signed file a document matches (Decree 30, Appendix I).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// A main document: the competent person's signature, then the body's.
    Issued,
    /// An attachment sent as its own file: the body's signature only.
    Attachment,
    /// An electronic copy (`SAO Y`, `SAO LỤC`, `TRÍCH SAO`): the copying body's signature only.
    Copy,
    /// None of the shapes.
    None,
}

impl Profile {
    pub fn vi(self) -> &'static str {
        match self {
            Profile::Issued => {
                "văn bản chính (chữ ký của người có thẩm quyền, sau đó chữ ký số của cơ quan)"
            }
            Profile::Attachment => "phụ lục gửi kèm dạng tệp riêng (chỉ có chữ ký số của cơ quan)",
            Profile::Copy => "bản sao điện tử (chỉ có chữ ký số của cơ quan thực hiện sao)",
            Profile::None => "không thuộc dạng văn bản điện tử nào của Phụ lục I",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Profile::Issued => {
                "a main document (the competent person's signature, then the body's)"
            }
            Profile::Attachment => "an attachment sent as its own file (the body's signature only)",
            Profile::Copy => "an electronic copy (the copying body's signature only)",
            Profile::None => "none of the shapes of Appendix I",
        }
    }
}

/// The profile a document must be: what the caller expects (a DMS knows when it sends an
/// attachment), `issued` unless said otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expect {
    #[default]
    Issued,
    Attachment,
    Copy,
    /// Any of the three shapes, properly made.
    Any,
}

names!(Expect, "profile", {
    Issued = "issued",
    Attachment = "attachment",
    Copy = "copy",
    Any = "any",
});

/// What a rule concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    Passed,
    Failed,
    /// Noted for the reader; never makes a document non-conforming on its own.
    Warning,
    /// Does not apply, or nothing in the file lets it be checked.
    Skipped,
}

/// One rule's result, in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    pub id: &'static str,
    pub outcome: RuleOutcome,
    pub en: String,
    pub vi: String,
}

/// The policy's judgement of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    pub id: &'static str,
    pub version: &'static str,
    /// SHA-256 (hex) of the policy's definition as it was applied, role rules included.
    pub sha256: String,
    /// The shape the file matches.
    pub profile: Profile,
    pub expected: Expect,
    /// Whether the file is a proper document of the expected profile: no rule failed.
    pub conforms: bool,
    pub rules: Vec<RuleResult>,
}

/// The document rules in force for a verification.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    pub choice: PolicyChoice,
    pub expect: Expect,
    pub roles: RoleRules,
}

impl PolicySettings {
    /// Gives each signature of `report` its role, then judges the document under the
    /// chosen policy (`None` for [`PolicyChoice::None`]): `choice` and `expect` when the
    /// caller gives them, else these settings'.
    pub fn apply(&self, report: &mut Report, choice: Option<PolicyChoice>, expect: Option<Expect>) {
        for s in &mut report.signatures {
            let d = match s.kind {
                crate::pdf::SignatureKind::DocumentTimestamp => RoleDecision {
                    role: Role::Unknown,
                    evidence: "a document timestamp proves a time; it is nobody's signature".into(),
                    evidence_vi:
                        "dấu thời gian văn bản chỉ chứng thực thời điểm, không phải chữ ký của ai"
                            .into(),
                },
                crate::pdf::SignatureKind::Signature => self.roles.assign(s.signer.as_ref()),
            };
            s.role = d.role;
            s.role_evidence = d.evidence;
            s.role_evidence_vi = d.evidence_vi;
        }
        let expect = expect.unwrap_or(self.expect);
        report.policy = match choice.unwrap_or(self.choice) {
            PolicyChoice::None => None,
            PolicyChoice::Decree30 => Some(decree30::judge(report, expect, &self.roles)),
        };
    }
}
