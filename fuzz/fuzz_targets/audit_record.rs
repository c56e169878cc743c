//! Audit record decoding: the JSON columns a stored record is read from, and its canonical
//! encoding once decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signatures = serde_json::from_slice::<Vec<kyso::audit::SignatureSummary>>(data);
    let policy = serde_json::from_slice::<kyso::audit::PolicySummary>(data).ok();
    let extra = serde_json::from_slice(data).unwrap_or_default();
    if let Ok(signatures) = signatures {
        let entry = kyso::audit::Entry {
            time: time::OffsetDateTime::UNIX_EPOCH,
            principal: String::new(),
            peer: String::new(),
            method: String::new(),
            document_sha256: None,
            document_size: None,
            metadata: kyso::audit::Metadata {
                extra,
                ..Default::default()
            },
            signatures,
            verdict: String::new(),
            error: None,
            kyso_version: String::new(),
            trust_fingerprint: String::new(),
            policy,
        };
        let _ = kyso::audit::Record::canonical(1, &[0; 32], &entry);
    }
});
