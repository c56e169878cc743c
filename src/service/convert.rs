//! The library's report and audit records as the protocol's messages.
//!
//! Every name comes from the library's enums (`names!`): the protocol's enums are mapped
//! variant by variant, and its deprecated string fields, still filled for older clients,
//! carry the same names as the JSON report.
// The deprecated string fields are filled on purpose, for clients that still read them.
#![allow(deprecated)]

use base64::prelude::{Engine as _, BASE64_STANDARD};
use time::OffsetDateTime;

use super::proto as pb;
use crate::audit::tree::{ConsistencyProof, InclusionProof, SignedCheckpoint, TreeHead};
use crate::audit::{self, Record};
use crate::report::{self, Indication, Outcome, SubIndication};
use crate::Verdict;

/// A time as the protocol carries it.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// A protocol time as a time, when it is one.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .map(|d| d + time::Duration::nanoseconds(i64::from(t.nanos.clamp(0, 999_999_999))))
}

/// A checkpoint as the protocol carries it, with the keys that verify it.
pub fn checkpoint(
    cp: &SignedCheckpoint,
    public_key_pem: String,
    verifier_key: String,
) -> pb::Checkpoint {
    pb::Checkpoint {
        public_key_pem,
        tree_size: cp.head.size,
        root_hash: cp.head.root.to_vec(),
        note: cp.note.clone(),
        verifier_key,
    }
}

/// What is wrong with a checkpoint a caller sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// `root_hash` is not 32 bytes.
    #[error("checkpoint of {tree_size} records: root_hash is not 32 bytes")]
    RootHash {
        /// The checkpoint's tree size.
        tree_size: u64,
    },
    /// `note` is empty.
    #[error("checkpoint of {tree_size} records: note is empty (send the signed note)")]
    Note {
        /// The checkpoint's tree size.
        tree_size: u64,
    },
}

/// A checkpoint a caller sent back; the error names the field that is wrong. Its
/// signature is the log's to check ([`crate::audit::verify_log`]).
pub fn from_checkpoint(c: &pb::Checkpoint) -> Result<SignedCheckpoint, CheckpointError> {
    let tree_size = c.tree_size;
    let root = <[u8; 32]>::try_from(c.root_hash.as_slice())
        .map_err(|_| CheckpointError::RootHash { tree_size })?;
    if c.note.is_empty() {
        return Err(CheckpointError::Note { tree_size });
    }
    Ok(SignedCheckpoint {
        head: TreeHead {
            size: tree_size,
            root,
        },
        note: c.note.clone(),
    })
}

fn base64_bytes(s: &str) -> Vec<u8> {
    // kyso encoded it: it decodes.
    BASE64_STANDARD.decode(s).unwrap_or_default()
}

/// A receipt (an inclusion proof) as the protocol carries it.
pub fn receipt(p: &InclusionProof) -> pb::Receipt {
    pb::Receipt {
        record: base64_bytes(&p.record),
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        inclusion: p.inclusion.iter().map(|h| base64_bytes(h)).collect(),
        checkpoint: p.checkpoint.clone(),
    }
}

/// The receipt the protocol carries, as `kyso audit verify-proof` reads it.
pub fn from_receipt(r: &pb::Receipt) -> InclusionProof {
    InclusionProof {
        record: BASE64_STANDARD.encode(&r.record),
        leaf_index: r.leaf_index,
        tree_size: r.tree_size,
        inclusion: r
            .inclusion
            .iter()
            .map(|h| BASE64_STANDARD.encode(h))
            .collect(),
        checkpoint: r.checkpoint.clone(),
    }
}

/// A consistency proof as the protocol carries it.
pub fn consistency(p: &ConsistencyProof) -> pb::ConsistencyProof {
    pb::ConsistencyProof {
        old_size: p.old_size,
        new_size: p.new_size,
        old_root: base64_bytes(&p.old_root),
        proof: p.proof.iter().map(|h| base64_bytes(h)).collect(),
        checkpoint: p.checkpoint.clone(),
    }
}

/// The consistency proof the protocol carries, as `kyso audit verify-proof` reads it.
pub fn from_consistency(p: &pb::ConsistencyProof) -> ConsistencyProof {
    ConsistencyProof {
        old_size: p.old_size,
        new_size: p.new_size,
        old_root: BASE64_STANDARD.encode(&p.old_root),
        proof: p.proof.iter().map(|h| BASE64_STANDARD.encode(h)).collect(),
        checkpoint: p.checkpoint.clone(),
    }
}

fn verdict(v: Verdict) -> pb::Verdict {
    match v {
        Verdict::Valid => pb::Verdict::Valid,
        Verdict::Invalid => pb::Verdict::Invalid,
        Verdict::Indeterminate => pb::Verdict::Indeterminate,
        Verdict::Unsigned => pb::Verdict::Unsigned,
    }
}

fn indication(i: Indication) -> pb::Indication {
    match i {
        Indication::Passed => pb::Indication::Passed,
        Indication::Failed => pb::Indication::Failed,
        Indication::Indeterminate => pb::Indication::Indeterminate,
    }
}

fn sub_indication(s: SubIndication) -> pb::SubIndication {
    use pb::SubIndication as P;
    use SubIndication as S;
    match s {
        S::FormatFailure => P::FormatFailure,
        S::HashFailure => P::HashFailure,
        S::SigCryptoFailure => P::SigCryptoFailure,
        S::NoCertificateChainFound => P::NoCertificateChainFound,
        S::NoSigningCertificateFound => P::NoSigningCertificateFound,
        S::OutOfBoundsNoPoe => P::OutOfBoundsNoPoe,
        S::NotYetValid => P::NotYetValid,
        S::ChainConstraintsFailure => P::ChainConstraintsFailure,
        S::CertificateChainGeneralFailure => P::CertificateChainGeneralFailure,
        S::CryptoConstraintsFailure => P::CryptoConstraintsFailure,
        S::SigConstraintsFailure => P::SigConstraintsFailure,
        S::Revoked => P::Revoked,
        S::RevokedNoPoe => P::RevokedNoPoe,
        S::RevokedCaNoPoe => P::RevokedCaNoPoe,
        S::TryLater => P::TryLater,
        S::DisallowedModification => P::DisallowedModification,
        S::ModificationsNotAnalysed => P::ModificationsNotAnalysed,
    }
}

/// The library's verdict a protocol verdict stands for (`None` for unspecified).
pub fn from_verdict(code: i32) -> Option<Verdict> {
    use crate::names::Named;
    Verdict::ALL
        .iter()
        .copied()
        .find(|v| verdict(*v) as i32 == code)
}

/// The library's indication a protocol indication stands for.
pub fn from_indication(code: i32) -> Option<Indication> {
    use crate::names::Named;
    Indication::ALL
        .iter()
        .copied()
        .find(|i| indication(*i) as i32 == code)
}

/// The library's sub-indication a protocol sub-indication stands for.
pub fn from_sub_indication(code: i32) -> Option<SubIndication> {
    use crate::names::Named;
    SubIndication::ALL
        .iter()
        .copied()
        .find(|s| sub_indication(*s) as i32 == code)
}

/// A signature dictionary's kind as the protocol names it.
pub fn signature_kind(k: crate::pdf::SignatureKind) -> pb::SignatureKind {
    use crate::pdf::SignatureKind as K;
    match k {
        K::Signature => pb::SignatureKind::Signature,
        K::DocumentTimestamp => pb::SignatureKind::DocumentTimestamp,
    }
}

fn change_kind(k: crate::integrity::ChangeKind) -> pb::ChangeKind {
    use crate::integrity::ChangeKind as K;
    match k {
        K::Added => pb::ChangeKind::Added,
        K::Changed => pb::ChangeKind::Changed,
        K::Deleted => pb::ChangeKind::Deleted,
    }
}

fn change_class(c: crate::integrity::ChangeClass) -> pb::ChangeClass {
    use crate::integrity::ChangeClass as C;
    match c {
        C::Bookkeeping => pb::ChangeClass::Bookkeeping,
        C::Dss => pb::ChangeClass::Dss,
        C::Metadata => pb::ChangeClass::Metadata,
        C::Signing => pb::ChangeClass::Signing,
        C::DocumentTimestamp => pb::ChangeClass::DocumentTimestamp,
        C::FormFilling => pb::ChangeClass::FormFilling,
        C::Annotation => pb::ChangeClass::Annotation,
        C::Cosmetic => pb::ChangeClass::Cosmetic,
        C::Disallowed => pb::ChangeClass::Disallowed,
    }
}

fn change_verdict(v: crate::integrity::Verdict) -> pb::ChangeVerdict {
    use crate::integrity::Verdict as V;
    match v {
        V::Allowed => pb::ChangeVerdict::Allowed,
        V::AllowedWithWarning => pb::ChangeVerdict::AllowedWithWarning,
        V::Disallowed => pb::ChangeVerdict::Disallowed,
    }
}

fn outcome(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Passed => pb::Outcome::Passed,
        Outcome::Failed => pb::Outcome::Failed,
        Outcome::Warning => pb::Outcome::Warning,
        Outcome::Skipped => pb::Outcome::Skipped,
        Outcome::Info => pb::Outcome::Info,
    }
}

/// A widget as the protocol carries it.
pub fn widget(w: &crate::pdf::Widget) -> pb::Widget {
    pb::Widget {
        page: w.page,
        rect: w.rect.map(|r| r.to_vec()).unwrap_or_default(),
        text: w.text.clone(),
    }
}

fn chain(c: &[report::ChainEntry]) -> Vec<pb::ChainEntry> {
    c.iter()
        .map(|e| pb::ChainEntry {
            subject: e.subject.clone(),
            sha256: e.sha256.clone(),
        })
        .collect()
}

fn revocation(r: &[report::CertificateRevocation]) -> Vec<pb::CertificateRevocation> {
    use crate::revocation::Source;
    r.iter()
        .map(|c| pb::CertificateRevocation {
            subject: c.subject.clone(),
            sha256: c.sha256.clone(),
            status: c.status.to_owned(),
            revoked_at: c.revoked_at.map(timestamp),
            reason: c.reason.clone(),
            evidence: c.evidence.as_ref().map(|e| {
                let (source, location) = match &e.source {
                    Source::Signature => ("signature", String::new()),
                    Source::Dss => ("dss", String::new()),
                    Source::File(p) => ("file", p.clone()),
                    Source::Online(u) => ("online", u.clone()),
                };
                pb::Evidence {
                    kind: e.kind.name().to_owned(),
                    issuer: e.issuer.clone(),
                    this_update: Some(timestamp(e.this_update)),
                    source: source.to_owned(),
                    location,
                    sha256: e.sha256.clone(),
                }
            }),
        })
        .collect()
}

fn signature(s: &report::SignatureReport) -> pb::SignatureReport {
    use crate::pdf::Coverage;
    let (coverage, covered_revision) = match s.coverage {
        Some(Coverage::EntireFile) => ("entire_file", None),
        Some(Coverage::EntireRevision(n)) => ("entire_revision", Some(n as u32)),
        Some(Coverage::Partial) => ("partial", None),
        None => ("", None),
    };
    pb::SignatureReport {
        field: s.field.clone(),
        kind: s.kind.name().to_owned(),
        signature_kind: signature_kind(s.kind) as i32,
        sub_filter: s.sub_filter.clone(),
        revision: s.revision as u32,
        certification: s.certification.map(u32::from),
        coverage: coverage.to_owned(),
        covered_revision,
        byte_range: s.byte_range.clone(),
        indication: indication(s.indication) as i32,
        sub_indication: s
            .sub_indication
            .map_or(pb::SubIndication::Unspecified, sub_indication) as i32,
        signer: s.signer.as_ref().map(|x| pb::Signer {
            common_name: x.common_name.clone(),
            organization: x.organization.clone(),
            organizational_units: x.organizational_units.clone(),
            email: x.email.clone(),
            subject: x.subject.clone(),
            issuer: x.issuer.clone(),
            serial: x.serial.clone(),
            certificate_sha256: x.certificate_sha256.clone(),
            key: x.key.clone(),
            identifiers: x.identifiers.clone(),
            certificate_policies: x.certificate_policies.clone(),
        }),
        signing_time: s.signing_time.map(timestamp),
        validation_time: Some(pb::ValidationTime {
            time: Some(timestamp(s.validation_time.time)),
            source: s.validation_time.source.name().to_owned(),
            proven: s.validation_time.proven,
        }),
        reason: s.reason.clone(),
        location: s.location.clone(),
        contact_info: s.contact_info.clone(),
        name: s.name.clone(),
        widget: s.widget.as_ref().map(widget),
        chain: chain(&s.chain),
        revocation: revocation(&s.revocation),
        timestamps: s
            .timestamps
            .iter()
            .map(|t| pb::Timestamp {
                kind: t.kind.to_owned(),
                time: t.time.map(timestamp),
                tsa: t.tsa.clone(),
                proves: t.proves,
                problem: t.problem.clone(),
                chain: chain(&t.chain),
                revocation: revocation(&t.revocation),
            })
            .collect(),
        modifications: s
            .modifications
            .iter()
            .map(|c| pb::Change {
                revision: c.revision as u32,
                object: c.object,
                generation: u32::from(c.generation),
                kind: c.kind.name().to_owned(),
                class: c.class.name().to_owned(),
                verdict: c.verdict.name().to_owned(),
                rule: c.rule.clone(),
                change_kind: change_kind(c.kind) as i32,
                change_class: change_class(c.class) as i32,
                change_verdict: change_verdict(c.verdict) as i32,
            })
            .collect(),
        checks: s
            .checks
            .iter()
            .map(|c| pb::Check {
                id: c.id.name().to_owned(),
                outcome: outcome(c.outcome) as i32,
                detail: c.detail.clone(),
                detail_vi: c.detail_vi.clone(),
            })
            .collect(),
        role: role(s.role) as i32,
        role_evidence: s.role_evidence.clone(),
        role_evidence_vi: s.role_evidence_vi.clone(),
    }
}

/// A role as the protocol names it.
pub fn role(r: crate::policy::Role) -> pb::Role {
    use crate::policy::Role;
    match r {
        Role::Personal => pb::Role::Personal,
        Role::Organisation => pb::Role::Organisation,
        Role::Unknown => pb::Role::Unknown,
    }
}

fn profile(p: crate::policy::Profile) -> pb::Profile {
    use crate::policy::Profile;
    match p {
        Profile::Issued => pb::Profile::Issued,
        Profile::Attachment => pb::Profile::Attachment,
        Profile::Copy => pb::Profile::Copy,
        Profile::None => pb::Profile::None,
    }
}

/// An expected profile as the protocol names it.
pub fn expected(e: crate::policy::Expect) -> pb::ExpectedProfile {
    use crate::policy::Expect;
    match e {
        Expect::Issued => pb::ExpectedProfile::Issued,
        Expect::Attachment => pb::ExpectedProfile::Attachment,
        Expect::Copy => pb::ExpectedProfile::Copy,
        Expect::Any => pb::ExpectedProfile::Any,
    }
}

/// The profile a request expects; `None` for the service's default.
pub fn from_expected(e: pb::ExpectedProfile) -> Option<crate::policy::Expect> {
    use crate::policy::Expect;
    match e {
        pb::ExpectedProfile::Unspecified => None,
        pb::ExpectedProfile::Issued => Some(Expect::Issued),
        pb::ExpectedProfile::Attachment => Some(Expect::Attachment),
        pb::ExpectedProfile::Copy => Some(Expect::Copy),
        pb::ExpectedProfile::Any => Some(Expect::Any),
    }
}

fn policy(p: &crate::policy::PolicyReport) -> pb::PolicyResult {
    use crate::policy::RuleOutcome;
    pb::PolicyResult {
        id: p.id.to_owned(),
        version: p.version.to_owned(),
        sha256: p.sha256.clone(),
        profile: profile(p.profile) as i32,
        expected: expected(p.expected) as i32,
        conforms: p.conforms,
        rules: p
            .rules
            .iter()
            .map(|r| pb::PolicyRule {
                id: r.id.to_owned(),
                outcome: match r.outcome {
                    RuleOutcome::Passed => pb::RuleOutcome::Passed,
                    RuleOutcome::Failed => pb::RuleOutcome::Failed,
                    RuleOutcome::Warning => pb::RuleOutcome::Warning,
                    RuleOutcome::Skipped => pb::RuleOutcome::Skipped,
                } as i32,
                en: r.en.clone(),
                vi: r.vi.clone(),
            })
            .collect(),
    }
}

/// A report as the protocol carries it.
pub fn report(r: &crate::Report) -> pb::Report {
    pb::Report {
        sha256: r.sha256.clone(),
        size: r.size as u64,
        verdict: verdict(r.verdict) as i32,
        reasons: r
            .reasons
            .iter()
            .map(|x| pb::Reason {
                code: x.code.to_owned(),
                en: x.en.clone(),
                vi: x.vi.clone(),
            })
            .collect(),
        revisions: r.revisions as u32,
        hybrid_reference: r.hybrid_reference,
        decrypted: r.decrypted.clone(),
        signatures: r.signatures.iter().map(signature).collect(),
        unsigned_fields: r
            .unsigned_fields
            .iter()
            .map(|u| pb::UnsignedField {
                field: u.field.clone(),
                widget: u.widget.as_ref().map(widget),
            })
            .collect(),
        trust_fingerprint: r.trust_fingerprint.clone(),
        kyso_version: r.kyso_version.to_owned(),
        policy: r.policy.as_ref().map(policy),
    }
}

/// An audit record as the protocol carries it.
pub fn record(r: &Record) -> pb::AuditRecord {
    let e = &r.entry;
    pb::AuditRecord {
        id: r.id(),
        sequence: r.sequence,
        time: Some(timestamp(e.time)),
        principal: e.principal.clone(),
        peer: e.peer.clone(),
        method: e.method.clone(),
        document_sha256: e.document_sha256.clone(),
        document_size: e.document_size,
        document_id: e.metadata.document_id.clone(),
        document_number: e.metadata.document_number.clone(),
        sender: e.metadata.sender.clone(),
        extra: e.metadata.extra.clone().into_iter().collect(),
        signatures: e
            .signatures
            .iter()
            .map(|s| pb::AuditSignature {
                field: s.field.clone(),
                signer_common_name: s.signer_common_name.clone(),
                signer_organization: s.signer_organization.clone(),
                signer_serial: s.signer_serial.clone(),
                certificate_sha256: s.certificate_sha256.clone(),
                issuer: s.issuer.clone(),
                signing_time: s
                    .signing_time
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                    .map(timestamp),
                indication: s.indication.clone(),
                sub_indication: s.sub_indication.clone(),
                indication_code: s
                    .indication
                    .parse()
                    .map_or(pb::Indication::Unspecified, indication)
                    as i32,
                sub_indication_code: s
                    .sub_indication
                    .as_deref()
                    .and_then(|x| x.parse().ok())
                    .map_or(pb::SubIndication::Unspecified, sub_indication)
                    as i32,
                role: s.role.map_or(pb::Role::Unspecified, role) as i32,
            })
            .collect(),
        policy: e.policy.as_ref().map(|p| pb::AuditPolicy {
            id: p.id.clone(),
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            profile: profile(p.profile) as i32,
            expected: expected(p.expected) as i32,
            conforms: p.conforms,
        }),
        verdict: e.verdict.clone(),
        verdict_code: e.verdict.parse().map_or(pb::Verdict::Unspecified, verdict) as i32,
        error: e.error.clone(),
        kyso_version: e.kyso_version.clone(),
        trust_fingerprint: e.trust_fingerprint.clone(),
        previous_hash: hex::encode(r.previous_hash),
        hash: hex::encode(r.hash),
    }
}

/// A caller's metadata as the audit log keeps it.
pub fn metadata(m: Option<pb::CallerMetadata>) -> audit::Metadata {
    let m = m.unwrap_or_default();
    audit::Metadata {
        document_id: m.document_id,
        document_number: m.document_number,
        sender: m.sender,
        extra: m.extra.into_iter().collect(),
    }
}

/// The signatures and empty fields of a parsed PDF, as the protocol lists them.
pub fn extracted(
    pdf: &crate::pdf::PdfFile,
) -> (Vec<pb::ExtractedSignature>, Vec<pb::UnsignedField>) {
    let signatures = pdf
        .signatures
        .iter()
        .enumerate()
        .map(|(i, d)| pb::ExtractedSignature {
            number: i as u32 + 1,
            field: d.field.clone(),
            kind: d.kind.name().to_owned(),
            signature_kind: signature_kind(d.kind) as i32,
            sub_filter: d.sub_filter.clone(),
            revision: d.revision as u32,
            byte_range: d.byte_range_raw.clone(),
            signing_time: d.m_time.map(timestamp),
            reason: d.reason.clone(),
            location: d.location.clone(),
            name: d.name.clone(),
            certification: d.certification.map(|c| u32::from(c.permissions)),
            contents: d.contents.clone(),
        })
        .collect();
    let unsigned = pdf
        .unsigned_fields
        .iter()
        .map(|u| pb::UnsignedField {
            field: u.field.clone(),
            widget: u.widget.as_ref().map(widget),
        })
        .collect();
    (signatures, unsigned)
}
