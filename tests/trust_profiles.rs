//! Trust profiles (`kyso trust …`, `kyso verify --trust-profile`): the real BCY and NEAC
//! certificates of `../shared/trust/vn/` are accepted only by their pinned fingerprints, and
//! a self-made look-alike of the G2 root is refused. Tests that read `../shared` are ignored
//! by a plain `cargo test` and run by `.ci/run`; the others use the test PKI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{pki, root};

fn shared() -> PathBuf {
    let dir = root().join("../shared/trust/vn");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests need ../shared beside the repository",
        dir.display()
    );
    dir
}

fn kyso(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kyso"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("kyso runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A self-signed certificate with exactly the subject of the G2 root, made here.
fn look_alike_of_g2_root(dir: &Path) -> PathBuf {
    use openssl::x509::{X509Builder, X509};
    let real = std::fs::read(shared().join("roots/bcy-g2-root.pem")).unwrap();
    let real = X509::from_pem(&real).unwrap();
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(real.subject_name()).unwrap();
    b.set_issuer_name(real.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(real.not_before()).unwrap();
    b.set_not_after(real.not_after()).unwrap();
    b.append_extension(
        openssl::x509::extension::BasicConstraints::new()
            .critical()
            .ca()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let path = dir.join("fake-rootcag2.pem");
    std::fs::write(&path, b.build().to_pem().unwrap()).unwrap();
    path
}

#[test]
#[ignore = "needs ../shared/trust/vn (run by .ci/run)"]
fn the_real_bcy_certificates_are_accepted_by_their_pins_and_a_look_alike_is_refused() {
    let vn = shared();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (code, out, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "bcy",
        "--trust-store",
        s(&store),
        s(&vn.join("roots/bcy-g1-root.pem")),
        s(&vn.join("roots/bcy-g2-root.pem")),
        s(&vn.join("intermediates/bcy-g1-chinh-phu.pem")),
        s(&vn.join("intermediates/bcy-g1-dang-cong-san.pem")),
        s(&vn.join("intermediates/bcy-g2-co-quan-nha-nuoc.pem")),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("F04BA4B459A7C9A1B971AD9B1CB833E695A80C79AEA63B174B66A70EDFE2FDB8"),
        "{out}"
    );

    // The look-alike: the G2 root's exact subject, another key.
    let fake = look_alike_of_g2_root(dir.path());
    let (code, _, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "bcy",
        "--trust-store",
        s(&store),
        s(&fake),
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("is not pinned for profile bcy; refused"),
        "{err}"
    );
    assert!(err.contains("RootCA chuyên dùng Chính phủ G2"), "{err}");
    let fake_sha = {
        let der = openssl::x509::X509::from_pem(&std::fs::read(&fake).unwrap())
            .unwrap()
            .to_der()
            .unwrap();
        hex::encode_upper(openssl::sha::sha256(&der))
    };
    assert!(
        err.contains(&fake_sha),
        "the refusal names the fingerprint it saw: {err}"
    );
    // A public CA is not the BCY's either, and nothing of a refused call is stored.
    let (code, _, _) = kyso(&[
        "trust",
        "add",
        "--profile",
        "bcy",
        "--trust-store",
        s(&store),
        s(&vn.join("roots/bcy-g1-root.pem")),
        s(&vn.join("intermediates/vnpt-ca-sha2.pem")),
    ]);
    assert_eq!(code, 64);

    let (code, out, _) = kyso(&[
        "trust",
        "list",
        "--profile",
        "bcy",
        "--trust-store",
        s(&store),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 5, "{list:#?}");
    let g2 = list
        .iter()
        .find(|e| {
            e["subject"]
                .as_str()
                .is_some_and(|s| s.contains("RootCA chuyên dùng Chính phủ G2"))
        })
        .expect("the G2 root is listed");
    assert_eq!(g2["kind"], "root");
    assert!(g2["not_after"].as_str().unwrap().starts_with("2048-"));
    assert!(g2["source"].as_str().unwrap().contains("bcy-g2-root.pem"));

    // Both generations' end entities chain to the profile; the look-alike does not.
    for sample in [
        "g1-end-entity-rsa2048.pem",
        "g2-personal-rsa2048.pem",
        "g2-personal-ecdsa-p384.pem",
    ] {
        let cert = vn.join("end-entity-samples").join(sample);
        let (code, out, err) = kyso(&[
            "trust",
            "check",
            "--profile",
            "bcy",
            "--trust-store",
            s(&store),
            "--at",
            "2025-06-01T00:00:00Z",
            s(&cert),
        ]);
        assert_eq!(code, 0, "{sample}: {out}{err}");
        assert!(out.starts_with("OK:"), "{out}");
    }
    let (code, out, _) = kyso(&[
        "trust",
        "check",
        "--profile",
        "bcy",
        "--trust-store",
        s(&store),
        s(&fake),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NOT TRUSTED") && out.contains("look-alike"),
        "{out}"
    );

    // A file dropped into the profile's folder by hand is refused when the profile loads.
    std::fs::copy(&fake, store.join("bcy").join("dropped.pem")).unwrap();
    let (code, _, err) = kyso(&["trust", "list", "--trust-store", s(&store)]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("dropped.pem") && err.contains("not pinned"),
        "{err}"
    );
    let (code, _, err) = kyso(&[
        "verify",
        "--trust-profile",
        "bcy",
        "--trust-store",
        s(&store),
        s(&root().join("certs-test/pdf/vn-issued.pdf")),
    ]);
    assert_eq!(code, 64, "{err}");
}

#[test]
#[ignore = "needs ../shared/trust/vn (run by .ci/run)"]
fn the_neac_profile_takes_the_national_roots_and_fetch_holds_a_mirror_to_the_pins() {
    let vn = shared();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fake = look_alike_of_g2_root(dir.path());
    // A loopback mirror that serves the real G2 certificates and a look-alike.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let files: Vec<(String, PathBuf)> = vec![
        ("/rootcag2.crt".into(), vn.join("roots/bcy-g2-root.pem")),
        (
            "/cpcag2.crt".into(),
            vn.join("intermediates/bcy-g2-co-quan-nha-nuoc.pem"),
        ),
        ("/fake.crt".into(), fake.clone()),
    ];
    let serving = files.clone();
    let handle = std::thread::spawn(move || {
        for _ in 0..serving.len() {
            let Ok(Some(rq)) = server.recv_timeout(std::time::Duration::from_secs(20)) else {
                return;
            };
            let body = serving
                .iter()
                .find(|(p, _)| p == rq.url())
                .map(|(_, f)| std::fs::read(f).unwrap())
                .unwrap_or_default();
            let _ = rq.respond(tiny_http::Response::from_data(body));
        }
    });
    let url = |p: &str| format!("http://{addr}{p}");
    let (code, out, err) = kyso(&[
        "trust",
        "fetch",
        "--profile",
        "bcy",
        "--trust-store",
        s(&store),
        "--url",
        &url("/rootcag2.crt"),
        "--url",
        &url("/cpcag2.crt"),
        "--url",
        &url("/fake.crt"),
    ]);
    handle.join().unwrap();
    assert_eq!(code, 64, "the look-alike refuses the fetch: {out}{err}");
    assert!(
        err.contains("fake.crt") && err.contains("not pinned"),
        "{err}"
    );
    assert!(!store
        .join("bcy")
        .join("F04BA4B459A7C9A1B971AD9B1CB833E695A80C79AEA63B174B66A70EDFE2FDB8.pem")
        .exists());

    let (code, out, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "neac",
        "--trust-store",
        s(&store),
        s(&vn.join("roots/neac-vietnam-national-root-ca.pem")),
        s(&vn.join("roots/mic-national-root-ca-sha1.pem")),
        s(&vn.join("intermediates/vnpt-ca-sha2.pem")),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "neac",
        "--trust-store",
        s(&store),
        s(&vn.join("roots/bcy-g2-root.pem")),
    ]);
    assert_eq!(code, 64, "a BCY root is not the national root: {err}");
    // Built-in profiles take no operator pins.
    let (code, _, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "neac",
        "--trust-store",
        s(&store),
        "--pin",
        "F04BA4B459A7C9A1B971AD9B1CB833E695A80C79AEA63B174B66A70EDFE2FDB8",
        s(&vn.join("roots/bcy-g2-root.pem")),
    ]);
    assert_eq!(code, 64, "{err}");
}

/// A profile of the operator's own, pinned with `--pin`, made of the test PKI.
fn test_profile(store: &Path) {
    let sha = |name: &str| {
        let der = openssl::x509::X509::from_pem(&std::fs::read(pki(name)).unwrap())
            .unwrap()
            .to_der()
            .unwrap();
        hex::encode(openssl::sha::sha256(&der))
    };
    let (code, out, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "test",
        "--trust-store",
        s(store),
        "--pin",
        &sha("root-ca.pem"),
        "--pin",
        &sha("party-ca.pem"),
        s(&pki("root-ca.pem")),
        s(&pki("party-ca.pem")),
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn an_operators_profile_is_pinned_by_the_operator_and_used_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Without a pin an operator's profile accepts nothing.
    let (code, _, err) = kyso(&[
        "trust",
        "add",
        "--profile",
        "test",
        "--trust-store",
        s(&store),
        s(&pki("root-ca.pem")),
    ]);
    assert_eq!(code, 64, "{err}");
    test_profile(&store);
    let (code, out, err) = kyso(&[
        "verify",
        "--trust-profile",
        "test",
        "--trust-store",
        s(&store),
        "--revocation",
        "offline",
        "certs-test/pdf/vn-issued.pdf",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("HỢP LỆ"), "{out}");
    // Without it, the same document is not trusted.
    let (code, _, _) = kyso(&[
        "verify",
        "--revocation",
        "offline",
        "certs-test/pdf/vn-issued.pdf",
    ]);
    assert_eq!(code, 2);
    let (code, _, err) = kyso(&[
        "verify",
        "--trust-profile",
        "nope",
        "--trust-store",
        s(&store),
        "certs-test/pdf/vn-issued.pdf",
    ]);
    assert_eq!(code, 64);
    assert!(err.contains("does not exist"), "{err}");
    // The untrusted signer's certificate does not chain to it, and says why.
    let (code, out, _) = kyso(&[
        "trust",
        "check",
        "--profile",
        "test",
        "--trust-store",
        s(&store),
        s(&pki("untrusted-signer.pem")),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("NOT TRUSTED"), "{out}");
}

/// The service side: each trust profile of the store can be chosen per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_verifies_under_a_profile_a_request_names() {
    use kyso::service::proto::verification_service_client::VerificationServiceClient;
    use kyso::service::proto::{self as pb};
    let dir = tempfile::tempdir().unwrap();
    test_profile(&dir.path().join("trust"));
    let config = kyso::service::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        revocation: kyso::verify::RevocationMode::Offline,
        no_auth: true,
        ..Default::default()
    };
    let server = kyso::service::start(config).await.unwrap();
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut v = VerificationServiceClient::new(ch);
    let request = |profile: &str, expect: pb::ExpectedProfile| pb::VerifyDocumentRequest {
        document: common::fixture("vn-attachment.pdf").into(),
        metadata: None,
        options: Some(pb::VerifyOptions {
            trust_profile: profile.into(),
            expect: expect as i32,
            ..Default::default()
        }),
    };
    let answer = v
        .verify_document(request("test", pb::ExpectedProfile::Attachment))
        .await
        .unwrap()
        .into_inner();
    let report = answer.report.unwrap();
    assert_eq!(report.verdict, pb::Verdict::Valid as i32);
    assert_eq!(report.signatures[0].role, pb::Role::Organisation as i32);
    let policy = report.policy.unwrap();
    assert_eq!(policy.profile, pb::Profile::Attachment as i32);
    assert!(policy.conforms);
    // The default trust (none here) does not trust the document.
    let report = v
        .verify_document(request("", pb::ExpectedProfile::Unspecified))
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    assert_eq!(report.verdict, pb::Verdict::Indeterminate as i32);
    let status = v
        .verify_document(request("bcy", pb::ExpectedProfile::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("unknown trust profile \"bcy\""),
        "{}",
        status.message()
    );
    assert!(status.message().contains("test"), "{}", status.message());
    server.stop().await.unwrap();
}
