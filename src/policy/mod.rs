//! Vietnamese official documents: the role of each signature ([`roles`]) and the rules a
//! properly issued electronic document follows ([`decree30`]), judged beside the signature
//! verdict on a finished [`Report`].
//!
//! A policy is a named, versioned set of rules. Its definition — every rule, every number
//! it uses, the role rules in force — is serialised and hashed, and the id, version and hash
//! travel with every result and audit record, so a verdict can be re-derived later from the
//! same definition. The signature verdict keeps its meaning: a policy never changes it.

pub mod decree30;
pub mod outcome;
pub mod roles;

use crate::report::Report;
pub use outcome::{Expect, PolicyChoice, PolicyReport, Profile, Role, RuleOutcome, RuleResult};
pub use roles::{RoleDecision, RoleRules};

/// The document rules in force for a verification.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    /// Which policy judges documents.
    pub choice: PolicyChoice,
    /// The profile documents must be.
    pub expect: Expect,
    /// How signatures get their roles.
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
