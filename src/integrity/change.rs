//! What a change is, how it is classed, and what the analysis of one signature found.

use serde::Serialize;

use crate::pdf::FieldLock;

/// How an object differs between the signed revision and the final one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The object is new.
    Added,
    /// The object was redefined.
    Changed,
    /// The object was freed.
    Deleted,
}

crate::names::names!(ChangeKind, "change kind", {
    Added = "added",
    Changed = "changed",
    Deleted = "deleted",
});

/// The rule class of a change (module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeClass {
    /// Cross-reference and object streams.
    Bookkeeping,
    /// `/DSS`, `/VRI` and their streams (validation data).
    Dss,
    /// `/Info` and the XMP `/Metadata` stream.
    Metadata,
    /// New signature and document-timestamp dictionaries, fields and widgets.
    Signing,
    /// A document timestamp's dictionary and field.
    DocumentTimestamp,
    /// Values and appearances of fields that are not signature fields.
    FormFilling,
    /// Annotations other than signature widgets.
    Annotation,
    /// A key that draws nothing changed (an obsolete font `/Name`, a signed field's
    /// appearance moved to an equivalent copy): allowed, and reported by name.
    Cosmetic,
    /// Everything else: never allowed after a signature.
    Disallowed,
}

crate::names::names!(ChangeClass, "change class", {
    Bookkeeping = "bookkeeping",
    Dss = "dss",
    Metadata = "metadata",
    Signing = "signing",
    DocumentTimestamp = "document_timestamp",
    FormFilling = "form_filling",
    Annotation = "annotation",
    Cosmetic = "cosmetic",
    Disallowed = "disallowed",
});

/// Whether a change is allowed under the document's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Allowed,
    /// Allowed, but a reader should know (annotations without DocMDP, cosmetic rewrites).
    AllowedWithWarning,
    /// Not allowed: the signature fails.
    Disallowed,
}

crate::names::names!(Verdict as "ChangeVerdict", "change verdict", {
    Allowed = "allowed",
    AllowedWithWarning = "allowed_with_warning",
    Disallowed = "disallowed",
});

/// One change after a signature, with the rule that classified it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// The revision whose update made the change.
    pub revision: usize,
    /// The object's number.
    pub object: u32,
    /// The object's generation.
    pub generation: u16,
    /// Added, changed or deleted.
    pub kind: ChangeKind,
    /// The rule class that decided it.
    pub class: ChangeClass,
    /// Whether it is allowed under the permissions.
    pub verdict: Verdict,
    /// What changed and by which rule it was judged, for a reader.
    pub rule: String,
}

/// The permissions a later change is judged under: DocMDP of the certification signature
/// (ISO 32000-1 Table 254) and FieldMDP locks (Table 255).
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// `None` without a certification signature or a lock with `/P`.
    pub docmdp: Option<u8>,
    /// The FieldMDP locks of the signature and of the signatures before it.
    pub locks: Vec<FieldLock>,
    /// True when `docmdp` is a FieldMDP lock's `/P` (ISO 32000-2), not the certification's.
    pub p_from_lock: bool,
}

/// The changes after one signature and their overall verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The revision the signature covers.
    pub signed_revision: usize,
    /// Every change after the signature, to [`crate::integrity::MAX_CHANGES_LISTED`].
    pub changes: Vec<Change>,
    /// True when more changes existed than [`crate::integrity::MAX_CHANGES_LISTED`].
    pub truncated: bool,
}

impl Analysis {
    /// The verdict of the most severe change.
    pub fn verdict(&self) -> Verdict {
        if self
            .changes
            .iter()
            .any(|c| c.verdict == Verdict::Disallowed)
        {
            Verdict::Disallowed
        } else if self
            .changes
            .iter()
            .any(|c| c.verdict == Verdict::AllowedWithWarning)
        {
            Verdict::AllowedWithWarning
        } else {
            Verdict::Allowed
        }
    }
}
