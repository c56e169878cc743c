//! The change analysis over two revisions: the input appended to a signed fixture as an
//! incremental update, and the document verified (which compares the signed revision with
//! the final one).
#![no_main]
use libfuzzer_sys::fuzz_target;

const SIGNED: &[u8] = include_bytes!("../../certs-test/pdf/two-signatures.pdf");

fuzz_target!(|data: &[u8]| {
    let mut pdf = SIGNED.to_vec();
    pdf.extend_from_slice(data);
    let ctx = kyso::Context::new(kyso::TrustStore::default());
    let _ = kyso::verify(
        &pdf,
        &ctx,
        kyso::Inputs::at(time::OffsetDateTime::UNIX_EPOCH),
    );
});
