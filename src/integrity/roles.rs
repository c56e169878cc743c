//! What each object of a document is, as reached from its catalog and trailer: the roles
//! the comparison classifies changes by.

use std::collections::{BTreeMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};

use super::objects::{collect_refs, resolve_array, resolve_dict};

/// What an object is, as reached from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    Catalog,
    Info,
    Metadata,
    AcroForm,
    FieldsArray,
    /// A field or field/widget, with its fully qualified name and whether it is a signature field.
    Field {
        name: String,
        signature: bool,
        has_value: bool,
    },
    /// A widget or other annotation that is not a field.
    Annotation {
        widget: bool,
    },
    AnnotsArray,
    Page,
    PageTree,
    SignatureValue,
    Dss,
    /// The logical structure of a tagged PDF (ISO 32000-1 §14.7): the structure tree root,
    /// its parent tree's nodes and the structure elements below it.
    StructTree,
    /// The catalog's `/Extensions` (ISO 32000-2 §7.12): which extensions the file uses.
    Extensions,
    /// An appearance stream of a field or annotation, with the field's name if any.
    Appearance {
        field: Option<String>,
        signature: bool,
    },
    Other,
}

pub(super) fn role_name(r: &Role) -> &'static str {
    match r {
        Role::Catalog => "the catalog",
        Role::Info => "the document information",
        Role::Metadata => "XMP metadata",
        Role::AcroForm => "the AcroForm",
        Role::FieldsArray => "the field list",
        Role::Field { .. } => "a form field",
        Role::Annotation { .. } => "an annotation",
        Role::AnnotsArray => "an annotation list",
        Role::Page => "a page",
        Role::PageTree => "the page tree",
        Role::SignatureValue => "a signature dictionary",
        Role::Dss => "validation data",
        Role::StructTree => "the structure tree",
        Role::Extensions => "the extensions dictionary",
        Role::Appearance { .. } => "an appearance stream",
        Role::Other => "page content, resources or another object of the document",
    }
}

/// Assigns roles to the objects reached from the catalog and the trailer.
pub(super) fn roles(doc: &Document) -> BTreeMap<ObjectId, Role> {
    let mut r = BTreeMap::new();
    let set = |r: &mut BTreeMap<ObjectId, Role>, o: Option<&Object>, role: Role| {
        if let Some(Ok(id)) = o.map(Object::as_reference) {
            r.entry(id).or_insert(role);
        }
    };
    set(&mut r, doc.trailer.get(b"Root").ok(), Role::Catalog);
    set(&mut r, doc.trailer.get(b"Info").ok(), Role::Info);
    let Ok(catalog) = doc.catalog() else { return r };
    set(&mut r, catalog.get(b"Metadata").ok(), Role::Metadata);
    set(&mut r, catalog.get(b"Pages").ok(), Role::PageTree);
    // DSS and everything below it (VRI, certificate, CRL and OCSP streams).
    if let Ok(dss) = catalog.get(b"DSS") {
        let mut stack = vec![(dss.clone(), 0usize)];
        while let Some((o, depth)) = stack.pop() {
            if depth > 4 {
                continue;
            }
            if let Ok(id) = o.as_reference() {
                if r.insert(id, Role::Dss).is_some() {
                    continue;
                }
            }
            if let Ok((_, target)) = doc.dereference(&o) {
                collect_refs(target, 0, &mut |id| {
                    stack.push((Object::Reference(id), depth + 1))
                });
                if let Object::Dictionary(d) = target {
                    d.iter().for_each(|(_, v)| {
                        if !matches!(v, Object::Reference(_)) {
                            stack.push((v.clone(), depth + 1))
                        }
                    });
                }
            }
        }
    }
    if let Ok(ext) = catalog.get(b"Extensions") {
        set(&mut r, Some(ext), Role::Extensions);
        if let Ok(d) = resolve_dict(doc, ext) {
            for (_, v) in d.iter() {
                set(&mut r, Some(v), Role::Extensions);
            }
        }
    }
    if let Ok(root) = catalog.get(b"StructTreeRoot") {
        struct_tree_roles(doc, root, &mut r);
    }
    // Pages and page-tree nodes, their annotation lists and annotations.
    for (_, page_id) in doc.get_pages() {
        r.entry(page_id).or_insert(Role::Page);
        if let Ok(page) = doc.get_dictionary(page_id) {
            if let Ok(parent) = page.get(b"Parent").and_then(Object::as_reference) {
                r.entry(parent).or_insert(Role::PageTree);
            }
            if let Ok(annots) = page.get(b"Annots") {
                set(&mut r, Some(annots), Role::AnnotsArray);
                for a in resolve_array(doc, annots) {
                    if let Ok(id) = a.as_reference() {
                        let widget = doc.get_dictionary(id).is_ok_and(|d| {
                            d.get(b"Subtype").and_then(Object::as_name).ok()
                                == Some(b"Widget".as_slice())
                        });
                        r.entry(id).or_insert(Role::Annotation { widget });
                        if let Ok(d) = doc.get_dictionary(id) {
                            appearance_roles(doc, d, None, false, &mut r);
                        }
                    }
                }
            }
        }
    }
    // The field tree: fields override the annotation role of merged field/widgets.
    if let Ok(acro) = catalog.get(b"AcroForm") {
        set(&mut r, Some(acro), Role::AcroForm);
        if let Ok(acro) = resolve_dict(doc, acro) {
            if let Ok(fields) = acro.get(b"Fields") {
                set(&mut r, Some(fields), Role::FieldsArray);
                let mut visited = HashSet::new();
                for f in resolve_array(doc, fields) {
                    field_roles(doc, &f, None, None, 0, &mut visited, &mut r);
                }
            }
        }
    }
    r
}

/// Most objects of the structure tree given a role: 100,000 (a large tagged report has a
/// few thousand structure elements).
pub(super) const MAX_STRUCT_OBJECTS: usize = 100_000;

/// Marks the structure tree from its root: the root, the parent tree's nodes and arrays, the
/// structure elements reached through `/K`. It does not follow `/Pg`, `/Obj` or `/P`: pages,
/// annotations and parents have roles of their own.
pub(super) fn struct_tree_roles(doc: &Document, root: &Object, r: &mut BTreeMap<ObjectId, Role>) {
    let mut stack = vec![root.clone()];
    let mut seen = 0usize;
    while let Some(o) = stack.pop() {
        if seen >= MAX_STRUCT_OBJECTS {
            return;
        }
        let target = match o.as_reference() {
            Ok(id) => {
                if r.contains_key(&id) {
                    continue;
                }
                r.insert(id, Role::StructTree);
                seen += 1;
                match doc.get_object(id) {
                    Ok(t) => t.clone(),
                    Err(_) => continue,
                }
            }
            Err(_) => o,
        };
        match &target {
            Object::Array(items) => stack.extend(items.iter().cloned()),
            Object::Dictionary(d) => {
                // An object reference or marked-content reference points out of the tree.
                if d.has_type(b"OBJR") || d.has_type(b"MCR") {
                    continue;
                }
                for key in [&b"K"[..], b"ParentTree", b"Kids", b"Nums"] {
                    if let Ok(v) = d.get(key) {
                        stack.push(v.clone());
                    }
                }
            }
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn field_roles(
    doc: &Document,
    node: &Object,
    parent: Option<&str>,
    ft: Option<&[u8]>,
    depth: usize,
    visited: &mut HashSet<ObjectId>,
    r: &mut BTreeMap<ObjectId, Role>,
) {
    if depth > crate::pdf::MAX_FIELD_DEPTH || visited.len() > crate::pdf::MAX_FIELDS {
        return;
    }
    let Ok(id) = node.as_reference() else { return };
    if !visited.insert(id) {
        return;
    }
    let Ok(d) = doc.get_dictionary(id) else {
        return;
    };
    let t = d
        .get(b"T")
        .ok()
        .and_then(|t| lopdf::decode_text_string(t).ok());
    let name = crate::pdf::qualified_name(parent, t).unwrap_or_default();
    let ft = d.get(b"FT").ok().and_then(|f| f.as_name().ok()).or(ft);
    let signature = ft == Some(b"Sig".as_slice());
    let has_value = d.get(b"V").is_ok_and(|v| !v.is_null());
    r.insert(
        id,
        Role::Field {
            name: name.clone(),
            signature,
            has_value,
        },
    );
    if signature {
        if let Ok(v) = d.get(b"V").and_then(Object::as_reference) {
            r.insert(v, Role::SignatureValue);
        }
    }
    // A field's appearance outranks the annotation role given from the page walk.
    let mut own = BTreeMap::new();
    appearance_roles(doc, d, Some(&name), signature, &mut own);
    r.extend(own);
    for kid in d
        .get(b"Kids")
        .map(|k| resolve_array(doc, k))
        .unwrap_or_default()
    {
        field_roles(doc, &kid, Some(&name), ft, depth + 1, visited, r);
    }
}

/// Marks the streams of `/AP` (normal, rollover, down; direct or per state) as appearances.
pub(super) fn appearance_roles(
    doc: &Document,
    d: &Dictionary,
    field: Option<&str>,
    signature: bool,
    r: &mut BTreeMap<ObjectId, Role>,
) {
    let Ok(ap) = d.get(b"AP").and_then(|ap| resolve_dict(doc, ap)) else {
        return;
    };
    for (_, v) in ap.iter() {
        let mut mark = |o: &Object| {
            if let Ok(id) = o.as_reference() {
                r.entry(id).or_insert(Role::Appearance {
                    field: field.map(str::to_owned),
                    signature,
                });
            }
        };
        mark(v);
        if let Ok(states) = resolve_dict(doc, v) {
            states.iter().for_each(|(_, s)| mark(s));
        }
    }
}
