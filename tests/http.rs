//! The HTTP API end to end: a real `kyso::service` on 127.0.0.1:0, a real HTTP client
//! (ureq). Every route, every error code, and one audit record per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use kyso::service::config::{Config, Role, TokenEntry};
use serde_json::Value;

const VERIFIER: &str = "verifier-token";
const AUDITOR: &str = "auditor-token";

fn token(t: &str, principal: &str, roles: Vec<Role>) -> TokenEntry {
    TokenEntry {
        sha256: hex::encode(openssl::sha::sha256(t.as_bytes())),
        principal: principal.into(),
        roles,
    }
}

fn config(data_dir: &Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        trust: vec![pki("root-ca.pem")],
        intermediates: vec![pki("party-ca.pem")],
        revocation: kyso::verify::RevocationMode::Offline,
        max_document_bytes: 200_000,
        ..Config::default()
    };
    c.auth.tokens = vec![
        token(VERIFIER, "dms-haugiang", vec![Role::Verifier]),
        token(AUDITOR, "thanh-tra", vec![Role::Auditor]),
    ];
    c
}

/// A server on its own runtime, and a blocking client for it.
struct Server {
    runtime: tokio::runtime::Runtime,
    running: Option<kyso::service::Running>,
    base: String,
    agent: ureq::Agent,
}

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error object's code, checking the error's shape.
    fn error_code(&self) -> String {
        let json = self.json();
        let error = &json["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        error["code"].as_str().unwrap_or_default().to_owned()
    }

    fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Server {
    fn start(config: Config) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = runtime.block_on(kyso::service::start(config)).unwrap();
        let base = format!("http://{}", running.http_addr);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build()
            .new_agent();
        Server {
            runtime,
            running: Some(running),
            base,
            agent,
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        if let Some(c) = content_type {
            request = request.header("content-type", c);
        }
        let request = request.body(body.to_vec()).unwrap();
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap(),
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send("GET", path, token, None, &[])
    }

    fn stop(mut self) {
        if let Some(r) = self.running.take() {
            self.runtime.block_on(r.stop()).unwrap();
        }
    }
}

/// A multipart/form-data body with `document` as its field `file`, and its content type.
fn multipart(document: &[u8]) -> (Vec<u8>, String) {
    let boundary = "kyso-test-boundary-7b1f";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nincoming register\r\n").as_bytes());
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"494-BC-TU.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes());
    body.extend_from_slice(document);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

#[test]
fn verify_answers_the_cli_report_with_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    let pdf = fixture("two-signatures.pdf");
    let a = server.send(
        "POST",
        "/api/v1/verify?document_number=494-BC%2FTU&sender=Tinh%20uy&dms_id=42&lang=en",
        Some(VERIFIER),
        Some("application/pdf"),
        &pdf,
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let json = a.json();
    assert_eq!(json["verdict"], "VALID", "{json:#}");
    assert_eq!(json["signatures"].as_array().unwrap().len(), 2);
    assert!(
        json["summary"].as_str().unwrap().contains("VALID"),
        "{json}"
    );
    let id = json["audit_record_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());

    // The same keys as `kyso verify --format json`, but the file name.
    let cli = verify_fixture("two-signatures.pdf").to_json("x.pdf");
    let mut cli_keys: Vec<&String> = cli.as_object().unwrap().keys().collect();
    cli_keys.retain(|k| *k != "file");
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    for k in &cli_keys {
        assert!(
            keys.contains(k),
            "{k} missing from the HTTP report: {keys:?}"
        );
    }
    assert_eq!(json["sha256"], cli["sha256"]);
    assert_eq!(
        json["signatures"][1]["signer"],
        cli["signatures"][1]["signer"]
    );

    // The record holds the caller's metadata and the route.
    let r = server.get(&format!("/api/v1/records/{id}"), Some(AUDITOR));
    assert_eq!(r.status, 200);
    let record = r.json();
    assert_eq!(record["method"], "POST /api/v1/verify");
    assert_eq!(record["principal"], "dms-haugiang");
    assert_eq!(record["document_number"], "494-BC/TU");
    assert_eq!(record["sender"], "Tinh uy");
    assert_eq!(record["document_id"], "42");
    assert_eq!(record["verdict"], "VALID");
    assert_eq!(record["document_sha256"], cli["sha256"]);

    // The same document as the field `file` of a form.
    let (body, content_type) = multipart(&pdf);
    let m = server.send(
        "POST",
        "/api/v1/verify",
        Some(VERIFIER),
        Some(&content_type),
        &body,
    );
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    assert_eq!(m.json()["sha256"], cli["sha256"]);
    assert_ne!(m.json()["audit_record_id"], json["audit_record_id"]);
    server.stop();
}

#[test]
fn each_refusal_has_its_status_and_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    let pdf = fixture("two-signatures.pdf");
    let verify = |token: Option<&str>, ct: Option<&str>, body: &[u8], query: &str| {
        server.send("POST", &format!("/api/v1/verify{query}"), token, ct, body)
    };

    let a = verify(None, Some("application/pdf"), &pdf, "");
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (401, "UNAUTHENTICATED")
    );
    assert_eq!(a.headers.get("www-authenticate").unwrap(), "Bearer");
    let a = verify(Some("wrong"), Some("application/pdf"), &pdf, "");
    assert_eq!(a.status, 401);
    let a = verify(Some(AUDITOR), Some("application/pdf"), &pdf, "");
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (403, "PERMISSION_DENIED")
    );
    assert!(a.message().contains("verifier role"), "{}", a.message());

    let a = verify(
        Some(VERIFIER),
        Some("application/pdf"),
        b"hello, not a pdf",
        "",
    );
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (400, "INVALID_ARGUMENT")
    );
    assert!(a.message().contains("not a PDF"), "{}", a.message());
    let a = verify(Some(VERIFIER), Some("application/pdf"), b"", "");
    assert_eq!(a.status, 400);
    assert!(a.message().contains("empty"), "{}", a.message());
    let a = verify(Some(VERIFIER), Some("text/plain"), &pdf, "");
    assert_eq!(a.status, 415);
    assert!(a.message().contains("text/plain"), "{}", a.message());
    let a = verify(
        Some(VERIFIER),
        Some("multipart/form-data; boundary=x"),
        b"--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nno file\r\n--x--\r\n",
        "",
    );
    assert_eq!(a.status, 400);
    assert!(a.message().contains("\"file\""), "{}", a.message());
    let big = vec![b'%'; 200_001];
    let a = verify(Some(VERIFIER), Some("application/pdf"), &big, "");
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (413, "RESOURCE_EXHAUSTED")
    );
    assert!(a.message().contains("200000 bytes"), "{}", a.message());
    let a = verify(
        Some(VERIFIER),
        Some("application/pdf"),
        &pdf,
        "?policy=decree-31",
    );
    assert_eq!(a.status, 400);
    assert!(a.message().contains("decree-31"), "{}", a.message());
    let a = verify(
        Some(VERIFIER),
        Some("application/pdf"),
        &pdf,
        "?at=yesterday",
    );
    assert_eq!(a.status, 400);
    assert!(a.message().contains("at"), "{}", a.message());
    let a = verify(Some(VERIFIER), Some("application/pdf"), &pdf, "?colour=red");
    assert_eq!(a.status, 400);
    assert!(a.message().contains("colour"), "{}", a.message());
    let a = verify(
        Some(VERIFIER),
        Some("application/pdf"),
        &pdf,
        "?trust_profile=nope",
    );
    assert_eq!(a.status, 400);

    let a = server.get("/api/v1/nothing-here", Some(VERIFIER));
    assert_eq!((a.status, a.error_code().as_str()), (404, "NOT_FOUND"));
    let a = server.get("/api/v1/nothing-here", None);
    assert_eq!(a.status, 401, "an unknown route tells a stranger nothing");
    let a = server.get("/api/v1/verify", Some(VERIFIER));
    assert_eq!((a.status, a.error_code().as_str()), (405, "UNIMPLEMENTED"));
    let a = server.get("/api/v1/records/999999", Some(AUDITOR));
    assert_eq!(a.status, 404);
    let a = server.get("/api/v1/records/abc", Some(AUDITOR));
    assert_eq!(a.status, 400);
    let a = server.get("/api/v1/records", Some(VERIFIER));
    assert_eq!(a.status, 403);
    let a = server.get("/api/v1/records?from=monday", Some(AUDITOR));
    assert_eq!(a.status, 400);
    let a = server.get("/api/v1/records?page_token=xyz", Some(AUDITOR));
    assert_eq!(a.status, 400);
    let a = server.send(
        "POST",
        "/api/v1/log/verify",
        Some(AUDITOR),
        Some("application/json"),
        b"{\"from\": 1",
    );
    assert_eq!(a.status, 400);
    let a = server.send(
        "POST",
        "/api/v1/log/verify",
        Some(AUDITOR),
        Some("application/json"),
        &vec![b' '; (1 << 20) + 1],
    );
    assert_eq!(a.status, 413);
    assert!(
        a.message().contains("request body is over 1048576 bytes"),
        "{}",
        a.message()
    );

    // Every request above is a record, refused ones with their status.
    let made = 22;
    let page = server.get("/api/v1/records?page_size=1000", Some(AUDITOR));
    assert_eq!(page.status, 200);
    let records = page.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), made, "{records:#?}");
    assert!(records
        .iter()
        .all(|r| r["error"].as_str().is_some_and(|e| !e.is_empty())));
    assert!(records
        .iter()
        .any(|r| r["method"] == "GET /api/v1/nothing-here"));
    server.stop();
}

#[test]
fn signed_version_log_checkpoint_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    let pdf = fixture("two-signatures.pdf");
    assert_eq!(server.get("/healthz", None).status, 200);
    assert_eq!(server.get("/readyz", None).status, 200);

    let a = server.send(
        "POST",
        "/api/v1/signatures/1/signed-version",
        Some(VERIFIER),
        Some("application/pdf"),
        &pdf,
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.headers.get("content-type").unwrap(), "application/pdf");
    let expected = kyso::signed_version(&pdf, 1).unwrap();
    assert_eq!(a.body, expected);
    assert_eq!(
        a.headers.get("x-kyso-sha256").unwrap().to_str().unwrap(),
        hex::encode(openssl::sha::sha256(expected))
    );
    assert!(a.headers.get("x-kyso-audit-record-id").is_some());
    assert!(a
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("signature-1-signed-version.pdf"));
    for (n, status) in [("9", 404), ("0", 400), ("first", 400)] {
        let a = server.send(
            "POST",
            &format!("/api/v1/signatures/{n}/signed-version"),
            Some(VERIFIER),
            Some("application/pdf"),
            &pdf,
        );
        assert_eq!(
            a.status,
            status,
            "{n}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }

    // The log: a checkpoint, then a check against it.
    let c = server.get("/api/v1/checkpoint", Some(AUDITOR));
    assert_eq!(c.status, 200, "{}", String::from_utf8_lossy(&c.body));
    let checkpoint = c.json();
    assert!(checkpoint["tree_size"].as_u64().unwrap() >= 1);
    let note = checkpoint["note"].as_str().unwrap();
    assert!(note.starts_with("kyso.localhost/audit\n"), "{note}");
    assert!(checkpoint["verifier_key"]
        .as_str()
        .unwrap()
        .starts_with("kyso.localhost/audit+"));
    let body = serde_json::json!({ "kept_checkpoints": [checkpoint] }).to_string();
    let v = server.send(
        "POST",
        "/api/v1/log/verify",
        Some(AUDITOR),
        Some("application/json"),
        body.as_bytes(),
    );
    assert_eq!(v.status, 200, "{}", String::from_utf8_lossy(&v.body));
    let check = v.json();
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["records_checked"].as_u64().unwrap() >= 5);
    assert!(check["checkpoints_checked"].as_u64().unwrap() >= 1);
    let empty = server.send("POST", "/api/v1/log/verify", Some(AUDITOR), None, b"");
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["ok"], true);

    // A record's JSON is the one `kyso audit query --format json` prints.
    let page = server.get("/api/v1/records?page_size=2", Some(AUDITOR));
    let json = page.json();
    assert_eq!(json["records"].as_array().unwrap().len(), 2);
    let token = json["next_page_token"].as_str().unwrap();
    assert!(!token.is_empty());
    let next = server.get(
        &format!("/api/v1/records?page_size=2&page_token={token}"),
        Some(AUDITOR),
    );
    assert_eq!(next.status, 200);
    let first = &json["records"][0];
    for key in [
        "id",
        "sequence",
        "time",
        "method",
        "hash",
        "previous_hash",
        "signatures",
    ] {
        assert!(first.get(key).is_some(), "{key}: {first}");
    }
    server.stop();
}

#[test]
fn metrics_count_requests_verifications_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    let pdf = fixture("two-signatures.pdf");
    let a = server.send(
        "POST",
        "/api/v1/verify",
        Some(VERIFIER),
        Some("application/pdf"),
        &pdf,
    );
    assert_eq!(a.status, 200);
    assert_eq!(server.get("/api/v1/records", None).status, 401);
    // A path a caller makes up is counted, but not as a label of its own.
    assert_eq!(server.get("/api/v1/made-up-7f3a", None).status, 401);
    let m = server.get("/metrics", None);
    assert_eq!(m.status, 200);
    assert!(m
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(m.body).unwrap();
    for needle in [
        "kyso_requests_total{method=\"POST /api/v1/verify\",status=\"OK\"}",
        "kyso_requests_total{method=\"GET /api/v1/records\",status=\"UNAUTHENTICATED\"}",
        "kyso_request_duration_seconds_bucket{method=\"POST /api/v1/verify\",le=\"",
        "kyso_verification_seconds_bucket{le=\"",
        "kyso_verdicts_total{verdict=\"VALID\"}",
        "kyso_policy_outcomes_total{conforms=\"true\"}",
        "kyso_audit_commit_seconds_bucket{le=\"",
        "kyso_audit_batch_records_bucket{le=\"1\"}",
        "kyso_cache_lookups_total{cache=\"certificate\",result=\"miss\"}",
        "kyso_work_waiting",
        "kyso_work_running",
        "kyso_requests_total{method=\"other\",status=\"UNAUTHENTICATED\"}",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(!text.contains("made-up-7f3a"), "{text}");
    server.stop();
}

#[test]
fn each_request_is_one_json_log_line() {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let sha = |t: &str| hex::encode(openssl::sha::sha256(t.as_bytes()));
    let config = format!(
        "trust = [{:?}]\nintermediates = [{:?}]\nrevocation = \"offline\"\n\
         [[auth.tokens]]\nsha256 = \"{}\"\nprincipal = \"dms-haugiang\"\nroles = [\"verifier\"]\n",
        pki("root-ca.pem").to_str().unwrap(),
        pki("party-ca.pem").to_str().unwrap(),
        sha(VERIFIER),
    );
    let file = dir.path().join("kyso.toml");
    std::fs::write(&file, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("KYSO_CONFIG", &file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let http = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no HTTP address in {banner:?}"))
        .to_owned();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A server that hangs fails the test instead of hanging it.
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .new_agent();
    let mut answer = agent
        .post(format!("http://{http}/api/v1/verify"))
        .header("authorization", format!("Bearer {VERIFIER}"))
        .header("content-type", "application/pdf")
        .send(&fixture("two-signatures.pdf")[..])
        .unwrap();
    assert_eq!(answer.status(), 200);
    let report: Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    child.kill().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = child.wait();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &Value| v["target"] == "kyso::request")
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let f = &lines[0]["fields"];
    assert_eq!(f["method"], "POST /api/v1/verify", "{f}");
    assert_eq!(f["principal"], "dms-haugiang");
    assert_eq!(f["status"], "OK");
    assert_eq!(f["verdict"], "VALID");
    assert_eq!(f["document_sha256"], report["sha256"]);
    assert_eq!(f["audit_record_id"], report["audit_record_id"]);
    assert!(f["duration_ms"].is_u64());
    assert!(lines[0]["timestamp"].is_string());
}

/// Every `"$ref"` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn pages_are_drawn_and_compared_and_each_call_is_a_record() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    let pdf = fixture("two-signatures.pdf");
    let post = |path: &str, body: &[u8]| {
        server.send("POST", path, Some(VERIFIER), Some("application/pdf"), body)
    };

    let a = post("/api/v1/pages/1/rendering?document_number=494-BC/TU", &pdf);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let r = a.json();
    assert_eq!(
        (r["page"].as_u64(), r["pages"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(r["width"].as_u64().unwrap() <= 1400 && r["height"].as_u64().unwrap() <= 1400);
    assert_eq!(r["transform"].as_array().unwrap().len(), 6);
    let png = base64::engine::general_purpose::STANDARD
        .decode(r["png"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let id = r["audit_record_id"].as_str().unwrap().to_owned();
    let record = server
        .get(&format!("/api/v1/records/{id}"), Some(AUDITOR))
        .json();
    assert_eq!(record["method"], "POST /api/v1/pages/{p}/rendering");
    assert_eq!(record["document_number"], "494-BC/TU");
    assert_eq!(
        record["document_sha256"],
        hex::encode(openssl::sha::sha256(&pdf))
    );

    // Signature 1's page as signed and now: the organisation's seal was added after it.
    let a = post("/api/v1/signatures/1/comparison?page=1", &pdf);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let c = a.json();
    assert_eq!(
        (c["signature"].as_u64(), c["page"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(c["signed"]["png"].as_str().is_some() && c["now"]["png"].as_str().is_some());
    assert!(c["audit_record_id"].as_str().is_some());
    assert!(c["changed"].as_array().is_some());
    // Signature 2 signed the document as it is: nothing differs.
    let c = post("/api/v1/signatures/2/comparison", &pdf).json();
    assert_eq!(c["changed"].as_array().unwrap().len(), 0, "{c}");
    assert_eq!(c["differing_pixels"], 0);

    for (path, status, code) in [
        ("/api/v1/pages/2/rendering", 404, "NOT_FOUND"),
        ("/api/v1/pages/0/rendering", 404, "NOT_FOUND"),
        ("/api/v1/pages/first/rendering", 400, "INVALID_ARGUMENT"),
        ("/api/v1/signatures/3/comparison", 404, "NOT_FOUND"),
        ("/api/v1/signatures/0/comparison", 400, "INVALID_ARGUMENT"),
        ("/api/v1/signatures/1/comparison?page=7", 404, "NOT_FOUND"),
        (
            "/api/v1/signatures/1/comparison?page=x",
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/api/v1/signatures/1/comparison?zoom=9",
            400,
            "INVALID_ARGUMENT",
        ),
    ] {
        let a = post(path, &pdf);
        assert_eq!(
            a.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.error_code(), code, "{path}");
    }
    let a = post("/api/v1/pages/2/rendering", &pdf);
    assert_eq!(a.message(), "there is no page 2: the document has 1");
    let a = post("/api/v1/pages/1/rendering", b"Hello, not a PDF");
    assert_eq!(a.status, 400);
    assert!(a.message().contains("not a PDF"), "{}", a.message());
    let a = server.send(
        "POST",
        "/api/v1/pages/1/rendering",
        None,
        Some("application/pdf"),
        &pdf,
    );
    assert_eq!(a.status, 401);
    server.stop();
}

#[test]
fn the_openapi_document_has_every_route_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    let a = server.get("/api/v1/openapi.json", None);
    assert_eq!(a.status, 200);
    let doc = a.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    // The routes of src/service/http/api.rs, each with its method.
    let routes = [
        ("post", "/api/v1/verify"),
        ("post", "/api/v1/signatures/{n}/signed-version"),
        ("post", "/api/v1/pages/{p}/rendering"),
        ("post", "/api/v1/signatures/{n}/comparison"),
        ("get", "/api/v1/records"),
        ("get", "/api/v1/records/{id}"),
        ("post", "/api/v1/log/verify"),
        ("get", "/api/v1/checkpoint"),
        ("get", "/api/v1/records/{id}/proof"),
        ("get", "/api/v1/log/consistency"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), routes.len(), "{:?}", paths.keys());
    for (method, path) in routes {
        assert!(
            paths[path].get(method).is_some(),
            "{method} {path} is not documented"
        );
        // A route the document names answers something other than 404 (unknown route) or
        // 405 (wrong method) — here, to a caller without credentials.
        let got = server.send(
            &method.to_uppercase(),
            &path
                .replace("{n}", "1")
                .replace("{id}", "1")
                .replace("{p}", "1"),
            None,
            None,
            b"",
        );
        assert!(
            got.status != 404 && got.status != 405,
            "{method} {path}: {}",
            got.status
        );
    }
    let verify = &paths["/api/v1/verify"]["post"];
    for code in ["200", "400", "401", "403", "413", "415", "503"] {
        assert!(
            verify["responses"].get(code).is_some(),
            "verify has no {code}"
        );
    }
    for p in [
        "document_number",
        "sender",
        "dms_id",
        "lang",
        "policy",
        "expect",
        "trust_profile",
        "at",
    ] {
        assert!(
            verify["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == p),
            "verify has no parameter {p}"
        );
    }
    // Every reference resolves; the report's schemas come from its own types.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
    for name in [
        "Report",
        "SignatureReport",
        "Check",
        "Verdict",
        "Indication",
        "ChangeVerdict",
        "ExpectedProfile",
        "Record",
        "ErrorBody",
        "VerifyAnswer",
    ] {
        assert!(
            schemas.contains_key(name),
            "no schema {name}: {:?}",
            schemas.keys()
        );
    }
    assert!(schemas["Verdict"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "VALID"));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    server.stop();
}

#[test]
fn the_pages_are_served_with_their_assets_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    for (path, media, needle) in [
        ("/", "text/html", "id=\"file\""),
        ("/audit", "text/html", "id=\"search\""),
        ("/assets/kyso.css", "text/css", "@media print"),
        ("/assets/i18n.js", "text/javascript", "Asia/Ho_Chi_Minh"),
        ("/assets/clerk.js", "text/javascript", "/api/v1/verify"),
        ("/assets/audit.js", "text/javascript", "/api/v1/records"),
    ] {
        let a = server.get(path, None);
        assert_eq!(a.status, 200, "{path}");
        let ct = a.headers.get("content-type").unwrap().to_str().unwrap();
        assert!(ct.starts_with(media), "{path}: {ct}");
        let csp = a
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            csp.contains("connect-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert!(String::from_utf8_lossy(&a.body).contains(needle), "{path}");
    }
    assert_eq!(server.get("/assets/nothing.js", None).status, 404);
    assert_eq!(server.get("/assets/index.html", None).status, 404);
    server.stop();
}

#[test]
fn a_path_outside_the_api_is_not_found_and_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path()));
    assert_eq!(server.get("/favicon.ico", None).status, 404);
    assert_eq!(server.get("/", None).status, 200);
    let page = server.get("/api/v1/records", Some(AUDITOR));
    assert_eq!(
        page.json()["records"].as_array().unwrap().len(),
        0,
        "nothing was recorded"
    );
    server.stop();
}

/// `kyso …` run to the end: status, stdout, stderr.
fn kyso(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A DMS keeps the receipt of an answer and proves it later with the verifier key alone;
/// an auditor proves one record and that the log was only appended to since a checkpoint
/// saved earlier — over HTTP and from the data directory.
#[test]
fn receipts_and_proofs_check_offline_with_the_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(config(&data));
    let pdf = fixture("two-signatures.pdf");
    let verify = || {
        let a = server.send(
            "POST",
            "/api/v1/verify",
            Some(VERIFIER),
            Some("application/pdf"),
            &pdf,
        );
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()
    };
    verify();
    let c = server.get("/api/v1/checkpoint", Some(AUDITOR)).json();
    let key = c["verifier_key"].as_str().unwrap().to_owned();
    let saved = dir.path().join("saved.json");
    std::fs::write(&saved, c.to_string()).unwrap();
    let answer = verify();
    let receipt = &answer["receipt"];
    let id: u64 = answer["audit_record_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(receipt["leaf_index"].as_u64(), Some(id - 1), "{answer:#}");
    assert!(receipt["tree_size"].as_u64().unwrap() >= id);
    assert!(receipt["checkpoint"]
        .as_str()
        .unwrap()
        .starts_with("kyso.localhost/audit\n"));

    let write = |name: &str, v: &Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let check = |file: &str, extra: &[&str]| {
        let mut args = vec!["audit", "verify-proof", file, "--key", key.as_str()];
        args.extend(extra);
        kyso(&args)
    };
    // The whole answer, as the DMS kept it.
    let kept = write("answer.json", &answer);
    let (code, text, err) = check(&kept, &[]);
    assert_eq!(code, 0, "{text}{err}");
    assert!(
        text.starts_with(&format!("OK: record {id} is leaf {}", id - 1)),
        "{text}"
    );
    // What kyso answered, read from the receipt alone.
    let sha = answer["sha256"].as_str().unwrap();
    for line in [
        "  verdict: VALID".to_owned(),
        format!("  document SHA-256: {sha}"),
        "  method: POST /api/v1/verify".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    // A receipt whose record was changed proves nothing.
    let mut forged = receipt.clone();
    let record = forged["record"].as_str().unwrap().to_owned();
    let flipped = if record.starts_with('A') { "B" } else { "A" };
    forged["record"] = Value::String(format!("{flipped}{}", &record[1..]));
    let (code, text, _) = check(&write("forged.json", &forged), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("FAILED: the inclusion proof does not lead"),
        "{text}"
    );
    // Another log's key does not open its checkpoint.
    let stranger = "kyso.localhost/audit+00000000+AQ==";
    let (code, _, err) = kyso(&["audit", "verify-proof", &kept, "--key", stranger]);
    assert_eq!(code, 64, "{err}");

    // The auditor's proofs over HTTP.
    let p = server.get(&format!("/api/v1/records/{id}/proof"), Some(AUDITOR));
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    let (code, text, err) = check(&write("proof.json", &p.json()), &[]);
    assert_eq!(code, 0, "{text}{err}");
    let old = c["tree_size"].as_u64().unwrap();
    let q = server.get(
        &format!("/api/v1/log/consistency?old_size={old}"),
        Some(AUDITOR),
    );
    assert_eq!(q.status, 200, "{}", String::from_utf8_lossy(&q.body));
    let consistency = write("consistency.json", &q.json());
    let (code, text, err) = check(&consistency, &["--checkpoint", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}{err}");
    assert!(
        text.contains(&format!("holds the tree of {old} records")),
        "{text}"
    );
    for (path, status, code) in [
        (
            "/api/v1/records/99999/proof".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("/api/v1/records/{id}/proof?tree_size=99999"),
            404,
            "NOT_FOUND",
        ),
        (
            "/api/v1/records/x/proof".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/api/v1/log/consistency?old_size=0".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/api/v1/log/consistency?old_size=1&new_size=99999".to_owned(),
            404,
            "NOT_FOUND",
        ),
    ] {
        let a = server.get(&path, Some(AUDITOR));
        assert_eq!(
            (a.status, a.error_code()),
            (status, code.to_owned()),
            "{path}: {}",
            a.message()
        );
    }
    let v = server.get(&format!("/api/v1/records/{id}/proof"), Some(VERIFIER));
    assert_eq!(v.status, 403, "proofs are the auditor's");
    server.stop();

    // The same from the data directory, the server stopped.
    let d = data.to_str().unwrap();
    let (code, printed, err) = kyso(&["audit", "public-key", "--data-dir", d]);
    assert_eq!((code, printed.trim()), (0, key.as_str()), "{err}");
    let (code, json, err) = kyso(&["audit", "checkpoint", "--data-dir", d, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let latest: Value = serde_json::from_str(&json).unwrap();
    let size = latest["tree_size"].as_u64().unwrap();
    assert!(size > id, "the proof requests were recorded too");
    let (code, json, err) = kyso(&["audit", "prove", "--data-dir", d, "--record", "1"]);
    assert_eq!(code, 0, "{err}");
    let proof: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (proof["leaf_index"].as_u64(), proof["tree_size"].as_u64()),
        (Some(0), Some(size))
    );
    assert_eq!(check(&write("prove.json", &proof), &[]).0, 0);
    let (code, json, err) = kyso(&[
        "audit",
        "consistency",
        "--data-dir",
        d,
        "--old-size",
        &old.to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, text, err) = check(
        &write("since.json", &serde_json::from_str(&json).unwrap()),
        &["--checkpoint", saved.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{text}{err}");
    // Proven from another saved tree than its own, it fails.
    let mut other = serde_json::from_str::<Value>(&json).unwrap();
    other["old_root"] = latest["root_hash"].clone();
    let (code, text, _) = check(
        &write("other.json", &other),
        &["--checkpoint", saved.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{text}");
    let (code, _, err) = kyso(&[
        "audit",
        "prove",
        "--data-dir",
        d,
        "--record",
        "1",
        "--size",
        "99999",
    ]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("no checkpoint of a tree of 99999 records"),
        "{err}"
    );
    let (code, text, err) = kyso(&[
        "audit",
        "verify",
        "--data-dir",
        d,
        "--checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}{err}");
}
