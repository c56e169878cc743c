//! Real certificates of the Vietnamese PKIs (`../shared/trust/vn/`): every end-entity sample
//! must validate to its root at a pinned time, the SHA-1-signed first generation included.
//! The files are third-party and live outside the repository, so these tests are ignored by
//! a plain `cargo test` and run by `.ci/run`, which fails when the folder is missing.

use std::path::{Path, PathBuf};

use kyso::trust::{build_path, load_certificates, PathOptions, TrustStore};
use time::macros::datetime;

fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/trust/vn");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests need ../shared beside the repository",
        dir.display()
    );
    dir
}

/// Every sample is valid on 2025-06-01: after the latest notBefore among them and before the
/// earliest notAfter (2027-02-19, the G1 sample).
const PINNED: time::OffsetDateTime = datetime!(2025-06-01 00:00:00 UTC);

fn check(sample: &str, expected_root_cn: &str) {
    let dir = shared();
    let store = TrustStore::from_paths(&[dir.join("roots")], &[dir.join("intermediates")])
        .expect("trust loads");
    let leaf =
        &load_certificates(&dir.join("end-entity-samples").join(sample)).expect("sample loads")[0];
    let path = build_path(
        leaf,
        &[],
        &store,
        PathOptions {
            at: PINNED,
            require_signing_key_usage: false,
        },
    )
    .unwrap_or_else(|e| panic!("{sample}: expected a valid path, got {e}"));
    let root = path.certificates.last().expect("path has an anchor");
    assert_eq!(
        root.names.common_name.as_deref(),
        Some(expected_root_cn),
        "{sample}: path {:?}",
        path.certificates
            .iter()
            .map(|c| &c.names.subject)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        path.certificates.len(),
        3,
        "{sample}: root → sub-CA → end entity"
    );
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn first_generation_sha1_chain_validates() {
    check(
        "g1-end-entity-rsa2048.pem",
        "Co quan chung thuc so chuyen dung Chinh phu (RootCA)",
    );
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn second_generation_personal_rsa_validates() {
    check("g2-personal-rsa2048.pem", "RootCA chuyên dùng Chính phủ G2");
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn second_generation_personal_ecdsa_p384_validates() {
    check(
        "g2-personal-ecdsa-p384.pem",
        "RootCA chuyên dùng Chính phủ G2",
    );
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn every_sample_is_untrusted_without_the_roots() {
    let dir = shared();
    let store = TrustStore::from_paths(&[], &[dir.join("intermediates")]).expect("trust loads");
    for sample in [
        "g1-end-entity-rsa2048.pem",
        "g2-personal-rsa2048.pem",
        "g2-personal-ecdsa-p384.pem",
    ] {
        let leaf =
            &load_certificates(&dir.join("end-entity-samples").join(sample)).expect("loads")[0];
        let err = build_path(
            leaf,
            &[],
            &store,
            PathOptions {
                at: PINNED,
                require_signing_key_usage: false,
            },
        )
        .expect_err("no anchor configured");
        assert!(
            matches!(err, kyso::trust::ChainError::NoPathToAnchor { .. }),
            "{sample}: got {err}"
        );
    }
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn real_end_entities_have_signing_key_usage() {
    // The personal certificates carry digitalSignature + nonRepudiation and no document-
    // signing EKU; the signer check must accept them as they are.
    let dir = shared();
    let store = TrustStore::from_paths(&[dir.join("roots")], &[dir.join("intermediates")])
        .expect("trust loads");
    for sample in ["g2-personal-rsa2048.pem", "g2-personal-ecdsa-p384.pem"] {
        let leaf =
            &load_certificates(&dir.join("end-entity-samples").join(sample)).expect("loads")[0];
        build_path(
            leaf,
            &[],
            &store,
            PathOptions {
                at: PINNED,
                require_signing_key_usage: true,
            },
        )
        .unwrap_or_else(|e| panic!("{sample}: {e}"));
    }
}
