//! The change analysis of each signature ([`crate::integrity`]), run beside the hashing on
//! large files, and its outcome on each signature.

use super::prepare::Prepared;
use crate::pdf::{Coverage, PdfFile};
use crate::report::{CheckId, Indication, Outcome, SubIndication};

/// What the change analysis found for one signature.
pub(super) enum ChangeOutcome {
    /// The signature does not cover a revision boundary (no ranges, or a partial range).
    NotApplicable,
    /// The signature covers the whole file: nothing came after it.
    NothingAfter,
    Analysed(crate::integrity::Analysis),
    NotAnalysed(String),
}

/// Analyses what later revisions changed after each signature that covers an earlier
/// revision (`integrity`). Each signed revision is loaded once, however many signatures
/// cover it, and at most [`crate::pdf::MAX_EARLIER_REVISION_LOADS`] of them. It needs only
/// the parsed file and the coverages, so a large file has it run beside the hashing of the
/// signed ranges ([`PARALLEL_ANALYSIS_FROM`]).
pub(super) fn analyse_changes(
    bytes: &[u8],
    pdf: &PdfFile,
    coverages: &[Option<Coverage>],
) -> Vec<ChangeOutcome> {
    use crate::integrity::{self, Permissions};
    use crate::pdf::MAX_EARLIER_REVISION_LOADS;
    // The certification signature's DocMDP governs every later change (ISO 32000-1
    // §12.8.2.2); with several, the strictest.
    let docmdp = pdf
        .signatures
        .iter()
        .filter_map(|s| s.certification)
        .map(|d| d.permissions)
        .min();
    let mut loaded: std::collections::BTreeMap<usize, Option<lopdf::Document>> = Default::default();
    coverages
        .iter()
        .map(|coverage| {
            let k = match coverage {
                Some(Coverage::EntireRevision(k)) => *k,
                Some(Coverage::EntireFile) => return ChangeOutcome::NothingAfter,
                _ => return ChangeOutcome::NotApplicable,
            };
            if !loaded.contains_key(&k) && loaded.len() >= MAX_EARLIER_REVISION_LOADS {
                return ChangeOutcome::NotAnalysed(format!(
                    "more than {MAX_EARLIER_REVISION_LOADS} signed revisions: the changes after revision {k} were not analysed"
                ));
            }
            let Some(old) = loaded.entry(k).or_insert_with(|| pdf.load_revision(bytes, k).ok()) else {
                return ChangeOutcome::NotAnalysed(format!(
                    "revision {k} cannot be read on its own, so the changes after it were not analysed"
                ));
            };
            // A lock's /P (PDF 2.0) restricts every change after its signature as DocMDP does;
            // the strictest of what the certification and the signatures up to k say.
            let earlier = || pdf.signatures.iter().filter(|s| s.revision <= k);
            let lock_p = earlier().filter_map(|s| s.lock_permissions).min();
            let perms = Permissions {
                docmdp: match (docmdp, lock_p) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                locks: earlier().filter_map(|s| s.lock.clone()).collect(),
                p_from_lock: lock_p.is_some_and(|l| docmdp.is_none_or(|d| l < d)),
            };
            ChangeOutcome::Analysed(integrity::analyse(old, &pdf.document, &pdf.revisions, k, &perms))
        })
        .collect()
}

/// Turns each signature's change analysis into its `modifications` check and list.
pub(super) fn apply_changes(prepared: &mut [Prepared<'_>], outcomes: Vec<ChangeOutcome>) {
    use crate::integrity::{Change, Verdict as Allowed};
    let describe = |c: &Change| format!("revision {}, object {}: {}", c.revision, c.object, c.rule);
    for (p, outcome) in prepared.iter_mut().zip(outcomes) {
        match outcome {
            ChangeOutcome::NotApplicable => {}
            ChangeOutcome::NothingAfter => {
                p.pass(
                    CheckId::Modifications,
                    "no revision follows the signature: nothing was changed after it".into(),
                );
            }
            ChangeOutcome::NotAnalysed(why) => {
                p.fail(
                    CheckId::Modifications,
                    Indication::Indeterminate,
                    SubIndication::ModificationsNotAnalysed,
                    why,
                );
            }
            ChangeOutcome::Analysed(analysis) => {
                let disallowed: Vec<&Change> = analysis
                    .changes
                    .iter()
                    .filter(|c| c.verdict == Allowed::Disallowed)
                    .collect();
                let warned: Vec<String> = analysis
                    .changes
                    .iter()
                    .filter(|c| c.verdict == Allowed::AllowedWithWarning)
                    .map(describe)
                    .collect();
                if let Some(first) = disallowed.first() {
                    p.fail(
                        CheckId::Modifications,
                        Indication::Failed,
                        SubIndication::DisallowedModification,
                        format!(
                            "{} disallowed change(s) after the signature; first: {}",
                            disallowed.len(),
                            describe(first)
                        ),
                    );
                    p.vi(format!(
                        "Tài liệu đã bị thay đổi sau khi ký, vượt quá phạm vi cho phép: {} thay đổi không được phép, đầu tiên ở lần cập nhật {}, đối tượng {} ({})",
                        disallowed.len(),
                        first.revision,
                        first.object,
                        crate::report::change_class_vi(first.class)
                    ));
                } else if !warned.is_empty() {
                    p.push(
                        CheckId::Modifications,
                        Outcome::Warning,
                        format!(
                            "changes to report after the signature (allowed): {}",
                            warned.join("; ")
                        ),
                    );
                } else {
                    p.pass(
                        CheckId::Modifications,
                        format!(
                            "the signed content is unchanged; the {} later change(s) stay within the permitted limits",
                            analysis.changes.len()
                        ),
                    );
                }
                if analysis.truncated {
                    p.push(
                        CheckId::Modifications,
                        Outcome::Info,
                        format!(
                            "more than {} changes: the list stops there",
                            crate::integrity::MAX_CHANGES_LISTED
                        ),
                    );
                }
                p.modifications = analysis.changes;
            }
        }
    }
}
