//! lopdf objects compared, found by number and walked for their references.

use lopdf::xref::XrefEntry;
use lopdf::{Dictionary, Document, Object, ObjectId};

/// Deepest object nesting followed when collecting references: 64. lopdf's parser refuses
/// nesting beyond 100 already; the walk here stays below it and never recurses further.
pub const MAX_REFERENCE_DEPTH: usize = 64;

/// Whether two cross-reference entries put the object at the same place.
pub(super) fn same_position(
    old_table: &lopdf::xref::Xref,
    new_table: &lopdf::xref::Xref,
    old: &XrefEntry,
    new: Option<&XrefEntry>,
) -> bool {
    match (old, new) {
        (
            XrefEntry::Normal {
                offset: a,
                generation: g,
            },
            Some(XrefEntry::Normal {
                offset: b,
                generation: h,
            }),
        ) => a == b && g == h,
        (
            XrefEntry::Compressed {
                container: a,
                index: i,
            },
            Some(XrefEntry::Compressed {
                container: b,
                index: j,
            }),
        ) => {
            // Same slot of the same object stream, and the stream itself did not move.
            a == b
                && i == j
                && {
                    let (oa, ob) = (old_table.get(*a), new_table.get(*b));
                    matches!((oa, ob), (Some(XrefEntry::Normal { offset: x, .. }), Some(XrefEntry::Normal { offset: y, .. })) if x == y)
                }
        }
        _ => false,
    }
}

/// The object with number `num` in `doc`, whatever its generation. `objects` is ordered by
/// (number, generation), so this is a range lookup, not a scan.
pub(super) fn object_by_number(doc: &Document, num: u32) -> Option<(ObjectId, &Object)> {
    doc.objects
        .range((num, 0)..=(num, u16::MAX))
        .next()
        .map(|(id, o)| (*id, o))
}

/// Equality of two objects as a reader sees them: a string written as hex or as a literal is
/// the same string (writers re-encode strings on every save), dictionaries compare as maps,
/// streams by dictionary and raw content.
pub(super) fn objects_equal(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::String(x, _), Object::String(y, _)) => x == y,
        (Object::Array(x), Object::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| objects_equal(p, q))
        }
        (Object::Dictionary(x), Object::Dictionary(y)) => dicts_equal(x, y),
        (Object::Stream(x), Object::Stream(y)) => {
            dicts_equal(&x.dict, &y.dict) && x.content == y.content
        }
        (Object::Integer(x), Object::Real(y)) | (Object::Real(y), Object::Integer(x)) => {
            (*x as f32) == *y
        }
        _ => a == b,
    }
}

pub(super) fn dicts_equal(a: &Dictionary, b: &Dictionary) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_ok_and(|w| entries_equal(k, v, w)))
}

/// Two values of key `key`. A signature value (`/Contents`) is compared without its zero
/// padding, which lopdf may have been given blanked out ([`crate::pdf::signature_value`]).
pub(super) fn entries_equal(key: &[u8], a: &Object, b: &Object) -> bool {
    match (key, a, b) {
        (b"Contents", Object::String(x, _), Object::String(y, _)) => {
            crate::pdf::signature_value(x) == crate::pdf::signature_value(y)
        }
        _ => objects_equal(a, b),
    }
}

/// Calls `f` for every reference inside `o`, to [`MAX_REFERENCE_DEPTH`].
pub(super) fn collect_refs(o: &Object, depth: usize, f: &mut impl FnMut(ObjectId)) {
    if depth > MAX_REFERENCE_DEPTH {
        return;
    }
    match o {
        Object::Reference(id) => f(*id),
        Object::Array(a) => a.iter().for_each(|x| collect_refs(x, depth + 1, f)),
        Object::Dictionary(d) => d.iter().for_each(|(_, x)| collect_refs(x, depth + 1, f)),
        Object::Stream(s) => s
            .dict
            .iter()
            .for_each(|(_, x)| collect_refs(x, depth + 1, f)),
        _ => {}
    }
}

pub(super) fn resolve_dict<'a>(doc: &'a Document, o: &'a Object) -> lopdf::Result<&'a Dictionary> {
    doc.dereference(o)?.1.as_dict()
}

pub(super) fn resolve_array(doc: &Document, o: &Object) -> Vec<Object> {
    doc.dereference(o)
        .ok()
        .and_then(|(_, a)| a.as_array().ok().cloned())
        .unwrap_or_default()
}
