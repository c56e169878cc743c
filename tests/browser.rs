//! The clerk's and the auditor's pages in a real browser: Debian's Chromium, headless,
//! driven through chromedriver (WebDriver, with fantoccini) against a real kyso service.
//! They need `chromium` and `chromium-driver`; `.ci/run` installs them and runs these tests.
//! Screenshots go to `target/browser/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use kyso::service::config::{Config, Role, TokenEntry};

const VERIFIER: &str = "clerk-token";
const AUDITOR: &str = "auditor-token";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn token(t: &str, principal: &str, roles: Vec<Role>) -> TokenEntry {
    TokenEntry {
        sha256: hex::encode(openssl::sha::sha256(t.as_bytes())),
        principal: principal.into(),
        roles,
    }
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Driver {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: apt-get install chromium chromium-driver (.ci/run does)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

async fn browser(driver: &Driver, downloads: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--lang=vi"],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        }),
    );
    ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session")
}

fn artefacts() -> PathBuf {
    let dir = root().join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(artefacts().join(format!("{name}.png")), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Chooses `file` in the page's file input, and gives `token` if the token dialog opens.
async fn upload(c: &Client, file: &Path, token: Option<&str>) {
    let input = c.find(Locator::Css("#file")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    if let Some(t) = token {
        give_token(c, t).await;
    }
}

async fn give_token(c: &Client, token: &str) {
    let field = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#token-dialog[open] #token"))
        .await
        .expect("the token dialog opens");
    field.send_keys(token).await.unwrap();
    c.find(Locator::Css("#token-dialog button[value=ok]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until the element `css` holds `wanted`.
async fn until_text(c: &Client, css: &str, wanted: &str) -> String {
    let mut last = String::new();
    for _ in 0..300 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(wanted) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {wanted:?}; it shows {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver (Debian packages); .ci/run installs them and runs it"]
async fn a_clerk_checks_documents_and_an_auditor_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        trust: vec![pki("root-ca.pem")],
        intermediates: vec![pki("party-ca.pem")],
        revocation: kyso::verify::RevocationMode::Offline,
        ..Config::default()
    };
    config.auth.tokens = vec![
        token(VERIFIER, "van-thu", vec![Role::Verifier]),
        token(AUDITOR, "thanh-tra", vec![Role::Auditor]),
    ];
    let server = kyso::service::start(config).await.unwrap();
    let base = format!("http://{}", server.http_addr);
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let file = |name: &str| {
        let path = files.join(name);
        let bytes = if name == "not-a-pdf.pdf" {
            b"Hello, this is a letter, not a PDF.".to_vec()
        } else {
            fixture(name)
        };
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let driver = driver();
    let c = browser(&driver, &downloads).await;

    // The valid two-signature document: the token is asked for once.
    c.goto(&format!("{base}/")).await.unwrap();
    upload(&c, &file("two-signatures.pdf"), Some(VERIFIER)).await;
    until_text(&c, "#verdict", "Các chữ ký số hợp lệ").await;
    let issued = text(&c, "#issued").await;
    assert!(issued.contains("đúng thể thức"), "{issued}");
    let cards = c.find_all(Locator::Css("article.signature")).await.unwrap();
    assert_eq!(cards.len(), 2);
    let first = cards[0].text().await.unwrap();
    assert!(first.contains("Trần Văn Huyến"), "{first}");
    assert!(first.contains("Chữ ký của người có thẩm quyền"), "{first}");
    assert!(first.contains("(UTC+7)"), "{first}");
    let second = cards[1].text().await.unwrap();
    assert!(second.contains("Tỉnh ủy Hậu Giang"), "{second}");
    assert!(
        second.contains("Chữ ký số của cơ quan, tổ chức"),
        "{second}"
    );
    assert!(!text(&c, "#record-id").await.is_empty());
    // Where: the page drawn by kyso, each signature's box outlined and labelled.
    until_text(&c, "#where .box[data-signature='2'] span", "Chữ ký 2").await;
    let boxes = c.find_all(Locator::Css("#where .box")).await.unwrap();
    assert_eq!(boxes.len(), 2);
    let label = text(&c, "#where .box[data-signature='1'] span").await;
    assert!(label.contains("Chữ ký 1"), "{label}");
    let drawn = c
        .execute(
            "const i = document.querySelector('#where img'); \
             const b = document.querySelector('#where .box').getBoundingClientRect(); \
             const r = i.getBoundingClientRect(); \
             return [i.complete && i.naturalWidth > 0, b.width > 10 && b.height > 10 \
               && b.left >= r.left && b.right <= r.right && b.top >= r.top && b.bottom <= r.bottom];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        drawn,
        serde_json::json!([true, true]),
        "the page and its boxes"
    );
    c.execute("document.querySelector('#where').scrollIntoView()", vec![])
        .await
        .unwrap();
    screenshot(&c, "where").await;
    c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    screenshot(&c, "valid").await;

    // The signed version of signature 1, downloaded.
    cards[0]
        .find(Locator::Css("button.download"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let expected = kyso::signed_version(&fixture("two-signatures.pdf"), 1)
        .unwrap()
        .to_vec();
    let mut got = None;
    for _ in 0..100 {
        got = std::fs::read_dir(&downloads)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "pdf"));
        if got.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = got.expect("the signed version was downloaded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read(&got).unwrap(), expected, "{}", got.display());

    // English on the switch, the same report.
    c.find(Locator::Css("#lang"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&c, "#verdict", "The signatures hold").await;
    c.find(Locator::Css("#lang"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&c, "#verdict", "Các chữ ký số hợp lệ").await;

    // Modified after signing: not valid, and the card says why.
    upload(&c, &file("mod-content-overlay.pdf"), None).await;
    until_text(&c, "#verdict", "Có chữ ký số không hợp lệ").await;
    let card = text(&c, "article.signature").await;
    assert!(card.contains("Không hợp lệ"), "{card}");
    screenshot(&c, "modified").await;

    // A shadow attack: a form field's white box hid a line when it was signed, and the
    // "filled" field shows it now. What changed: the page as signed beside the page now,
    // the area that differs marked on both.
    upload(&c, &file("form-field-shadow.pdf"), None).await;
    until_text(&c, "article.signature", "Trần Văn Huyến").await;
    c.find(Locator::Css("article.signature details.comparison summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let summary = until_text(&c, ".compare-summary", "vùng").await;
    assert!(summary.contains("khoanh đỏ"), "{summary}");
    let figures = c
        .find_all(Locator::Css(".side-by-side .figure"))
        .await
        .unwrap();
    assert_eq!(figures.len(), 2, "the page as signed and now");
    for f in &figures {
        let marks = f.find_all(Locator::Css(".changed-area")).await.unwrap();
        assert!(!marks.is_empty(), "each side marks the area");
    }
    c.execute(
        "document.querySelector('.side-by-side').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "what-changed").await;

    // The person's signature only: valid, but not a properly issued document.
    upload(&c, &file("vn-person-only.pdf"), None).await;
    until_text(&c, "#verdict", "Các chữ ký số hợp lệ").await;
    let issued = text(&c, "#issued").await;
    assert!(issued.contains("chưa đúng thể thức"), "{issued}");
    screenshot(&c, "person-only").await;

    // No signature; then not a PDF at all.
    upload(&c, &file("unsigned.pdf"), None).await;
    until_text(&c, "#verdict", "Văn bản không có chữ ký số").await;
    upload(&c, &file("not-a-pdf.pdf"), None).await;
    let error = until_text(&c, "#error", "not a PDF").await;
    assert!(error.starts_with("Không kiểm tra được"), "{error}");
    screenshot(&c, "not-a-pdf").await;

    // The auditor: the clerk's token lacks the role, so the page asks for another; the
    // search finds the signer without diacritics; the log checks out.
    c.goto(&format!("{base}/audit")).await.unwrap();
    c.find(Locator::Css("input[name=signer_name]"))
        .await
        .unwrap()
        .send_keys("huyen")
        .await
        .unwrap();
    c.find(Locator::Css("#search button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    give_token(&c, AUDITOR).await;
    until_text(&c, "#records tbody", "Trần Văn Huyến").await;
    let rows = c.find_all(Locator::Css("#records tbody tr")).await.unwrap();
    // two-signatures, mod-content-overlay, form-field-shadow and vn-person-only were
    // signed by him.
    assert_eq!(rows.len(), 4, "{}", text(&c, "#records tbody").await);
    rows[0].click().await.unwrap();
    until_text(&c, "#detail pre", "\"method\": \"POST /api/v1/verify\"").await;
    c.find(Locator::Css("#check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&c, "#log-state", "Nhật ký toàn vẹn").await;
    screenshot(&c, "auditor").await;
    // What was found, exported.
    c.find(Locator::Css("#csv"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let csv = downloads.join("kyso-audit.csv");
    for _ in 0..100 {
        if csv.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&csv).expect("the CSV was downloaded");
    assert!(text.contains("id,time,document_number,signers"), "{text}");
    assert_eq!(text.matches("Trần Văn Huyến").count(), 4, "{text}");

    c.close().await.unwrap();
    server.stop().await.unwrap();
}
