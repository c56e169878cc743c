//! The text a signature's visible appearance shows: what a reader sees written in the widget
//! (ISO 32000-1 §12.5.5, the normal appearance `/AP /N`), so that the policy can compare
//! the name it shows with the certificate's.
//!
//! It reads the appearance's content stream (§9.4 text operators `Tj`, `TJ`, `'`, `"`), the
//! forms it draws with `Do` (signing tools nest the text in `/FRM`, `/n2` and similar forms),
//! and decodes each string with its font's encoding as lopdf reads it (simple encodings,
//! `/Differences`, `/ToUnicode` CMaps of composite fonts). Positioning is not rendered: a
//! new line starts at each line-moving operator, which is how the signing tools lay out
//! their `Label: value` lines. The work is bounded ([`MAX_FORMS`], [`MAX_CONTENT`]).

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object};

/// Most forms followed from one appearance (nesting and siblings together): 16. Signing
/// tools nest two or three.
pub const MAX_FORMS: usize = 16;
/// Most decoded content bytes read from one appearance, all its forms together: 256 KiB. A
/// text layer is a few hundred bytes; an image is drawn by one `Do`, not inline.
pub const MAX_CONTENT: usize = 256 * 1024;
/// Most characters of text kept: 4,096.
const MAX_TEXT: usize = 4096;

/// The text of the normal appearance of `widget`, lines joined by `\n`; `None` when it has
/// no readable appearance or the appearance shows no text.
pub fn text(doc: &Document, widget: &Dictionary) -> Option<String> {
    let ap = resolve(doc, widget.get(b"AP").ok()?)?.as_dict().ok()?;
    let normal = resolve(doc, ap.get(b"N").ok()?)?;
    let mut walk = Walk {
        doc,
        forms: 0,
        content: 0,
        lines: vec![String::new()],
    };
    walk.form(normal, 0);
    let lines: Vec<&str> = walk
        .lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Whether `widget`'s normal appearance draws anything: a stream with content (an empty
/// form, or none, is what an unsigned field carries).
pub fn is_drawn(doc: &Document, widget: &Dictionary) -> bool {
    let normal = widget
        .get(b"AP")
        .ok()
        .and_then(|ap| resolve(doc, ap))
        .and_then(|ap| ap.as_dict().ok())
        .and_then(|ap| ap.get(b"N").ok())
        .and_then(|n| resolve(doc, n));
    match normal.map(Object::as_stream) {
        Some(Ok(s)) => s.content.iter().any(|b| !b.is_ascii_whitespace()),
        _ => false,
    }
}

struct Walk<'a> {
    doc: &'a Document,
    forms: usize,
    content: usize,
    lines: Vec<String>,
}

impl Walk<'_> {
    fn form(&mut self, object: &Object, depth: usize) {
        if depth > MAX_FORMS || self.forms >= MAX_FORMS {
            return;
        }
        self.forms += 1;
        let Ok(stream) = object.as_stream() else {
            return;
        };
        let Some((content, used)) = operations(stream, MAX_CONTENT - self.content) else {
            return;
        };
        self.content += used;
        let resources = stream
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|r| resolve(self.doc, r))
            .and_then(|r| r.as_dict().ok());
        let sub = |kind: &[u8]| {
            resources
                .and_then(|r| r.get(kind).ok())
                .and_then(|f| resolve(self.doc, f))
                .and_then(|f| f.as_dict().ok())
        };
        let (fonts, xobjects) = (sub(b"Font"), sub(b"XObject"));
        let mut encoding: Option<lopdf::Encoding<'_>> = None;
        for op in &content.operations {
            match op.operator.as_str() {
                "Tf" => {
                    encoding = op
                        .operands
                        .first()
                        .and_then(|n| n.as_name().ok())
                        .and_then(|n| fonts?.get(n).ok())
                        .and_then(|f| resolve(self.doc, f))
                        .and_then(|f| f.as_dict().ok())
                        .and_then(|f| f.get_font_encoding(self.doc).ok());
                }
                "Td" | "TD" | "T*" | "Tm" | "ET" => self.new_line(),
                "Tj" => self.show(op.operands.first(), encoding.as_ref()),
                "'" | "\"" => {
                    self.new_line();
                    self.show(op.operands.last(), encoding.as_ref());
                }
                "TJ" => {
                    let Some(Ok(parts)) = op.operands.first().map(Object::as_array) else {
                        continue;
                    };
                    for part in parts {
                        match part {
                            // A large negative adjustment is how TJ writes a space.
                            Object::Integer(n) if *n < -200 => self.push(" "),
                            Object::Real(n) if *n < -200.0 => self.push(" "),
                            _ => self.show(Some(part), encoding.as_ref()),
                        }
                    }
                }
                "Do" => {
                    let Some(form) = op
                        .operands
                        .first()
                        .and_then(|n| n.as_name().ok())
                        .and_then(|n| xobjects?.get(n).ok())
                        .and_then(|x| resolve(self.doc, x))
                    else {
                        continue;
                    };
                    let is_form = form
                        .as_stream()
                        .ok()
                        .and_then(|s| s.dict.get(b"Subtype").ok())
                        .and_then(|s| s.as_name().ok())
                        == Some(b"Form".as_slice());
                    if is_form {
                        self.new_line();
                        self.form(form, depth + 1);
                        self.new_line();
                    }
                }
                _ => {}
            }
        }
    }

    fn show(&mut self, operand: Option<&Object>, encoding: Option<&lopdf::Encoding<'_>>) {
        let Some(Object::String(bytes, _)) = operand else {
            return;
        };
        let text = match encoding {
            Some(e) => Document::decode_text(e, bytes).ok(),
            // No font selected: read it as a text string (PDFDocEncoding or UTF-16BE).
            None => lopdf::decode_text_string(&Object::string_literal(bytes.clone())).ok(),
        };
        if let Some(t) = text {
            self.push(&t);
        }
    }

    fn push(&mut self, s: &str) {
        let used: usize = self.lines.iter().map(|l| l.chars().count()).sum();
        if used >= MAX_TEXT {
            return;
        }
        let room = MAX_TEXT - used;
        if let Some(line) = self.lines.last_mut() {
            line.extend(s.chars().filter(|c| !c.is_control()).take(room));
        }
    }

    fn new_line(&mut self) {
        if self.lines.last().is_some_and(|l| !l.trim().is_empty()) {
            self.lines.push(String::new());
        }
    }
}

/// The operations of content stream `stream` and the decoded bytes they came from, when it
/// decodes within `limit` bytes (ISO 32000-1 §7.8.2).
pub fn operations(stream: &lopdf::Stream, limit: usize) -> Option<(Content, usize)> {
    let data = if stream.dict.has(b"Filter") {
        stream.decompressed_content_with_limit(limit).ok()?
    } else if stream.content.len() <= limit {
        stream.content.clone()
    } else {
        return None;
    };
    let content = Content::decode(&data).ok()?;
    Some((content, data.len()))
}

fn resolve<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    doc.dereference(object).ok().map(|(_, o)| o)
}
