//! What a clerk reads: the Vietnamese text of every fixture holds no English and no raw
//! technical detail; times are Vietnamese; what could not be checked says so, in the
//! conclusion line too; a report never calls the same signature both changed and unchanged.

mod common;

use std::sync::Arc;

use common::{context, fixture, pki, root};
use kyso::report::{render_text, Lang};
use kyso::revocation::fetch::{Fetch, FetchError, Online};
use kyso::verify::RevocationMode;
use kyso::Report;

/// Words of the English details that must never reach the Vietnamese text.
const ENGLISH: &[&str] = &[
    " the ",
    "signature",
    "revocation",
    "certificate",
    " not ",
    "changed",
    "object ",
    "entries",
    "validated",
    "found",
    "error",
    "unknown",
    " is ",
    " was ",
    "fetch",
    "answer",
    "timestamp",
];

/// The Vietnamese text of `r`, without the names the file itself gives (field names).
fn vi_without_names(r: &Report) -> String {
    let mut t = render_text(r, "f.pdf", Lang::Vi);
    let mut names: Vec<String> = r
        .signatures
        .iter()
        .filter_map(|s| s.field.clone())
        .collect();
    names.extend(r.unsigned_fields.iter().map(|u| u.field.clone()));
    for n in names {
        t = t.replace(&n, "");
    }
    t
}

fn assert_vietnamese(name: &str, text: &str) {
    let lower = text.to_lowercase();
    for w in ENGLISH {
        assert!(
            !lower.contains(w),
            "{name}: the Vietnamese text has {w:?}:\n{text}"
        );
    }
}

#[test]
fn no_fixture_shows_english_in_the_vietnamese_text() {
    let dir = root().join("certs-test/pdf");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pdf"))
        .collect();
    names.sort();
    assert!(names.len() > 40, "{names:?}");
    let crl = |f: &str| {
        kyso::revocation::RevocationData::from_paths(&[root().join("certs-test/crl").join(f)])
            .expect("CRL loads")
    };
    for name in &names {
        for crls in [
            None,
            Some("party-ca-revoked-before.crl"),
            Some("party-ca-revoked-after.crl"),
        ] {
            let mut ctx = context();
            if let Some(c) = crls {
                ctx.crls = crl(c);
            }
            let r = kyso::verify(&fixture(name), &ctx, common::inputs()).expect("verifies");
            assert_vietnamese(name, &vi_without_names(&r));
        }
    }
}

#[test]
fn an_expiry_is_said_with_a_vietnamese_time() {
    let r = kyso::verify(&fixture("expired-signer.pdf"), &context(), common::inputs())
        .expect("verifies");
    let t = render_text(&r, "f.pdf", Lang::Vi);
    // notAfter 2022-01-01T00:00:00Z is 07:00 in Vietnam.
    assert!(
        t.contains("Chứng thư số đã hết hạn sử dụng")
            && t.contains("hết hạn lúc 07:00 ngày 01/01/2022"),
        "{t}"
    );
}

#[test]
fn a_revocation_after_the_proven_time_is_said() {
    let mut ctx = context();
    ctx.crls = kyso::revocation::RevocationData::from_paths(&[
        root().join("certs-test/crl/party-ca-revoked-after.crl")
    ])
    .expect("CRL loads");
    let r = kyso::verify(
        &fixture("revoked-signer-timestamped.pdf"),
        &ctx,
        common::inputs(),
    )
    .expect("verifies");
    let t = render_text(&r, "f.pdf", Lang::Vi);
    assert!(
        t.contains("đã bị thu hồi lúc 07:00 ngày 01/06/2024")
            && t.contains("sau thời điểm ký đã được dấu thời gian chứng thực")
            && t.contains("chữ ký vẫn hợp lệ"),
        "{t}"
    );
}

/// A fetcher whose every source is down.
struct Down;

impl Fetch for Down {
    fn get(&self, url: &str, _limit: usize) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::unreachable(url, "connection refused"))
    }

    fn post(
        &self,
        url: &str,
        _content_type: &str,
        _body: &[u8],
        _limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::unreachable(url, "connection refused"))
    }
}

#[test]
fn an_unreachable_revocation_server_is_said_in_words_and_in_the_conclusion() {
    let mut ctx = context();
    ctx.revocation = RevocationMode::SoftFail;
    ctx.online = Some(Arc::new(Online::new(Arc::new(Down), None)));
    let r = kyso::verify(&fixture("two-signatures.pdf"), &ctx, common::inputs()).expect("verifies");
    assert_eq!(r.verdict, kyso::Verdict::Valid);
    let t = render_text(&r, "f.pdf", Lang::Vi);
    assert!(
        t.contains("không kết nối được máy chủ thu hồi chứng thư"),
        "{t}"
    );
    assert!(t.contains("chưa kiểm tra được"), "{t}");
    assert!(
        t.contains("Kết luận: HỢP LỆ — các chữ ký hợp lệ, văn bản không bị thay đổi; tình trạng thu hồi của chứng thư số chưa kiểm tra được"),
        "{t}"
    );
    assert_vietnamese("two-signatures.pdf", &vi_without_names(&r));
    // With revocation data for every certificate, the caveat goes.
    let mut ctx = context();
    ctx.crls = kyso::revocation::RevocationData::from_paths(&[
        root().join("certs-test/crl/party-ca-good.crl"),
        root().join("certs-test/crl/root-ca-good.crl"),
    ])
    .expect("CRLs load");
    let inputs = kyso::Inputs {
        at: Some(time::macros::datetime!(2024-01-20 00:00:00 +07:00)),
        ..common::inputs()
    };
    let r = kyso::verify(&fixture("two-signatures.pdf"), &ctx, inputs).expect("verifies");
    let t = render_text(&r, "f.pdf", Lang::Vi);
    assert!(!t.contains("chưa kiểm tra được"), "{t}");
}

#[test]
fn a_changed_signature_is_never_also_called_unchanged() {
    for name in [
        "flipped-byte.pdf",
        "byterange-tail-uncovered.pdf",
        "signature-removed.pdf",
    ] {
        let r = kyso::verify(&fixture(name), &context(), common::inputs()).expect("verifies");
        for lang in [Lang::Vi, Lang::En] {
            let t = render_text(&r, name, lang);
            for block in t.split("\nChữ ký ").chain(t.split("\nSignature ")) {
                let changed = block.contains("Tài liệu đã bị thay đổi")
                    || block.contains("chữ ký sai định dạng")
                    || block.contains("the document was changed");
                let unchanged = block.contains("Nội dung đã ký không thay đổi")
                    || block.contains("signed content is unchanged");
                assert!(!(changed && unchanged), "{name}: {block}");
            }
        }
    }
}

#[test]
fn the_clients_own_line_is_vietnamese() {
    // `kyso client verify` against a server: its last line is its own, not the service's.
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = kyso::service::config::Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        http_listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.path().to_owned(),
        trust: vec![pki("root-ca.pem")],
        intermediates: vec![pki("party-ca.pem")],
        revocation: kyso::verify::RevocationMode::Offline,
        no_auth: true,
        ..Default::default()
    };
    let server = rt
        .block_on(kyso::service::start(config))
        .expect("server starts");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .current_dir(root())
        .args(["client", "verify", "--server"])
        .arg(format!("http://{}", server.addr))
        .arg("certs-test/pdf/vn-issued.pdf")
        .output()
        .expect("kyso runs");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Bản ghi nhật ký kiểm tra: "), "{text}");
    assert!(!text.contains("Audit record"), "{text}");
    rt.block_on(server.stop()).expect("stops");
}
