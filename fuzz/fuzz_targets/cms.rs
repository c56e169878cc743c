//! CMS parsing and verification: the input as the `/Contents` of a signed fixture, verified
//! end to end (the CMS module is internal to the library; this reaches it as files do).
#![no_main]
use libfuzzer_sys::fuzz_target;

const TEMPLATE: &[u8] = include_bytes!("../../certs-test/pdf/pkcs7-rsa-sha512.pdf");

fuzz_target!(|data: &[u8]| {
    let Some(lt) = find(TEMPLATE, b"/Contents <").map(|i| i + 11) else {
        return;
    };
    let Some(gt) = find(&TEMPLATE[lt..], b">").map(|i| lt + i) else {
        return;
    };
    if data.len() * 2 > gt - lt {
        return;
    }
    let mut pdf = TEMPLATE.to_vec();
    let hex: Vec<u8> = data
        .iter()
        .flat_map(|b| {
            [
                b"0123456789ABCDEF"[usize::from(b >> 4)],
                b"0123456789ABCDEF"[usize::from(b & 15)],
            ]
        })
        .collect();
    pdf[lt..lt + hex.len()].copy_from_slice(&hex);
    pdf[lt + hex.len()..gt].fill(b'0');
    let ctx = kyso::Context::new(kyso::TrustStore::default());
    let _ = kyso::verify(
        &pdf,
        &ctx,
        kyso::Inputs::at(time::OffsetDateTime::UNIX_EPOCH),
    );
});

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
