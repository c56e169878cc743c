//! Helpers shared by the integration tests: the test PKI of `certs-test/` and a pinned clock.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kyso::report::{CheckId, Outcome, SignatureReport};
use kyso::trust::TrustStore;
use kyso::{Context, Report};
use time::macros::datetime;

/// The verification "now" of every test: 2026-11-23, after all fixture dates. Signatures
/// are validated at their claimed signing time (2023-12-29), so this only matters when a
/// signature names no time.
pub const NOW: time::OffsetDateTime = datetime!(2026-11-23 09:00:00 +07:00);

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn pki(name: &str) -> PathBuf {
    root().join("certs-test/pki").join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = root().join("certs-test/pdf").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The demo trust: the test root as anchor, the Party sub-CA as intermediate.
pub fn context() -> Context {
    let trust = TrustStore::from_paths(&[pki("root-ca.pem")], &[pki("party-ca.pem")])
        .expect("test PKI loads");
    Context::new(trust)
}

/// A verification at [`NOW`], every signature at its own time.
pub fn inputs() -> kyso::Inputs {
    kyso::Inputs::at(NOW)
}

pub fn verify_fixture(name: &str) -> Report {
    kyso::verify(&fixture(name), &context(), inputs()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The outcome of check `id` of `sig`, with the whole check list in the panic message.
pub fn check(sig: &SignatureReport, id: CheckId) -> Outcome {
    let found: Vec<Outcome> = sig
        .checks
        .iter()
        .filter(|c| c.id == id)
        .map(|c| c.outcome)
        .collect();
    let first = *found
        .first()
        .unwrap_or_else(|| panic!("no {id:?} check in {:#?}", sig.checks));
    // A report that both passes and fails a check contradicts itself.
    assert!(
        !(found.contains(&Outcome::Passed) && found.contains(&Outcome::Failed)),
        "{id:?} is both passed and failed in {:#?}",
        sig.checks
    );
    first
}
