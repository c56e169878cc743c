//! Hostile and broken input: each gets a clear error or a FAILED signature, never a panic,
//! a hang, or unbounded memory.

mod common;

use common::{context, fixture};
use kyso::pdf::PdfError;
use kyso::report::SubIndication;
use kyso::{Verdict, VerifyError};

fn verify(bytes: &[u8]) -> Result<kyso::Report, VerifyError> {
    kyso::verify(bytes, &context(), common::inputs())
}

#[test]
fn not_a_pdf_and_empty_input_are_named() {
    assert!(matches!(
        verify(b""),
        Err(VerifyError::Pdf(PdfError::Empty))
    ));
    let e = verify(b"<html>not a pdf</html>").expect_err("not a PDF");
    assert_eq!(
        e.to_string(),
        "not a PDF: no %PDF- header in the first 1024 bytes"
    );
    let e = verify(b"%PDF-1.7\nthis is all there is\n").expect_err("no structure");
    assert!(
        matches!(e, VerifyError::Pdf(PdfError::Malformed(_))),
        "{e:?}"
    );
    assert_eq!(
        kyso::error_chain(&e),
        "the PDF structure cannot be read: failed parsing cross reference table: invalid start value"
    );
}

#[test]
fn truncation_anywhere_never_panics() {
    let full = fixture("two-signatures.pdf");
    let revision_ends: Vec<usize> = kyso::pdf::PdfFile::parse(&full)
        .expect("parses")
        .revisions
        .iter()
        .map(|r| r.end)
        .collect();
    // 200 cut points spread over the file, the bytes around each revision end one by one.
    let step = full.len() / 200;
    let around_ends = revision_ends.iter().flat_map(|&e| e.saturating_sub(8)..e);
    let cuts = (1..200).map(|i| i * step).chain(around_ends);
    for cut in cuts {
        match verify(&full[..cut]) {
            // Cut at a revision's %%EOF (with or without its end-of-line), the file is the
            // earlier, complete version, which is validly signed.
            Ok(r) if r.verdict == Verdict::Valid => {
                let at_an_end = revision_ends
                    .iter()
                    .any(|&e| cut <= e && full[cut..e].iter().all(|b| matches!(b, b'\r' | b'\n')));
                assert!(
                    at_an_end,
                    "cut at {cut} of {} must not stay VALID",
                    full.len()
                );
            }
            Ok(_) => {}
            // Cut before the last revision's trailer, nothing leads to the catalog.
            Err(e) => assert!(
                matches!(e, VerifyError::Pdf(PdfError::NoCatalog)),
                "cut at {cut}: {e:?}"
            ),
        }
    }
}

#[test]
fn damaged_cross_reference_table_is_survived() {
    let mut bytes = fixture("two-signatures.pdf");
    // Overwrite every xref offset digit run with nines: the table points nowhere.
    let text = bytes.clone();
    let mut i = 0;
    while let Some(p) = text[i..].windows(6).position(|w| w == b" 00000") {
        let at = i + p;
        if at >= 10 && text[at - 10..at].iter().all(u8::is_ascii_digit) {
            bytes[at - 10..at].copy_from_slice(b"9999999999");
        }
        i = at + 6;
    }
    // lopdf recovers the objects by scanning; the signatures, whose bytes changed, fail as
    // malformed: their ranges no longer end where a revision does.
    let r = verify(&bytes).expect("a report");
    assert_eq!(r.verdict, Verdict::Invalid);
    for s in &r.signatures {
        assert_eq!(
            s.sub_indication,
            Some(SubIndication::FormatFailure),
            "{s:?}"
        );
    }
}

#[test]
fn absurd_lengths_and_numbers() {
    let base = fixture("unsigned.pdf");
    let text = String::from_utf8_lossy(&base).into_owned();
    let absurd = text.replacen("/Length ", "/Length 99999999999999999999 /Ignored ", 1);
    // The absurd length is ignored for the stream's real end: the file reads as unsigned.
    let r = verify(absurd.as_bytes()).expect("a report");
    assert_eq!(r.verdict, Verdict::Unsigned);

    let mut signed = fixture("pkcs7-rsa-sha512.pdf");
    let at = common_find(&signed, b"/ByteRange [").expect("ByteRange") + 12;
    signed[at..at + 34].copy_from_slice(b"0 0000000100 9999999999 9999999999");
    let r = verify(&signed).expect("a report");
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::FormatFailure)
    );
    let detail = &r.signatures[0].checks[0].detail;
    assert!(detail.contains("past the end of the file"), "{detail}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let mut pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Deep ".to_vec();
    pdf.extend(std::iter::repeat_n(b'[', 100_000));
    pdf.extend(std::iter::repeat_n(b']', 100_000));
    pdf.extend_from_slice(b" >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    // The catalog is refused for its depth, so the file has no catalog to read.
    let e = verify(&pdf).expect_err("no readable catalog");
    assert!(matches!(e, VerifyError::Pdf(PdfError::NoCatalog)), "{e:?}");
}

#[test]
fn field_tree_cycles_and_depth_are_bounded() {
    // An AcroForm whose field 3 lists itself and field 4 as kids, and 4 lists 3.
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [3 0 R] >> >>",
        "<< /Type /Pages /Kids [] /Count 0 >>",
        "<< /T (a) /FT /Sig /Kids [3 0 R 4 0 R] >>",
        "<< /T (b) /Kids [3 0 R] >>",
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    let r = verify(&pdf).expect("a report");
    assert_eq!(r.verdict, Verdict::Unsigned);
}

#[test]
fn corrupted_cms_bytes_never_panic() {
    let original = fixture("two-signatures.pdf");
    let lt = common_find(&original, b"/Contents <").expect("contents") + 11;
    // Deterministic pseudo-random damage (an LCG) to the hex of the first signature's CMS.
    let mut x: u32 = 7;
    for round in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..(1 + round % 4) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let at = lt + (x as usize >> 8) % 3000;
            bytes[at] = b"0123456789ABCDEF"[(x >> 4) as usize % 16];
        }
        let r = verify(&bytes).expect("the PDF itself is intact");
        assert_eq!(r.signatures.len(), 2);
    }
}

fn common_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The organisation's signature dictionary of `two-signatures.pdf` damaged by `damage`
/// (given the file and the offset of the dictionary's `N 0 obj` header).
fn damaged_seal(damage: impl Fn(&mut Vec<u8>, usize)) -> kyso::Report {
    let mut bytes = fixture("two-signatures.pdf");
    let last_range = bytes
        .windows(10)
        .rposition(|w| w == b"/ByteRange")
        .expect("the seal's /ByteRange");
    let header = bytes[..last_range]
        .windows(6)
        .rposition(|w| w == b" 0 obj")
        .expect("its object header");
    let line = bytes[..header]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    damage(&mut bytes, line);
    verify(&bytes).expect("still a report")
}

/// A change made to the file at the offset of the seal's object header.
type Damage = dyn Fn(&mut Vec<u8>, usize);

#[test]
fn a_damaged_signature_never_vanishes() {
    let cases: [(&str, Box<Damage>); 4] = [
        // One byte of the object header: `8 0 obj` becomes `8 0 obx`.
        (
            "header",
            Box::new(|b: &mut Vec<u8>, at: usize| {
                let o = at + common_find(&b[at..], b" obj").expect("obj") + 3;
                b[o] = b'x';
            }),
        ),
        // A non-hex digit inside /Contents.
        (
            "contents",
            Box::new(|b: &mut Vec<u8>, at: usize| {
                let c = at + common_find(&b[at..], b"/Contents <").expect("contents") + 20;
                b[c] = b'G';
            }),
        ),
        // The /Contents key itself: `/Contents` becomes `/$ontents`, the dictionary still
        // parses but holds no signature value.
        (
            "contents key",
            Box::new(|b: &mut Vec<u8>, at: usize| {
                let c = at + common_find(&b[at..], b"/Contents <").expect("contents") + 1;
                b[c] = b'$';
            }),
        ),
        // A broken /Type: the name turned into an unterminated string.
        (
            "type",
            Box::new(|b: &mut Vec<u8>, at: usize| {
                let t = at + common_find(&b[at..], b"/Type /Sig").expect("type") + 6;
                b[t] = b'(';
            }),
        ),
    ];
    for (what, damage) in cases {
        let r = damaged_seal(damage);
        assert_eq!(r.verdict, Verdict::Invalid, "{what}: {:#?}", r.reasons);
        assert_eq!(r.signatures.len(), 2, "{what}: the seal is still counted");
        assert!(
            r.unsigned_fields.is_empty(),
            "{what}: not an unsigned field: {:?}",
            r.unsigned_fields
        );
        let seal = &r.signatures[1];
        assert_eq!(seal.field.as_deref(), Some("Signature2"), "{what}");
        assert_eq!(
            seal.sub_indication,
            Some(SubIndication::FormatFailure),
            "{what}"
        );
        let c = &seal.checks[0];
        assert_eq!(c.id, kyso::report::CheckId::SignatureDictionary, "{what}");
        assert!(c.detail.contains("cannot be read"), "{what}: {}", c.detail);
    }
}

#[test]
fn a_damaged_signature_no_field_names_is_found_by_its_byte_range() {
    // The seal's field no longer names it (`/V 8 0 R` → `/V null `) and its dictionary does
    // not parse: only its /ByteRange in the file is left to find it by.
    let r = damaged_seal(|b, at| {
        let o = at + common_find(&b[at..], b" obj").expect("obj") + 3;
        b[o] = b'x';
        let v = common_find(b, b"/V 8 0 R").expect("the seal's field");
        b[v..v + 8].copy_from_slice(b"/V null ");
    });
    assert_eq!(r.verdict, Verdict::Invalid, "{:#?}", r.reasons);
    let found = r
        .signatures
        .iter()
        .find(|s| {
            s.checks
                .first()
                .is_some_and(|c| c.id == kyso::report::CheckId::SignatureDictionary)
        })
        .unwrap_or_else(|| panic!("the damaged seal is reported: {:#?}", r.signatures));
    assert_eq!(found.revision, 3);
    assert!(
        found.checks[0].detail.contains("it has a /ByteRange"),
        "{}",
        found.checks[0].detail
    );
}

#[test]
fn object_stream_bombs_have_one_budget_for_the_file() {
    use std::io::Write;
    // 300 object streams that each inflate to 1 MiB of zeros from about 1 KiB.
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&vec![0u8; 1 << 20]).expect("compresses");
    let bomb = zlib.finish().expect("compresses");
    let mut pdf = b"%PDF-1.7\n".to_vec();
    for n in 1..=300 {
        pdf.extend_from_slice(
            format!(
                "{n} 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {} >>\nstream\n",
                bomb.len()
            )
            .as_bytes(),
        );
        pdf.extend_from_slice(&bomb);
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
    }
    pdf.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    assert!(pdf.len() < 400_000, "{} bytes", pdf.len());
    let e = verify(&pdf).expect_err("over the budget");
    assert!(
        matches!(e, VerifyError::Pdf(PdfError::ObjectStreamsTooLarge { limit }) if limit == kyso::pdf::MAX_OBJECT_STREAMS_DECOMPRESSED),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the object streams decompress to more than 268435456 bytes in all (MAX_OBJECT_STREAMS_DECOMPRESSED)"
    );
    // Twenty of them are within it.
    let cut = pdf
        .windows(7)
        .position(|w| w == b"21 0 ob")
        .expect("object 21");
    let mut fewer = pdf[..cut].to_vec();
    fewer.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    assert!(!matches!(
        verify(&fewer),
        Err(VerifyError::Pdf(PdfError::ObjectStreamsTooLarge { .. }))
    ));
}
