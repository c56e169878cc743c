//! The comparison of a signed revision with the final document: a [`Comparison`] holds
//! both and what the signed one references, and classifies each object a later update
//! added, redefined or freed by the rule that decides it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::pdf::Revision;

use super::change::{Change, ChangeClass, ChangeKind, Permissions, Verdict};
use super::objects::{
    collect_refs, entries_equal, objects_equal, resolve_array, resolve_dict, MAX_REFERENCE_DEPTH,
};
use super::roles::{role_name, roles, Role};

/// Stands for the trailer among referrers (no object has this number: xref numbers are
/// bounded far below it).
pub(super) const TRAILER: u32 = u32::MAX;

/// What the analysis needs of both documents.
pub(super) struct Comparison<'a> {
    pub(super) signed: &'a Document,
    pub(super) fin: &'a Document,
    pub(super) revisions: &'a [Revision],
    /// Object numbers the signed revision references, whether or not they exist there.
    pub(super) referenced_in_signed: HashSet<u32>,
    /// For each object number, the objects of the signed revision that refer to it
    /// ([`TRAILER`] for the trailer).
    pub(super) referrers: BTreeMap<u32, BTreeSet<u32>>,
    /// Roles of objects in the final document, found by walking its catalog.
    pub(super) roles: BTreeMap<ObjectId, Role>,
    pub(super) signed_roles: BTreeMap<ObjectId, Role>,
}

impl<'a> Comparison<'a> {
    pub(super) fn new(signed: &'a Document, fin: &'a Document, revisions: &'a [Revision]) -> Self {
        let mut referenced_in_signed = HashSet::new();
        let mut referrers: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let trailer = Object::Dictionary(signed.trailer.clone());
        for (from, obj) in signed
            .objects
            .iter()
            .map(|(id, o)| (id.0, o))
            .chain(std::iter::once((TRAILER, &trailer)))
        {
            collect_refs(obj, 0, &mut |id| {
                // The trailer's own extra keys are not part of what a reader shows, and some
                // writers (LibreOffice's /AdditionalStreams) point them at objects to come.
                if from != TRAILER {
                    referenced_in_signed.insert(id.0);
                }
                referrers.entry(id.0).or_default().insert(from);
            });
        }
        Comparison {
            signed,
            fin,
            revisions,
            referenced_in_signed,
            referrers,
            roles: roles(fin),
            signed_roles: roles(signed),
        }
    }

    /// The revision whose update section defines object `num` in `doc`.
    pub(super) fn revision_of(&self, doc: &Document, num: u32) -> usize {
        crate::pdf::revision_holding(doc, self.revisions, num)
    }

    pub(super) fn role(&self, id: ObjectId) -> Role {
        self.roles
            .get(&id)
            .or_else(|| self.signed_roles.get(&id))
            .cloned()
            .unwrap_or(Role::Other)
    }

    pub(super) fn judge(
        &self,
        (num, generation): ObjectId,
        revision: usize,
        kind: ChangeKind,
        (class, rule): (ChangeClass, String),
        perms: &Permissions,
    ) -> Change {
        let verdict = permitted(class, perms);
        let why = match (class, perms.docmdp, verdict) {
            (_, _, Verdict::Allowed) => String::new(),
            (ChangeClass::Disallowed, _, _) => " — never allowed after signing".to_owned(),
            (_, Some(p), Verdict::Disallowed) if perms.p_from_lock => {
                format!(" — not allowed by a signature's FieldMDP lock P={p}")
            }
            (_, Some(p), Verdict::Disallowed) => {
                format!(" — not allowed by the certification's DocMDP P={p}")
            }
            (ChangeClass::Annotation, None, Verdict::AllowedWithWarning) => {
                " — allowed without DocMDP, reported".to_owned()
            }
            (ChangeClass::Cosmetic, _, _) => {
                " — draws nothing on any page: allowed, reported".to_owned()
            }
            _ => String::new(),
        };
        Change {
            revision,
            object: num,
            generation,
            kind,
            class,
            verdict,
            rule: format!("{rule}{why}"),
        }
    }

    /// Form filling of a field a FieldMDP lock covers is disallowed.
    pub(super) fn apply_locks(
        &self,
        change: &mut Change,
        field: Option<&str>,
        perms: &Permissions,
    ) {
        if change.class != ChangeClass::FormFilling {
            return;
        }
        if let Some(name) = field {
            if perms.locks.iter().any(|l| l.covers(name)) {
                change.verdict = Verdict::Disallowed;
                change.rule = format!(
                    "{} — field '{name}' is locked by a FieldMDP signature",
                    change.rule
                );
            }
        }
    }

    pub(super) fn classify_deleted(&self, id: ObjectId) -> (ChangeClass, String) {
        let old = self.signed.objects.get(&id);
        if old.is_some_and(is_bookkeeping) {
            return (
                ChangeClass::Bookkeeping,
                "a cross-reference or object stream was freed".into(),
            );
        }
        // An annotation removed with its appearance: what P=3 permits (array_growth judges
        // the page's list). Nothing else of the final document may still refer to it.
        let annotation = matches!(
            self.signed_roles.get(&id),
            Some(Role::Annotation { widget: false } | Role::Appearance { field: None, .. })
        );
        if annotation && !self.roles.contains_key(&id) {
            return (
                ChangeClass::Annotation,
                format!(
                    "annotation object {} of the signed revision was removed",
                    id.0
                ),
            );
        }
        // A page's annotation list removed with it, when all it held were annotations.
        let only_annotations = matches!(self.signed_roles.get(&id), Some(Role::AnnotsArray))
            && old.is_some_and(|o| {
                resolve_array(self.signed, o).iter().all(|a| {
                    a.as_reference().is_ok_and(|a| {
                        matches!(
                            self.signed_roles.get(&a),
                            Some(Role::Annotation { widget: false })
                        )
                    })
                })
            });
        if only_annotations && !self.roles.contains_key(&id) {
            return (
                ChangeClass::Annotation,
                format!("the annotation list {} of the signed revision was removed with its annotations", id.0),
            );
        }
        (
            ChangeClass::Disallowed,
            format!("object {} of the signed revision was deleted", id.0),
        )
    }

    pub(super) fn classify_added(
        &self,
        id: ObjectId,
        new: &Object,
    ) -> (ChangeClass, String, Option<String>) {
        if self.referenced_in_signed.contains(&id.0) {
            return (
                ChangeClass::Disallowed,
                format!(
                    "object {} fills a reference the signed revision left dangling (shadow attack)",
                    id.0
                ),
                None,
            );
        }
        if is_bookkeeping(new) {
            return (
                ChangeClass::Bookkeeping,
                "new cross-reference or object stream".into(),
                None,
            );
        }
        match self.role(id) {
            Role::SignatureValue => {
                let ts = new.as_dict().is_ok_and(|d| d.has_type(b"DocTimeStamp"))
                    || stream_or_dict(new)
                        .and_then(|d| d.get(b"SubFilter").ok())
                        .and_then(|s| s.as_name().ok())
                        == Some(b"ETSI.RFC3161".as_slice());
                if ts {
                    (
                        ChangeClass::DocumentTimestamp,
                        "a new document timestamp".into(),
                        None,
                    )
                } else {
                    (
                        ChangeClass::Signing,
                        "a new signature dictionary".into(),
                        None,
                    )
                }
            }
            Role::Field {
                signature: true,
                name,
                ..
            } => (
                ChangeClass::Signing,
                format!("new signature field '{name}'"),
                None,
            ),
            Role::Field {
                signature: false,
                name,
                ..
            } => (
                ChangeClass::FormFilling,
                format!("new form field '{name}'"),
                Some(name),
            ),
            // Lists and the AcroForm are judged where the catalog or a page attaches them.
            Role::AnnotsArray | Role::FieldsArray | Role::AcroForm => (
                ChangeClass::Bookkeeping,
                format!(
                    "new object {} ({}), judged where it is attached",
                    id.0,
                    role_name(&self.role(id))
                ),
                None,
            ),
            Role::Annotation { widget: false } => (
                ChangeClass::Annotation,
                format!("new annotation {}", annot_subtype(new)),
                None,
            ),
            Role::Annotation { widget: true } => (
                ChangeClass::Annotation,
                "new widget annotation".into(),
                None,
            ),
            Role::Appearance {
                signature: true, ..
            } => (
                ChangeClass::Signing,
                "appearance of a signature".into(),
                None,
            ),
            Role::Appearance { field: Some(f), .. } => (
                ChangeClass::FormFilling,
                format!("new appearance stream of field '{f}'"),
                Some(f),
            ),
            Role::Appearance { field: None, .. } => (
                ChangeClass::Annotation,
                "new annotation appearance stream".into(),
                None,
            ),
            Role::Dss => (ChangeClass::Dss, "validation data (DSS)".into(), None),
            Role::Metadata => (ChangeClass::Metadata, "new XMP metadata".into(), None),
            Role::Extensions => (
                ChangeClass::Metadata,
                "a new extensions dictionary".into(),
                None,
            ),
            // New structure elements and parent-tree nodes are attached where an old element
            // or the root gains them, and judged there.
            Role::StructTree => (
                ChangeClass::Bookkeeping,
                format!(
                    "new object {} of the structure tree, judged where it is attached",
                    id.0
                ),
                None,
            ),
            Role::Info => (
                ChangeClass::Metadata,
                "new document information dictionary".into(),
                None,
            ),
            // A new object becomes visible only through an object that refers to it: an old
            // one (which then changed, and is judged there, or left the reference dangling,
            // caught above) or another new one (judged by its own role). So a new object
            // with no role of its own, such as a font or image of a new appearance, is
            // judged where the document attaches it.
            Role::Other => (
                ChangeClass::Bookkeeping,
                format!(
                    "new object {}, judged where the document refers to it",
                    id.0
                ),
                None,
            ),
            role => (
                ChangeClass::Disallowed,
                format!("new object {} used as {}", id.0, role_name(&role)),
                None,
            ),
        }
    }

    pub(super) fn classify_changed(
        &self,
        id: ObjectId,
        old: &Object,
        new: &Object,
    ) -> (ChangeClass, String, Option<String>) {
        if is_bookkeeping(old) && is_bookkeeping(new) {
            return (
                ChangeClass::Bookkeeping,
                "cross-reference or object stream rewritten".into(),
                None,
            );
        }
        let role = self.role(id);
        let (Some(od), Some(nd)) = (stream_or_dict(old), stream_or_dict(new)) else {
            return match role {
                Role::FieldsArray => self.array_growth(old, new, "/AcroForm /Fields"),
                Role::AnnotsArray => self.array_growth(old, new, "page /Annots"),
                Role::StructTree
                    if kept_all(
                        &resolve_array(self.signed, old),
                        &resolve_array(self.fin, new),
                    ) =>
                {
                    (
                        ChangeClass::Bookkeeping,
                        "an array of the structure tree gained entries".into(),
                        None,
                    )
                }
                _ => (
                    ChangeClass::Disallowed,
                    format!("object {} ({}) was overwritten", id.0, role_name(&role)),
                    None,
                ),
            };
        };
        let changed: Vec<Vec<u8>> = changed_keys(od, nd);
        let is_stream_change =
            matches!((old, new), (Object::Stream(a), Object::Stream(b)) if a.content != b.content);
        let keys = |allowed: &[&[u8]]| changed.iter().all(|k| allowed.contains(&k.as_slice()));
        let names = changed
            .iter()
            .map(|k| format!("/{}", String::from_utf8_lossy(k)))
            .collect::<Vec<_>>()
            .join(", ");
        match role {
            Role::Catalog => {
                let mut worst = ChangeClass::Bookkeeping;
                let mut parts = Vec::new();
                for k in &changed {
                    let class = match k.as_slice() {
                        b"DSS" => ChangeClass::Dss,
                        b"Metadata" => ChangeClass::Metadata,
                        b"AcroForm" => self.acroform_change(od.get(b"AcroForm").ok(), nd.get(b"AcroForm").ok()).0,
                        // Which version and extensions the file declares draws nothing.
                        b"Extensions" | b"Version" | b"Lang" | b"MarkInfo" => ChangeClass::Metadata,
                        b"Names" => self.names_change(od.get(b"Names").ok(), nd.get(b"Names").ok()),
                        // The structure tree may gain what new signatures and annotations need;
                        // its objects are judged one by one.
                        b"StructTreeRoot" => ChangeClass::Bookkeeping,
                        // A value written again as an equal copy (a writer renumbering the
                        // outlines, say) shows what the signed one showed.
                        _ if self.equivalent(od.get(k).ok(), nd.get(k).ok()) => {
                            parts.push(format!("/{} (an equal copy)", String::from_utf8_lossy(k)));
                            continue;
                        }
                        _ => ChangeClass::Disallowed,
                    };
                    parts.push(format!("/{}", String::from_utf8_lossy(k)));
                    worst = worst.max(class);
                }
                (worst, format!("catalog entries changed: {}", parts.join(", ")), None)
            }
            Role::Info => (ChangeClass::Metadata, "document information dictionary updated".into(), None),
            Role::Metadata => (ChangeClass::Metadata, "XMP metadata updated".into(), None),
            Role::Dss => (ChangeClass::Dss, "validation data (DSS) updated".into(), None),
            Role::AcroForm => {
                let (class, rule) = self.acroform_change(Some(old), Some(new));
                (class, rule, None)
            }
            // A page gaining /StructParents is a tagged page's key into the parent tree, which
            // its first structured annotation needs; an existing key must stay.
            Role::Page
                if keys(&[b"Annots", b"Resources", b"StructParents"])
                    && (!od.has(b"StructParents") || !changed.iter().any(|k| k == b"StructParents")) =>
            {
                let (mut class, mut rule, _) = self.annots_change(od.get(b"Annots").ok(), nd.get(b"Annots").ok());
                if changed.iter().any(|k| k == b"StructParents") {
                    rule = format!("{rule}; the page gained /StructParents");
                }
                if changed.iter().any(|k| k == b"Resources") {
                    match self.resources_growth(od.get(b"Resources").ok(), nd.get(b"Resources").ok()) {
                        None => rule = format!("{rule}; page /Resources only gained new names"),
                        Some(what) => {
                            class = ChangeClass::Disallowed;
                            rule = format!("page /Resources changed: {what}");
                        }
                    }
                }
                (class, rule, None)
            }
            Role::Page => (ChangeClass::Disallowed, format!("page changed: {names}"), None),
            // /ITXT is Acrobat's private version stamp on the page tree; it draws nothing.
            Role::PageTree if keys(&[b"ITXT"]) => (ChangeClass::Metadata, "Acrobat's /ITXT stamp on the page tree".into(), None),
            Role::PageTree => (ChangeClass::Disallowed, format!("page tree changed: {names}"), None),
            Role::SignatureValue => (ChangeClass::Disallowed, format!("a signed signature dictionary was rewritten: {names}"), None),
            Role::StructTree => match self.struct_growth(od, nd, &changed) {
                None => (ChangeClass::Bookkeeping, format!("the structure tree gained entries ({names})"), None),
                Some(what) => (ChangeClass::Disallowed, format!("the structure tree changed: {what}"), None),
            },
            Role::Extensions => match self.other_path_to_extensions(id) {
                None => (ChangeClass::Metadata, format!("the extensions dictionary updated ({names})"), None),
                Some(path) => (
                    ChangeClass::Disallowed,
                    format!("object {} is the extensions dictionary but also {path}: changing it changes that too", id.0),
                    None,
                ),
            },
            Role::Field { name, signature, .. } => {
                // The value and what shows it: /I holds the selected indices of a choice field.
                let value_keys: &[&[u8]] = &[b"V", b"DV", b"I", b"AP", b"AS", b"MK"];
                let ap_changed = changed.iter().any(|k| k == b"AP");
                if signature {
                    let was_signed = od.get(b"V").is_ok_and(|v| !v.is_null());
                    if !was_signed && keys(&[b"V", b"AP", b"AS", b"MK", b"Lock", b"SV", b"F"]) {
                        match ap_changed.then(|| self.shared_appearance(id, od)).flatten() {
                            Some(other) => (ChangeClass::Disallowed, format!("signing field '{name}' replaced an appearance that object {} of the signed revision also uses", other_name(other)), None),
                            None => (ChangeClass::Signing, format!("empty signature field '{name}' was signed"), None),
                        }
                    } else if was_signed
                        && keys(&[b"AP"])
                        && self.equivalent(od.get(b"AP").ok(), nd.get(b"AP").ok())
                    {
                        // Acrobat moves a signed field's appearance off an XObject that /DR
                        // also names, onto an equal copy of its own: the field shows the same.
                        (ChangeClass::Cosmetic, format!("signed field '{name}' points to an equal copy of its appearance"), None)
                    } else {
                        (ChangeClass::Disallowed, format!("signature field '{name}' changed: {names}"), None)
                    }
                } else if keys(value_keys) {
                    // A field that holds its value must show it: a new appearance over the
                    // same value is content swapped under the signature (a shadow replace).
                    let value_changed = changed.iter().any(|k| k == b"V" || k == b"I");
                    if ap_changed && od.has(b"V") && !value_changed {
                        (ChangeClass::Disallowed, format!("field '{name}' shows a new appearance but its value did not change (shadow replace)"), None)
                    } else if ap_changed && self.uncovers(normal_appearance(self.signed, od), normal_appearance(self.fin, nd)) {
                        (ChangeClass::Disallowed, format!("field '{name}' was filled with an appearance that uncovers what its signed appearance hid on the page (shadow attack)"), None)
                    } else {
                        (ChangeClass::FormFilling, format!("field '{name}' filled ({names})"), Some(name))
                    }
                } else {
                    (ChangeClass::Disallowed, format!("field '{name}' changed: {names}"), None)
                }
            }
            Role::Annotation { widget } if !widget => {
                (ChangeClass::Annotation, format!("annotation {} changed ({names})", annot_subtype(new)), None)
            }
            Role::Annotation { .. } if keys(&[b"AP", b"AS", b"MK"]) => {
                (ChangeClass::FormFilling, format!("widget appearance updated ({names})"), None)
            }
            // Signing an empty field draws its appearance; redrawing a signed one is not allowed.
            Role::Appearance { signature: true, field } => match field {
                Some(f) if !self.was_signed(&f) => match self.referrers_outside_field(id.0, &f) {
                    Some(other) => (ChangeClass::Disallowed, format!("appearance of field '{f}' redrawn, but object {} of the signed revision also uses it", other_name(other)), None),
                    None => (ChangeClass::Signing, format!("appearance of signature field '{f}', signed after the signed revision"), None),
                },
                _ => (ChangeClass::Disallowed, "the appearance of a signed signature was redrawn".into(), None),
            },
            Role::Appearance { field: Some(f), .. } if self.uncovers(Some(old), Some(new)) => (
                ChangeClass::Disallowed,
                format!("the appearance of field '{f}' was redrawn so that it uncovers what it hid on the page (shadow attack)"),
                None,
            ),
            Role::Appearance { field: Some(f), .. } => (ChangeClass::FormFilling, format!("appearance of field '{f}' redrawn"), Some(f)),
            Role::Appearance { field: None, .. } => (ChangeClass::Annotation, "annotation appearance redrawn".into(), None),
            _ if !is_stream_change && !changed.is_empty() && changed.iter().all(|k| draws_nothing(nd, k)) => (
                ChangeClass::Cosmetic,
                format!("object {} changed only keys that draw nothing ({names})", id.0),
                None,
            ),
            role => {
                let what = if is_stream_change { "content".to_owned() } else { names };
                (ChangeClass::Disallowed, format!("object {} ({}) of the signed revision was overwritten ({what})", id.0, role_name(&role)), None)
            }
        }
    }

    /// `/AcroForm` may gain fields and signature flags; its default resources may grow.
    pub(super) fn acroform_change(
        &self,
        old: Option<&Object>,
        new: Option<&Object>,
    ) -> (ChangeClass, String) {
        let (Some(old), Some(new)) = (old, new) else {
            return (ChangeClass::Signing, "an AcroForm was added".into());
        };
        let (Ok(od), Ok(nd)) = (resolve_dict(self.signed, old), resolve_dict(self.fin, new)) else {
            return (ChangeClass::Signing, "AcroForm reference kept".into());
        };
        let changed = changed_keys(od, nd);
        let mut worst = ChangeClass::Bookkeeping;
        for k in &changed {
            let class = match k.as_slice() {
                b"Fields" => {
                    self.array_growth(
                        od.get(b"Fields").unwrap_or(&Object::Null),
                        nd.get(b"Fields").unwrap_or(&Object::Null),
                        "/AcroForm /Fields",
                    )
                    .0
                }
                b"SigFlags" | b"DR" | b"DA" | b"NeedAppearances" => ChangeClass::Signing,
                _ => ChangeClass::Disallowed,
            };
            worst = worst.max(class);
        }
        let names = changed
            .iter()
            .map(|k| format!("/{}", String::from_utf8_lossy(k)))
            .collect::<Vec<_>>()
            .join(", ");
        (worst, format!("AcroForm updated: {names}"))
    }

    /// An array (fields, annotations) may only grow: every old entry stays.
    pub(super) fn array_growth(
        &self,
        old: &Object,
        new: &Object,
        what: &str,
    ) -> (ChangeClass, String, Option<String>) {
        let old_items: Vec<Object> = resolve_array(self.signed, old);
        let new_items: Vec<Object> = resolve_array(self.fin, new);
        let removed: Vec<&Object> = old_items
            .iter()
            .filter(|o| !new_items.contains(o))
            .collect();
        // Removing annotations is what DocMDP P=3 permits (ISO 32000-1 Table 254: creation,
        // deletion and modification); removing a field or a signature's widget never is.
        let mut removal = None;
        for r in &removed {
            let annotation = r.as_reference().is_ok_and(|id| {
                matches!(
                    self.signed_roles.get(&id),
                    Some(Role::Annotation { widget: false })
                )
            });
            if !annotation {
                return (
                    ChangeClass::Disallowed,
                    format!("{what}: entries of the signed revision were removed"),
                    None,
                );
            }
            removal = Some(ChangeClass::Annotation);
        }
        let added: Vec<&Object> = new_items
            .iter()
            .filter(|n| !old_items.contains(n))
            .collect();
        let mut worst = removal.unwrap_or(ChangeClass::Bookkeeping);
        for a in &added {
            let class = match a.as_reference().map(|id| self.role(id)) {
                Ok(Role::Field {
                    signature: true, ..
                }) => ChangeClass::Signing,
                Ok(Role::Field {
                    signature: false, ..
                }) => ChangeClass::FormFilling,
                Ok(Role::Annotation { .. }) => ChangeClass::Annotation,
                _ => ChangeClass::Disallowed,
            };
            worst = worst.max(class);
        }
        let rule = match (added.len(), removed.len()) {
            (a, 0) => format!("{what}: {a} entries added"),
            (0, r) => format!("{what}: {r} annotations removed"),
            (a, r) => format!("{what}: {a} entries added, {r} annotations removed"),
        };
        (worst, rule, None)
    }

    /// The old and new values of an entry as dictionaries, empty where absent or not one.
    pub(super) fn dict_pair<'s>(
        &'s self,
        old: Option<&'s Object>,
        new: Option<&'s Object>,
        empty: &'s Dictionary,
    ) -> (&'s Dictionary, &'s Dictionary) {
        (
            old.and_then(|o| resolve_dict(self.signed, o).ok())
                .unwrap_or(empty),
            new.and_then(|o| resolve_dict(self.fin, o).ok())
                .unwrap_or(empty),
        )
    }

    /// What `/Resources` lost, if anything (`None`: it only gained names). Every resource the signed revision's content
    /// can name must still resolve to the same object (a changed one is a shadow replace).
    pub(super) fn resources_growth(
        &self,
        old: Option<&Object>,
        new: Option<&Object>,
    ) -> Option<String> {
        let empty = Dictionary::new();
        let (od, nd) = self.dict_pair(old, new, &empty);
        for (category, old_value) in od.iter() {
            let Ok(new_value) = nd.get(category) else {
                return Some(format!("/{} removed", String::from_utf8_lossy(category)));
            };
            match (
                resolve_dict(self.signed, old_value),
                resolve_dict(self.fin, new_value),
            ) {
                (Ok(oc), Ok(nc)) => {
                    for (name, v) in oc.iter() {
                        if nc.get(name).ok() != Some(v) {
                            return Some(format!(
                                "/{} /{} now names another object",
                                String::from_utf8_lossy(category),
                                String::from_utf8_lossy(name)
                            ));
                        }
                    }
                }
                _ if old_value == new_value => {}
                _ => return Some(format!("/{} replaced", String::from_utf8_lossy(category))),
            }
        }
        None
    }

    /// The name dictionary may gain `/AP` (annotation appearance templates, which Acrobat
    /// writes when annotating); any other name tree (JavaScript, embedded files,
    /// destinations) is content of the document.
    pub(super) fn names_change(&self, old: Option<&Object>, new: Option<&Object>) -> ChangeClass {
        let empty = Dictionary::new();
        let (od, nd) = self.dict_pair(old, new, &empty);
        if changed_keys(od, nd).iter().all(|k| k == b"AP") {
            ChangeClass::Annotation
        } else {
            ChangeClass::Disallowed
        }
    }

    /// The objects of field `name` in the signed revision: its widgets and their `/AP`
    /// dictionaries when those are indirect.
    pub(super) fn field_objects(&self, name: &str) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for (id, role) in &self.signed_roles {
            if matches!(role, Role::Field { name: n, .. } if n == name) {
                out.insert(id.0);
                if let Some(Ok(ap)) = self
                    .signed
                    .get_dictionary(*id)
                    .ok()
                    .map(|d| d.get(b"AP").and_then(Object::as_reference))
                {
                    out.insert(ap.0);
                }
            }
        }
        out
    }

    /// An object of the signed revision, other than field `field`'s own, that refers to `num`.
    ///
    /// An intermediate object of the field's own (an indirect `/AP` dictionary) is the
    /// field's alone only if nothing outside the field refers to it either: the walk goes up
    /// through such objects.
    pub(super) fn referrers_outside_field(&self, num: u32, field: &str) -> Option<u32> {
        let own = self.field_objects(field);
        let fields: BTreeSet<u32> = self
            .signed_roles
            .iter()
            .filter(|(_, r)| matches!(r, Role::Field { name: n, .. } if n == field))
            .map(|(id, _)| id.0)
            .collect();
        let mut stack = vec![num];
        let mut seen = BTreeSet::new();
        while let Some(n) = stack.pop() {
            if !seen.insert(n) || seen.len() > 64 {
                continue;
            }
            for &r in self.referrers.get(&n).into_iter().flatten() {
                if !own.contains(&r) {
                    return Some(r);
                }
                if !fields.contains(&r) {
                    stack.push(r);
                }
            }
        }
        None
    }

    /// When signing the empty field `id` (old dictionary `old`) replaces its appearance: an
    /// object outside the field that shares the old appearance, if any. The appearance being
    /// replaced must have been the field's alone.
    pub(super) fn shared_appearance(&self, id: ObjectId, old: &Dictionary) -> Option<u32> {
        let name = match self.signed_roles.get(&id) {
            Some(Role::Field { name, .. }) => name.clone(),
            _ => return None,
        };
        let ap = old.get(b"AP").ok()?;
        let mut nums = Vec::new();
        if let Ok(r) = ap.as_reference() {
            nums.push(r.0);
        }
        if let Ok((_, target)) = self.signed.dereference(ap) {
            collect_refs(target, 0, &mut |r| nums.push(r.0));
        }
        nums.into_iter()
            .find_map(|n| self.referrers_outside_field(n, &name))
    }

    /// Whether signature field `name` had a value in the signed revision.
    pub(super) fn was_signed(&self, name: &str) -> bool {
        self.signed_roles.values().any(
            |r| matches!(r, Role::Field { name: n, signature: true, has_value: true } if n == name),
        )
    }

    /// Whether a field's new appearance uncovers the page: the signed one painted an opaque
    /// box over its widget (hiding whatever the page draws there), the new one does not. A
    /// form may be filled; it may not lift a cover the signer saw as blank.
    pub(super) fn uncovers(&self, old: Option<&Object>, new: Option<&Object>) -> bool {
        let covers = |doc: &Document, o: Option<&Object>| {
            o.and_then(|o| doc.dereference(o).ok())
                .and_then(|(_, o)| o.as_stream().ok())
                .is_some_and(paints_over_its_box)
        };
        covers(self.signed, old) && !covers(self.fin, new)
    }

    /// Another way the signed revision reaches the extensions object `id` than the catalog's
    /// `/Extensions` (or the extensions dictionary itself), in words; `None` when there is none.
    pub(super) fn other_path_to_extensions(&self, id: ObjectId) -> Option<String> {
        let catalog = self
            .signed
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .ok();
        for &r in self.referrers.get(&id.0).into_iter().flatten() {
            if Some(r) == catalog.map(|c| c.0) {
                let d = catalog.and_then(|c| self.signed.get_dictionary(c).ok())?;
                if let Some((k, _)) = d.iter().find(|(k, v)| {
                    k.as_slice() != b"Extensions" && v.as_reference().ok() == Some(id)
                }) {
                    return Some(format!("the catalog's /{}", String::from_utf8_lossy(k)));
                }
            } else if !matches!(self.signed_roles.get(&(r, 0)), Some(Role::Extensions)) {
                return Some(format!("used by object {r}"));
            }
        }
        None
    }

    /// What a structure element, the tree's root or a parent-tree node lost or changed, if
    /// anything: they may gain children and entries, never lose or change one (what a new
    /// signature field or annotation needs).
    pub(super) fn struct_growth(
        &self,
        od: &Dictionary,
        nd: &Dictionary,
        changed: &[Vec<u8>],
    ) -> Option<String> {
        for k in changed {
            let (o, n) = (od.get(k).ok(), nd.get(k).ok());
            let list = |doc: &Document, v: Option<&Object>| -> Vec<Object> {
                match v.map(|v| doc.dereference(v).map(|(_, t)| t.clone())) {
                    Some(Ok(Object::Array(a))) => a,
                    Some(Ok(other)) => vec![other],
                    _ => Vec::new(),
                }
            };
            let ok = match k.as_slice() {
                b"K" | b"Kids" => kept_all(&list(self.signed, o), &list(self.fin, n)),
                b"Nums" => {
                    let (old, new) = (list(self.signed, o), list(self.fin, n));
                    old.chunks(2).all(|pair| new.chunks(2).any(|q| q == pair))
                }
                b"ParentTreeNextKey" => {
                    let num = |v: Option<&Object>| v.and_then(|v| v.as_i64().ok());
                    num(n) >= num(o)
                }
                // A new parent tree is an object of its own, judged where it is; the limits
                // of a number-tree node follow its entries.
                b"ParentTree" | b"Limits" => true,
                _ => false,
            };
            if !ok {
                return Some(format!(
                    "/{} lost or changed entries",
                    String::from_utf8_lossy(k)
                ));
            }
        }
        None
    }

    /// Whether `old` (of the signed revision) and `new` (of the final document) are the same
    /// value once their references are followed, each in its own document: an equal copy.
    pub(super) fn equivalent(&self, old: Option<&Object>, new: Option<&Object>) -> bool {
        let (Some(a), Some(b)) = (old, new) else {
            return false;
        };
        let mut budget = MAX_EQUIVALENCE_NODES;
        let mut assumed = HashSet::new();
        self.equivalent_at(a, b, 0, &mut budget, &mut assumed)
    }

    pub(super) fn equivalent_at(
        &self,
        a: &Object,
        b: &Object,
        depth: usize,
        budget: &mut usize,
        assumed: &mut HashSet<(ObjectId, ObjectId)>,
    ) -> bool {
        if depth > MAX_REFERENCE_DEPTH || *budget == 0 {
            return false;
        }
        *budget -= 1;
        if let (Object::Reference(x), Object::Reference(y)) = (a, b) {
            // A pair met again (a /Parent link) is taken as equal while it is being compared.
            if !assumed.insert((*x, *y)) {
                return true;
            }
        }
        let (Ok((_, a)), Ok((_, b))) = (self.signed.dereference(a), self.fin.dereference(b)) else {
            return false;
        };
        match (a, b) {
            (Object::Array(x), Object::Array(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|(p, q)| self.equivalent_at(p, q, depth + 1, budget, assumed))
            }
            (Object::Dictionary(x), Object::Dictionary(y)) => {
                self.dicts_equivalent(x, y, depth, budget, assumed)
            }
            (Object::Stream(x), Object::Stream(y)) => {
                x.content == y.content
                    && self.dicts_equivalent(&x.dict, &y.dict, depth, budget, assumed)
            }
            _ => objects_equal(a, b),
        }
    }

    pub(super) fn dicts_equivalent(
        &self,
        x: &Dictionary,
        y: &Dictionary,
        depth: usize,
        budget: &mut usize,
        assumed: &mut HashSet<(ObjectId, ObjectId)>,
    ) -> bool {
        x.len() == y.len()
            && x.iter().all(|(k, v)| {
                y.get(k).is_ok_and(|w| {
                    // A stream's /Length may be written directly or as a reference.
                    k.as_slice() == b"Length"
                        || self.equivalent_at(v, w, depth + 1, budget, assumed)
                })
            })
    }

    pub(super) fn annots_change(
        &self,
        old: Option<&Object>,
        new: Option<&Object>,
    ) -> (ChangeClass, String, Option<String>) {
        let (class, rule, _) = self.array_growth(
            old.unwrap_or(&Object::Null),
            new.unwrap_or(&Object::Null),
            "page /Annots",
        );
        (class, rule, None)
    }
}

/// Most decoded bytes of one appearance read to decide whether it covers its box: 1 MiB.
pub(super) const MAX_COVER_CONTENT: usize = 1 << 20;

/// A widget's normal appearance (`/AP /N`, ISO 32000-1 §12.5.5) as the object it names.
pub(super) fn normal_appearance<'a>(
    doc: &'a Document,
    widget: &'a Dictionary,
) -> Option<&'a Object> {
    let ap = resolve_dict(doc, widget.get(b"AP").ok()?).ok()?;
    ap.get(b"N").ok()
}

/// Whether appearance `s` fills a rectangle over nine tenths or more of its `/BBox` (a box
/// that hides what lies under the widget).
pub(super) fn paints_over_its_box(s: &lopdf::Stream) -> bool {
    let num = |o: &Object| {
        o.as_float()
            .ok()
            .or_else(|| o.as_i64().ok().map(|i| i as f32))
    };
    let Some(bbox) = s
        .dict
        .get(b"BBox")
        .ok()
        .and_then(|b| b.as_array().ok())
        .filter(|b| b.len() == 4)
    else {
        return false;
    };
    let b: Vec<f32> = bbox.iter().filter_map(num).collect();
    if b.len() != 4 {
        return false;
    }
    let box_area = ((b[2] - b[0]) * (b[3] - b[1])).abs();
    let Some((content, _)) = crate::pdf::appearance::operations(s, MAX_COVER_CONTENT) else {
        return false;
    };
    let mut pending = 0f32;
    for op in &content.operations {
        match op.operator.as_str() {
            "re" => {
                let v: Vec<f32> = op.operands.iter().filter_map(num).collect();
                if v.len() == 4 {
                    pending = pending.max((v[2] * v[3]).abs());
                }
            }
            "f" | "F" | "f*" | "B" | "B*" | "b" | "b*"
                if box_area > 0.0 && pending >= 0.9 * box_area =>
            {
                return true;
            }
            "f" | "F" | "f*" | "B" | "B*" | "b" | "b*" | "n" | "S" | "s" => pending = 0.0,
            _ => {}
        }
    }
    false
}

/// Most values compared when deciding that a replaced object is an equal copy: 4,096.
pub(super) const MAX_EQUIVALENCE_NODES: usize = 4096;

/// Whether every item of `old` is still in `new`.
pub(super) fn kept_all(old: &[Object], new: &[Object]) -> bool {
    old.iter().all(|o| new.contains(o))
}

/// Keys of dictionary `d` that draw nothing on a page (ISO 32000-1): a font's or form's
/// `/Name` (obsolete since PDF 1.2, Table 111, Table 95), `/LastModified` and `/PieceInfo`
/// (§14.5, §14.6, a writer's private data), a structure key (`/StructParent(s)`, §14.7.4.4).
pub(super) fn draws_nothing(d: &Dictionary, key: &[u8]) -> bool {
    match key {
        b"Name" => d.has_type(b"Font") || d.has_type(b"XObject"),
        b"LastModified" | b"PieceInfo" | b"StructParent" | b"StructParents" => true,
        _ => false,
    }
}

/// Whether `class` is allowed under `perms` (module documentation).
pub(super) fn permitted(class: ChangeClass, perms: &Permissions) -> Verdict {
    use ChangeClass as C;
    match (class, perms.docmdp) {
        (C::Bookkeeping | C::Dss | C::Metadata | C::DocumentTimestamp, _) => Verdict::Allowed,
        (C::Disallowed, _) => Verdict::Disallowed,
        (C::Signing | C::FormFilling, None | Some(2) | Some(3)) => Verdict::Allowed,
        (C::Annotation, Some(3)) => Verdict::Allowed,
        (C::Annotation, None) => Verdict::AllowedWithWarning,
        // What draws nothing changes nothing a signer saw, whatever DocMDP says.
        (C::Cosmetic, _) => Verdict::AllowedWithWarning,
        _ => Verdict::Disallowed,
    }
}

pub(super) fn is_bookkeeping(o: &Object) -> bool {
    matches!(o, Object::Stream(s) if s.dict.has_type(b"XRef") || s.dict.has_type(b"ObjStm"))
}

pub(super) fn stream_or_dict(o: &Object) -> Option<&Dictionary> {
    match o {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

/// Keys whose values differ between two dictionaries (added, removed or changed).
pub(super) fn changed_keys(a: &Dictionary, b: &Dictionary) -> Vec<Vec<u8>> {
    let mut keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    for (k, v) in a.iter() {
        if !b.get(k).is_ok_and(|w| entries_equal(k, v, w)) {
            keys.insert(k.clone());
        }
    }
    for (k, _) in b.iter() {
        if !a.has(k) {
            keys.insert(k.clone());
        }
    }
    // /Length follows the content; it says nothing of its own.
    keys.remove(b"Length".as_slice());
    keys.into_iter().collect()
}

pub(super) fn other_name(num: u32) -> String {
    if num == TRAILER {
        "the trailer".into()
    } else {
        num.to_string()
    }
}

pub(super) fn annot_subtype(o: &Object) -> String {
    stream_or_dict(o)
        .and_then(|d| d.get(b"Subtype").ok())
        .and_then(|s| s.as_name().ok())
        .map(|n| format!("/{}", String::from_utf8_lossy(n)))
        .unwrap_or_default()
}
