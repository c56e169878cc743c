//! `kyso verify` as a clerk or a script runs it: real binary, real files, exit statuses.

mod common;

use std::process::{Command, Output};

use common::{pki, root};

fn kyso(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kyso"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("the kyso binary runs")
}

fn with_trust(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "verify".into(),
        "--trust".into(),
        pki("root-ca.pem").display().to_string(),
        "--intermediates".into(),
        pki("party-ca.pem").display().to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

fn run(args: &[String]) -> (i32, String, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kyso(&refs);
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn valid_document_text_in_vietnamese_exits_0() {
    let (code, out, err) = run(&with_trust(&["certs-test/pdf/two-signatures.pdf"]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for expected in [
        "Người ký: Trần Văn Huyến",
        "Người ký: Tỉnh ủy Hậu Giang",
        "Cơ quan: TỈNH ỦY HẬU GIANG",
        "10:50:25 ngày 29/12/2023",
        "Chữ ký hợp lệ",
        "Kết luận: HỢP LỆ",
        "Không kiểm tra tình trạng thu hồi của chứng thư số",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn english_text_and_indeterminate_exit_2() {
    let (code, out, _) = run(&with_trust(&[
        "--lang",
        "en",
        "certs-test/pdf/untrusted-root.pdf",
    ]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("Verdict: INDETERMINATE"), "{out}");
    assert!(out.contains("not trusted"), "{out}");
}

#[test]
fn invalid_exits_1_and_unsigned_exits_3() {
    let (code, out, _) = run(&with_trust(&["certs-test/pdf/flipped-byte.pdf"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("KHÔNG HỢP LỆ"), "{out}");
    assert!(out.contains("Tài liệu đã bị thay đổi"), "{out}");
    let (code, out, _) = run(&with_trust(&["certs-test/pdf/unsigned.pdf"]));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("KHÔNG CÓ CHỮ KÝ SỐ"), "{out}");
}

#[test]
fn json_prints_one_object_per_file_per_line() {
    let (code, out, err) = run(&with_trust(&[
        "--format",
        "json",
        "certs-test/pdf/two-signatures.pdf",
        "certs-test/pdf/unsigned.pdf",
    ]));
    assert_eq!(
        code, 3,
        "the most severe status of the two (UNSIGNED over VALID); stderr: {err}"
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["file"], "certs-test/pdf/two-signatures.pdf");
    assert_eq!(lines[0]["verdict"], "VALID");
    assert_eq!(lines[0]["signatures"].as_array().map(Vec::len), Some(2));
    assert_eq!(lines[1]["verdict"], "UNSIGNED");
}

#[test]
fn at_fixes_the_validation_time() {
    let (code, out, _) = run(&with_trust(&[
        "--format",
        "json",
        "--at",
        "2030-01-01T00:00:00+07:00",
        "certs-test/pdf/two-signatures.pdf",
    ]));
    assert_eq!(code, 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["signatures"][0]["validation_time"]["source"], "caller");
    assert_eq!(v["signatures"][0]["sub_indication"], "OUT_OF_BOUNDS_NO_POE");
}

#[test]
fn folders_work_for_trust_and_intermediates() {
    // The whole pki/ folder as intermediates (keys are skipped: not certificates by name).
    let args = vec![
        "verify".into(),
        "--trust".into(),
        pki("root-ca.pem").display().to_string(),
        "--intermediates".into(),
        root().join("certs-test/pki").display().to_string(),
        "certs-test/pdf/two-signatures.pdf".into(),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn unreadable_file_exits_4_with_the_reason() {
    let (code, _, err) = run(&with_trust(&["Cargo.toml"]));
    assert_eq!(code, 4);
    assert!(err.contains("not a PDF"), "{err}");
    let (code, _, err) = run(&with_trust(&["no-such-file.pdf"]));
    assert_eq!(code, 4);
    assert!(err.contains("cannot read the file"), "{err}");
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        vec!["verify"],
        vec!["verify", "--format", "xml", "a.pdf"],
        vec!["verify", "--at", "yesterday", "a.pdf"],
        vec!["verify", "--lang", "fr", "a.pdf"],
        vec!["frobnicate"],
    ] {
        let out = kyso(&args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.contains(&0x1b), "no colour codes in {args:?}");
    }
    let out = kyso(&[
        "verify",
        "--trust",
        "/no/such/root.pem",
        "certs-test/pdf/unsigned.pdf",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/root.pem"));
    assert_eq!(kyso(&["--help"]).status.code(), Some(0));
}

#[test]
fn extract_writes_the_signed_version_and_its_sha256() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("signed.pdf");
    let out = kyso(&[
        "extract",
        "--signature",
        "1",
        "certs-test/pdf/mod-content-overlay.pdf",
        "-o",
        target.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read(&target).expect("written");
    let original = common::fixture("mod-content-overlay.pdf");
    assert!(
        original.starts_with(&written) && written.len() < original.len(),
        "a prefix of the file"
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        printed.starts_with(&hex::encode(openssl::sha::sha256(&written))),
        "{printed}"
    );
    // The document as its signer saw it verifies, without the overlay.
    let r = kyso::verify(&written, &common::context(), common::inputs()).expect("verifies");
    assert_eq!(r.verdict, kyso::Verdict::Valid);
    // The library gives the same bytes.
    assert_eq!(
        kyso::signed_version(&original, 1).expect("extracts"),
        &written[..]
    );

    let out = kyso(&[
        "extract",
        "--signature",
        "3",
        "certs-test/pdf/two-signatures.pdf",
        "-o",
        target.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file has 2"));
}
