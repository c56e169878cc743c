//! PDF extraction and the signature scan: any bytes read as a PDF, every signature found.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pdf) = kyso::pdf::PdfFile::parse(data) {
        for s in &pdf.signatures {
            let _ = (&s.field, &s.byte_range_raw, s.revision);
        }
    }
});
