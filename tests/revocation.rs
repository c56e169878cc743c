//! Revocation from CRLs (`certs-test/crl/`), decided against the proven signing time.

mod common;

use common::{check, context, fixture, root};
use kyso::report::{CheckId, Indication, Outcome, SubIndication};
use kyso::revocation::{RevocationData, Source};
use kyso::verify::RevocationMode;
use kyso::{Report, Verdict};

fn crl(name: &str) -> std::path::PathBuf {
    root().join("certs-test/crl").join(name)
}

fn verify_with(file: &str, crls: &[&str], mode: RevocationMode) -> Report {
    let mut ctx = context();
    ctx.crls = RevocationData::from_paths(&crls.iter().map(|c| crl(c)).collect::<Vec<_>>())
        .expect("CRLs load");
    ctx.revocation = mode;
    kyso::verify(&fixture(file), &ctx, common::inputs()).expect("verifies")
}

#[test]
fn revoked_after_a_timestamped_signing_stays_valid_and_is_reported() {
    let r = verify_with(
        "revoked-signer-timestamped.pdf",
        &["party-ca-revoked-after.crl"],
        RevocationMode::Offline,
    );
    assert_eq!(r.verdict, Verdict::Valid);
    let s = &r.signatures[0];
    assert_eq!(s.revocation[0].status, "revoked");
    assert!(s.checks.iter().any(|c| c.id == CheckId::Revocation
        && c.outcome == Outcome::Info
        && c.detail.contains("stays valid")));
}

#[test]
fn revoked_before_the_proven_signing_time_fails() {
    let r = verify_with(
        "revoked-signer-timestamped.pdf",
        &["party-ca-revoked-before.crl"],
        RevocationMode::Offline,
    );
    assert_eq!(r.verdict, Verdict::Invalid);
    let s = &r.signatures[0];
    assert_eq!(
        (s.indication, s.sub_indication),
        (Indication::Failed, Some(SubIndication::Revoked))
    );
}

#[test]
fn revoked_without_proof_of_time_is_indeterminate() {
    let r = verify_with(
        "revoked-signer.pdf",
        &["party-ca-revoked-after.crl"],
        RevocationMode::Offline,
    );
    assert_eq!(r.verdict, Verdict::Indeterminate);
    assert_eq!(
        r.signatures[0].sub_indication,
        Some(SubIndication::RevokedNoPoe)
    );
}

#[test]
fn the_whole_chain_is_checked_and_the_deciding_crl_recorded() {
    let r = verify_with(
        "two-signatures.pdf",
        &["party-ca-good.crl", "root-ca-good.crl"],
        RevocationMode::Require,
    );
    assert_eq!(r.verdict, Verdict::Valid, "{:#?}", r.signatures[0].checks);
    for s in &r.signatures {
        assert_eq!(s.revocation.len(), 2, "signer and sub-CA, not the anchor");
        for entry in &s.revocation {
            assert_eq!(entry.status, "good");
            let e = entry.evidence.as_ref().expect("evidence");
            assert!(matches!(&e.source, Source::File(p) if p.ends_with(".crl")));
            assert_eq!(e.sha256.len(), 64);
        }
        assert_eq!(check(s, CheckId::Revocation), Outcome::Passed);
    }
}

#[test]
fn a_stale_crl_or_one_signed_by_the_wrong_key_decides_nothing() {
    for (file, why) in [
        ("party-ca-stale.crl", "stale"),
        ("party-ca-wrong-key.crl", "does not verify"),
    ] {
        let r = verify_with("cades-rsa-pss.pdf", &[file], RevocationMode::Offline);
        assert_eq!(
            r.verdict,
            Verdict::Valid,
            "offline mode: not checked is a warning"
        );
        let s = &r.signatures[0];
        assert_eq!(s.revocation[0].status, "unknown");
        assert!(
            s.checks.iter().any(|c| c.id == CheckId::Revocation
                && c.outcome == Outcome::Warning
                && c.detail.contains(why)),
            "{file}: {:#?}",
            s.checks
        );
        let r = verify_with("cades-rsa-pss.pdf", &[file], RevocationMode::Require);
        assert_eq!(r.verdict, Verdict::Indeterminate);
        assert_eq!(
            r.signatures[0].sub_indication,
            Some(SubIndication::TryLater)
        );
    }
}

#[test]
fn crls_inside_the_signature_and_the_dss_are_used() {
    for (file, source) in [
        ("revoked-signer-crl-in-signature.pdf", Source::Signature),
        ("revoked-signer-crl-in-dss.pdf", Source::Dss),
    ] {
        let r = verify_with(file, &[], RevocationMode::Offline);
        let entry = &r.signatures[0].revocation[0];
        assert_eq!(entry.status, "revoked", "{file}");
        assert_eq!(
            entry.evidence.as_ref().map(|e| &e.source),
            Some(&source),
            "{file}"
        );
        assert_eq!(
            r.verdict,
            Verdict::Valid,
            "{file}: revoked after the timestamped signing"
        );
    }
}

#[test]
fn cli_takes_crl_folders_and_the_mode() {
    // Every certificate is decided by the CRLs given, so no mode needs the network.
    for mode in ["offline", "soft-fail", "hard-fail", "require"] {
        let cache = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
            .current_dir(root())
            .args([
                "verify",
                "--trust",
                "certs-test/pki/root-ca.pem",
                "--intermediates",
                "certs-test/pki/party-ca.pem",
                "--crl",
                "certs-test/crl/party-ca-revoked-before.crl",
                "--crl",
                "certs-test/crl/root-ca-good.crl",
                "--fetch-timeout",
                "1",
                "--cache-dir",
            ])
            .arg(cache.path())
            .args([
                "--revocation",
                mode,
                "certs-test/pdf/revoked-signer-timestamped.pdf",
            ])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("chứng thư số đã bị thu hồi"));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .current_dir(root())
        .args([
            "verify",
            "--crl",
            "Cargo.toml",
            "certs-test/pdf/unsigned.pdf",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a CRL"));
}
