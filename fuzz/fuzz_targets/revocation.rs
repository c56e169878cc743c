//! CRL and OCSP response parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kyso::revocation::Crl::from_der(data, kyso::revocation::Source::Signature);
    let _ = kyso::revocation::OcspResponse::from_der(data, kyso::revocation::Source::Signature);
});
