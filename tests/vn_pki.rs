//! Real certificates of the Vietnamese PKIs (`../shared/trust/vn/`): every end-entity sample
//! must validate to its root at a pinned time, the SHA-1-signed first generation included.
//! The files are third-party and live outside the repository, so these tests are ignored by
//! a plain `cargo test` and run by `.ci/run`, which fails when the folder is missing.

use std::path::{Path, PathBuf};

use kyso::trust::{
    build_path, load_certificates, ChainError, PathOptions, Purpose, TrustStore, ValidPath,
};
use time::macros::datetime;

const SAMPLES: [&str; 3] = [
    "g1-end-entity-rsa2048.pem",
    "g2-personal-rsa2048.pem",
    "g2-personal-ecdsa-p384.pem",
];

/// Every sample is valid on 2025-06-01: after the latest notBefore among them and before the
/// earliest notAfter (2027-02-19, the G1 sample).
const PINNED: time::OffsetDateTime = datetime!(2025-06-01 00:00:00 UTC);

fn shared() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/trust/vn");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests need ../shared beside the repository",
        dir.display()
    );
    dir
}

/// Builds the path of `sample` with the shared intermediates, and the roots when `with_roots`.
fn path_of(sample: &str, with_roots: bool, purpose: Purpose) -> Result<ValidPath, ChainError> {
    let dir = shared();
    let roots = if with_roots {
        vec![dir.join("roots")]
    } else {
        vec![]
    };
    let store = TrustStore::from_paths(&roots, &[dir.join("intermediates")]).expect("trust loads");
    let leaf =
        &load_certificates(&dir.join("end-entity-samples").join(sample)).expect("sample loads")[0];
    build_path(
        leaf,
        &[],
        &store,
        PathOptions {
            at: PINNED,
            purpose,
        },
    )
}

fn check(sample: &str, expected_root_cn: &str) {
    let path = path_of(sample, true, Purpose::Any)
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
        SAMPLES[0],
        "Co quan chung thuc so chuyen dung Chinh phu (RootCA)",
    );
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn second_generation_personal_rsa_validates() {
    check(SAMPLES[1], "RootCA chuyên dùng Chính phủ G2");
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn second_generation_personal_ecdsa_p384_validates() {
    check(SAMPLES[2], "RootCA chuyên dùng Chính phủ G2");
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn every_sample_is_untrusted_without_the_roots() {
    for sample in SAMPLES {
        let err = path_of(sample, false, Purpose::Any).expect_err("no anchor configured");
        assert!(
            matches!(err, ChainError::NoPathToAnchor { .. }),
            "{sample}: got {err}"
        );
    }
}

#[test]
#[ignore = "needs ../shared/trust/vn (third-party certificates); .ci/run runs it"]
fn real_personal_certificates_pass_the_signer_key_usage_check() {
    // digitalSignature + nonRepudiation and no document-signing EKU: accepted as they are.
    for sample in &SAMPLES[1..] {
        path_of(sample, true, Purpose::DocumentSigning).unwrap_or_else(|e| panic!("{sample}: {e}"));
    }
}
