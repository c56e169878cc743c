//! The `/ByteRange` and `/Contents` checks of every signature dictionary found.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pdf) = kyso::pdf::PdfFile::parse(data) {
        for s in &pdf.signatures {
            if let Ok(range) = s.check_byte_range(data) {
                let _ = s.gap_in_own_object(&range);
                let _ = range.slices(data);
            }
        }
        for n in 1..=pdf.signatures.len() {
            let _ = kyso::signed_version(data, n);
        }
    }
});
