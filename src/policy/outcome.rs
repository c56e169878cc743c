//! What the policy concludes, as the report carries it: the role of a signature, the
//! profile a document matches and the one it must be, each rule's outcome, and the
//! policy's judgement of the document. These types depend on nothing of the report, so the
//! report can hold them while the policy reads the report.

use serde::Serialize;

use crate::names::names;

/// The role of a signature in a Vietnamese official document (Decree 30/2020/NĐ-CP, Art. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The competent person's signature.
    Personal,
    /// The agency's or organisation's signature, which stands for its seal.
    Organisation,
    /// Nothing decided.
    Unknown,
}

crate::names::names!(Role, "role", {
    Personal = "personal",
    Organisation = "organisation",
    Unknown = "unknown",
});

impl Role {
    /// How a clerk names the role (the wording of Decree 30).
    pub fn vi(self) -> &'static str {
        match self {
            Role::Personal => "Chữ ký của người có thẩm quyền",
            Role::Organisation => "Chữ ký số của cơ quan, tổ chức",
            Role::Unknown => "Chưa xác định được là chữ ký cá nhân hay của cơ quan, tổ chức",
        }
    }

    /// The role in English.
    pub fn en(self) -> &'static str {
        match self {
            Role::Personal => "Signature of the competent person",
            Role::Organisation => "Signature of the agency or organisation (the seal)",
            Role::Unknown => "Not known whether personal or the organisation's",
        }
    }
}

/// Which policy judges the document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PolicyChoice {
    /// Decree 30/2020/NĐ-CP and its Appendix I ([`crate::policy::decree30`]).
    #[default]
    Decree30,
    /// No document rules: only the signatures are judged.
    None,
}

names!(PolicyChoice, "policy", { Decree30 = "decree-30", None = "none" });

/// The shape of signed file a document matches (Decree 30, Appendix I).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

crate::names::names!(Profile, "profile", {
    Issued = "issued",
    Attachment = "attachment",
    Copy = "copy",
    None = "none",
});

impl Profile {
    /// The profile in a clerk's words.
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

    /// The profile in English.
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
    /// A main document: the competent person's signature, then the body's.
    #[default]
    Issued,
    /// An attachment sent as its own file: the body's signature only.
    Attachment,
    /// An electronic copy: the copying body's signature only.
    Copy,
    /// Any of the three shapes, properly made.
    Any,
}

names!(Expect as "ExpectedProfile", "profile", {
    Issued = "issued",
    Attachment = "attachment",
    Copy = "copy",
    Any = "any",
});

/// What a rule concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule holds.
    Passed,
    /// The rule does not hold: the document does not conform.
    Failed,
    /// Noted for the reader; never makes a document non-conforming on its own.
    Warning,
    /// Does not apply, or nothing in the file lets it be checked.
    Skipped,
}

crate::names::names!(RuleOutcome, "rule outcome", {
    Passed = "passed",
    Failed = "failed",
    Warning = "warning",
    Skipped = "skipped",
});

/// One rule's result, in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleResult {
    /// The rule's id, e.g. `signing_order`.
    pub id: &'static str,
    /// What it concluded.
    pub outcome: RuleOutcome,
    /// Why, in English.
    pub en: String,
    /// Why, in Vietnamese.
    pub vi: String,
}

/// The policy's judgement of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyReport {
    /// The policy's id.
    pub id: &'static str,
    /// Its version.
    pub version: &'static str,
    /// SHA-256 (hex) of the policy's definition as it was applied, role rules included.
    pub sha256: String,
    /// The shape the file matches.
    pub profile: Profile,
    /// The profile the caller expected.
    pub expected: Expect,
    /// Whether the file is a proper document of the expected profile: no rule failed.
    pub conforms: bool,
    /// Every rule's result, in the order they were judged.
    pub rules: Vec<RuleResult>,
}
