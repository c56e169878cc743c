//! Certificate parsing and path building: the input split into certificates, the first the
//! leaf, the last the anchor.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let certs: Vec<kyso::trust::Certificate> = data
        .split(|b| *b == 0xff)
        .filter_map(|d| kyso::trust::Certificate::from_der(d).ok())
        .collect();
    let (Some(leaf), Some(anchor)) = (certs.first(), certs.last()) else {
        return;
    };
    let store = kyso::TrustStore::new(vec![anchor.clone()], certs[1..].to_vec());
    let options = kyso::trust::PathOptions {
        at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        purpose: kyso::trust::Purpose::DocumentSigning,
    };
    let _ = kyso::trust::build_path(leaf, &certs, &store, options);
});
