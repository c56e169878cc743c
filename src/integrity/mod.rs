//! What changed after each signature, and whether it was allowed (ISO 32000-1 §12.8.2,
//! ETSI EN 319 142-1 §5.4; the attack classes are those of Mainka et al., "Shadow Attacks",
//! and the incremental saving attacks of Mladenov et al.).
//!
//! For a signature that covers revision *k* of *n*, the state of the document at *k* (its
//! signed revision, loaded on its own) is compared with the final state. Objects are compared
//! by where the cross-reference tables put them: an object whose offset did not move was not
//! redefined and is not looked at again, so a large image costs nothing. Every object that a
//! later update added, redefined or freed is then classified by the rule that decides it:
//!
//! | class | what | allowed |
//! |---|---|---|
//! | bookkeeping | cross-reference and object streams | always |
//! | dss | `/DSS`, `/VRI` and their streams (validation data) | always |
//! | metadata | `/Info`, the XMP `/Metadata` stream | always |
//! | signing | new signature and document-timestamp dictionaries, signature fields and widgets, `/AcroForm /Fields` and `/SigFlags`, page `/Annots` gaining them | DocMDP P ≥ 2 or none; P = 1 document timestamps only |
//! | form filling | values and appearances of non-signature fields | P ≥ 2 or none, unless a FieldMDP lock covers the field |
//! | annotation | annotations other than signature widgets | P = 3; with no DocMDP allowed with a warning |
//! | disallowed | everything else: page content, resources, fonts, the page tree, other catalog entries, a signed signature dictionary, a reference the signed revision left dangling | never |
//!
//! This module reads `pdf` and lopdf documents; it knows nothing of CMS or trust.

mod change;
mod comparison;
mod objects;
mod roles;

pub use change::{Analysis, Change, ChangeClass, ChangeKind, Permissions, Verdict};
pub use objects::MAX_REFERENCE_DEPTH;

use lopdf::xref::XrefEntry;
use lopdf::Document;

use crate::pdf::Revision;

use comparison::Comparison;
use objects::{object_by_number, objects_equal, same_position};

/// Most changes listed per signature: 10,000. A file with more is reported as such; the
/// verdict does not depend on the list being complete (the first disallowed change decides).
pub const MAX_CHANGES_LISTED: usize = 10_000;

/// Compares `signed` (the document as of the signed revision) with `fin` (the final
/// document) and classifies every difference under `perms`.
pub fn analyse(
    signed: &Document,
    fin: &Document,
    revisions: &[Revision],
    signed_revision: usize,
    perms: &Permissions,
) -> Analysis {
    let ctx = Comparison::new(signed, fin, revisions);
    let mut changes = Vec::new();
    let mut truncated = false;
    let mut push = |c: Change| {
        if changes.len() < MAX_CHANGES_LISTED {
            changes.push(c);
        } else {
            truncated = true;
        }
    };
    // Objects redefined or freed after the signed revision.
    for (&num, old_entry) in &signed.reference_table.entries {
        if !matches!(
            old_entry,
            XrefEntry::Normal { .. } | XrefEntry::Compressed { .. }
        ) {
            continue;
        }
        let new_entry = fin.reference_table.get(num);
        if same_position(
            &signed.reference_table,
            &fin.reference_table,
            old_entry,
            new_entry,
        ) {
            continue;
        }
        let Some((id, old)) = object_by_number(signed, num) else {
            continue;
        };
        let revision = ctx.revision_of(fin, num);
        match object_by_number(fin, num).map(|(_, o)| o) {
            None => {
                let (class, rule) = ctx.classify_deleted(id);
                push(ctx.judge(id, revision, ChangeKind::Deleted, (class, rule), perms));
            }
            Some(new) => {
                if objects_equal(old, new) {
                    continue; // rewritten unchanged, as some writers do on every save
                }
                let (class, rule, field) = ctx.classify_changed(id, old, new);
                let mut change = ctx.judge(id, revision, ChangeKind::Changed, (class, rule), perms);
                ctx.apply_locks(&mut change, field.as_deref(), perms);
                push(change);
            }
        }
    }
    // Objects added after the signed revision.
    for (&(num, generation), new) in &fin.objects {
        if signed
            .reference_table
            .get(num)
            .is_some_and(|e| matches!(e, XrefEntry::Normal { .. } | XrefEntry::Compressed { .. }))
        {
            continue;
        }
        let revision = ctx.revision_of(fin, num);
        let (class, rule, field) = ctx.classify_added((num, generation), new);
        let mut change = ctx.judge(
            (num, generation),
            revision,
            ChangeKind::Added,
            (class, rule),
            perms,
        );
        ctx.apply_locks(&mut change, field.as_deref(), perms);
        push(change);
    }
    changes.sort_by_key(|c| (c.revision, c.object));
    Analysis {
        signed_revision,
        changes,
        truncated,
    }
}
