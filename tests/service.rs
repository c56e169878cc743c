//! The gRPC service end to end: a real server on 127.0.0.1:0, real tonic clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../certs-test/fixture.rs"]
mod certs;
mod common;

use std::path::Path;

use common::*;
use kyso::service::config::{Config, Role, TokenEntry};
use kyso::service::proto::audit_service_client::AuditServiceClient;
use kyso::service::proto::verification_service_client::VerificationServiceClient;
use kyso::service::proto::{self as pb};
use tonic::transport::Channel;
use tonic::{Code, Request};

const VERIFIER: &str = "verifier-token";
const AUDITOR: &str = "auditor-token";
const ADMIN: &str = "admin-token";

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
        ..Config::default()
    };
    c.auth.tokens = vec![
        token(VERIFIER, "dms-haugiang", vec![Role::Verifier]),
        token(AUDITOR, "thanh-tra", vec![Role::Auditor]),
        token(ADMIN, "admin", vec![Role::Admin]),
    ];
    c
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_token<T>(t: Option<&str>, message: T) -> Request<T> {
    let mut r = Request::new(message);
    if let Some(t) = t {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

fn verify_request(document: Vec<u8>, number: &str) -> pb::VerifyDocumentRequest {
    pb::VerifyDocumentRequest {
        document: document.into(),
        metadata: Some(pb::CallerMetadata {
            document_id: "dms-42".into(),
            document_number: number.into(),
            sender: "Văn phòng Tỉnh ủy".into(),
            extra: [("urgency".to_owned(), "high".to_owned())].into(),
        }),
        options: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_the_two_signature_fixture_and_read_its_record_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let ch = channel(server.addr).await;
    let mut v = VerificationServiceClient::new(ch.clone());
    let doc = fixture("two-signatures.pdf");
    let answer = v
        .verify_document(with_token(
            Some(VERIFIER),
            verify_request(doc.clone(), "494-BC/TU"),
        ))
        .await
        .unwrap()
        .into_inner();
    let report = answer.report.unwrap();
    assert_eq!(report.verdict, pb::Verdict::Valid as i32);
    assert_eq!(report.signatures.len(), 2);
    assert_eq!(
        report.signatures[0].indication,
        pb::Indication::Passed as i32
    );
    assert!(answer.summary.contains("HỢP LỆ"), "{}", answer.summary);

    let mut a = AuditServiceClient::new(ch);
    let record = a
        .get_record(with_token(
            Some(AUDITOR),
            pb::GetRecordRequest {
                id: answer.audit_record_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(record.principal, "dms-haugiang");
    assert_eq!(record.method, "/kyso.v1.VerificationService/VerifyDocument");
    assert_eq!(record.verdict_code, pb::Verdict::Valid as i32);
    // Every name the protocol carries is an enum; the deprecated strings, still filled for
    // older clients, say the same.
    #[allow(deprecated)]
    {
        assert_eq!(record.verdict, "VALID");
        assert_eq!(record.signatures[0].indication, "PASSED");
        assert_eq!(report.signatures[0].kind, "signature");
    }
    assert_eq!(
        record.signatures[0].indication_code,
        pb::Indication::Passed as i32
    );
    assert_eq!(
        record.signatures[0].sub_indication_code,
        pb::SubIndication::Unspecified as i32
    );
    assert_eq!(
        report.signatures[0].signature_kind,
        pb::SignatureKind::Signature as i32
    );
    // Roles and the policy result are in the report and kept in the record.
    assert_eq!(report.signatures[0].role, pb::Role::Personal as i32);
    assert_eq!(report.signatures[1].role, pb::Role::Organisation as i32);
    let policy = report.policy.as_ref().expect("policy decree-30 by default");
    assert_eq!(policy.id, "decree-30");
    assert!(policy.conforms, "{:?}", policy.rules);
    let roles: Vec<i32> = record.signatures.iter().map(|s| s.role).collect();
    assert_eq!(
        roles,
        [pb::Role::Personal as i32, pb::Role::Organisation as i32]
    );
    let kept = record
        .policy
        .as_ref()
        .expect("the record keeps the policy result");
    assert_eq!(
        (
            kept.id.as_str(),
            kept.version.as_str(),
            kept.sha256.as_str()
        ),
        (
            policy.id.as_str(),
            policy.version.as_str(),
            policy.sha256.as_str()
        )
    );
    assert_eq!(kept.profile, pb::Profile::Issued as i32);
    assert_eq!(kept.expected, pb::ExpectedProfile::Issued as i32);
    assert!(kept.conforms);
    assert_eq!(record.document_number, "494-BC/TU");
    assert_eq!(
        record.extra.get("urgency").map(String::as_str),
        Some("high")
    );
    assert_eq!(
        record.document_sha256.as_deref(),
        Some(report.sha256.as_str())
    );
    assert_eq!(
        record.signatures[0].signer_common_name.as_deref(),
        Some("Trần Văn Huyến")
    );
    assert_eq!(
        record.signatures[1].signer_organization.as_deref(),
        Some("Tỉnh ủy Hậu Giang")
    );
    assert!(record.peer.starts_with("127.0.0.1:"));

    for (q, expect) in [
        (
            pb::QueryRecordsRequest {
                signer_name: Some("Huyến".into()),
                ..Default::default()
            },
            1,
        ),
        (
            pb::QueryRecordsRequest {
                document_sha256: Some(report.sha256.clone()),
                ..Default::default()
            },
            1,
        ),
        (
            pb::QueryRecordsRequest {
                document_number: Some("494-BC/TU".into()),
                verdict: Some("VALID".into()),
                ..Default::default()
            },
            1,
        ),
        (
            pb::QueryRecordsRequest {
                organization: Some("Hậu Giang".into()),
                caller: Some("dms-haugiang".into()),
                ..Default::default()
            },
            1,
        ),
        (
            pb::QueryRecordsRequest {
                signer_name: Some("Nobody".into()),
                ..Default::default()
            },
            0,
        ),
    ] {
        let found = a
            .query_records(with_token(Some(AUDITOR), q.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.records.len(), expect, "{q:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_document_streams_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let mut v = VerificationServiceClient::new(channel(server.addr).await);
    let doc = make_large_document();
    assert!(doc.len() > 8 << 20);
    let chunks: Vec<pb::VerifyDocumentChunk> = doc
        .chunks(1 << 20)
        .enumerate()
        .map(|(i, c)| pb::VerifyDocumentChunk {
            metadata: (i == 0).then(|| pb::CallerMetadata {
                document_number: "big".into(),
                ..Default::default()
            }),
            options: None,
            data: c.to_vec().into(),
        })
        .collect();
    let answer = v
        .verify_document_stream(with_token(Some(VERIFIER), tokio_stream::iter(chunks)))
        .await
        .unwrap()
        .into_inner();
    let report = answer.report.unwrap();
    assert_eq!(report.size as usize, doc.len());
    assert_eq!(report.verdict, pb::Verdict::Valid as i32);
    server.stop().await.unwrap();
}

/// The two-signature document with a 9 MB image, from the committed test keys.
fn make_large_document() -> Vec<u8> {
    certs::two_signature_document(&root().join("certs-test/pki"), 9 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_and_role() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_document_bytes = 200_000;
    let server = kyso::service::start(c).await.unwrap();
    let ch = channel(server.addr).await;
    let mut v = VerificationServiceClient::new(ch.clone());
    let mut a = AuditServiceClient::new(ch);
    let doc = fixture("two-signatures.pdf");

    let code = |r: Result<tonic::Response<pb::VerifyDocumentResponse>, tonic::Status>| {
        r.map(|_| ()).unwrap_err()
    };
    let e = code(
        v.verify_document(with_token(None, verify_request(doc.clone(), "")))
            .await,
    );
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    let e = code(
        v.verify_document(with_token(Some("wrong"), verify_request(doc.clone(), "")))
            .await,
    );
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    let e = code(
        v.verify_document(with_token(Some(AUDITOR), verify_request(doc.clone(), "")))
            .await,
    );
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("verifier role"), "{e}");
    let e = code(
        v.verify_document(with_token(Some(VERIFIER), verify_request(Vec::new(), "")))
            .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = code(
        v.verify_document(with_token(
            Some(VERIFIER),
            verify_request(b"not a pdf".to_vec(), ""),
        ))
        .await,
    );
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("not a PDF"), "{e}");
    let e = code(
        v.verify_document(with_token(
            Some(VERIFIER),
            verify_request(vec![b'%'; 300_000], ""),
        ))
        .await,
    );
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    let e = a
        .query_records(with_token(
            Some(VERIFIER),
            pb::QueryRecordsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    // A document that fails verification is an answer, not an error.
    let broken = fixture("flipped-byte.pdf");
    let answer = v
        .verify_document(with_token(Some(VERIFIER), verify_request(broken, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.report.unwrap().verdict, pb::Verdict::Invalid as i32);
    // Admin may do both.
    v.verify_document(with_token(Some(ADMIN), verify_request(doc.clone(), "")))
        .await
        .unwrap();

    // Every rejected request is in the log with its error.
    let all = a
        .query_records(with_token(
            Some(ADMIN),
            pb::QueryRecordsRequest {
                page_size: 100,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records;
    let errors: Vec<&str> = all.iter().filter_map(|r| r.error.as_deref()).collect();
    for code in [
        "Unauthenticated",
        "PermissionDenied",
        "InvalidArgument",
        "ResourceExhausted",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(code)),
            "{code} not recorded: {errors:?}"
        );
    }

    // The store failing under the service: UNAVAILABLE, never an unrecorded answer.
    let db = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
    db.execute_batch("DROP TABLE records").unwrap();
    let e = code(
        v.verify_document(with_token(Some(VERIFIER), verify_request(doc, "")))
            .await,
    );
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let ch = channel(server.addr).await;
    let mut v = VerificationServiceClient::new(ch.clone());
    let doc = fixture("two-signatures.pdf");
    for i in 0..5 {
        v.verify_document(with_token(
            Some(VERIFIER),
            verify_request(doc.clone(), &format!("{i}/BC")),
        ))
        .await
        .unwrap();
    }
    let mut a = AuditServiceClient::new(ch);
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = a
            .query_records(with_token(
                Some(AUDITOR),
                pb::QueryRecordsRequest {
                    caller: Some("dms-haugiang".into()),
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.records.iter().map(|r| r.document_number.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, ["4/BC", "3/BC", "2/BC", "1/BC", "0/BC"]);
    let e = a
        .query_records(with_token(
            Some(AUDITOR),
            pb::QueryRecordsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_clients_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let addr = server.addr;
    let doc = fixture("two-signatures.pdf");
    let mut tasks = Vec::new();
    for c in 0..32 {
        let doc = doc.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = VerificationServiceClient::new(channel(addr).await);
            let mut ids = Vec::new();
            for i in 0..4 {
                let r = v
                    .verify_document(with_token(
                        Some(VERIFIER),
                        verify_request(doc.clone(), &format!("{c}-{i}")),
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                ids.push(r.audit_record_id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 128, "every answer has its own record");
    let mut a = AuditServiceClient::new(channel(addr).await);
    let check = a
        .verify_log(with_token(Some(AUDITOR), pb::VerifyLogRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(check.ok, "{}", check.problem);
    assert!(check.records_checked >= 128);
    server.stop().await.unwrap();

    // A restart keeps the log, continues the chain, and the checkpoint still verifies.
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let mut v = VerificationServiceClient::new(channel(server.addr).await);
    v.verify_document(with_token(
        Some(VERIFIER),
        verify_request(doc, "after-restart"),
    ))
    .await
    .unwrap();
    let mut a = AuditServiceClient::new(channel(server.addr).await);
    let check = a
        .verify_log(with_token(Some(AUDITOR), pb::VerifyLogRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(check.ok, "{}", check.problem);
    assert!(check.checkpoints_checked >= 1);
    let cp = a
        .get_checkpoint(with_token(Some(AUDITOR), pb::GetCheckpointRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(cp.public_key_pem.contains("PUBLIC KEY"));
    let found = a
        .query_records(with_token(
            Some(AUDITOR),
            pb::QueryRecordsRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(found
        .records
        .iter()
        .any(|r| r.document_number == "after-restart"));
    assert!(found.records.iter().any(|r| r.document_number == "31-3"));
    server.stop().await.unwrap();
}

/// A stopped server's data with `n` verification records.
async fn stopped_log(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let mut v = VerificationServiceClient::new(channel(server.addr).await);
    let doc = fixture("two-signatures.pdf");
    for i in 0..n {
        v.verify_document(with_token(
            Some(VERIFIER),
            verify_request(doc.clone(), &format!("{i}")),
        ))
        .await
        .unwrap();
    }
    server.stop().await.unwrap();
    dir
}

fn audit_verify(dir: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_and_the_record_named() {
    let cases: [(&str, &str, &str); 5] = [
        ("UPDATE records SET verdict = 'INVALID' WHERE sequence = 3", "record 3", "changed"),
        ("DELETE FROM records WHERE sequence = 4", "record 4", "missing"),
        (
            "UPDATE records SET sequence = 100 WHERE sequence = 3; UPDATE records SET sequence = 3 WHERE sequence = 4; UPDATE records SET sequence = 4 WHERE sequence = 100",
            "record 3",
            "does not follow",
        ),
        (
            "INSERT INTO records SELECT 6, time_ns, principal, peer, method, document_sha256, document_size, document_id, document_number, sender, extra, signatures, verdict, error, kyso_version, trust_fingerprint, previous_hash, hash, policy FROM records WHERE sequence = 2",
            "record 6",
            "does not follow",
        ),
        ("DELETE FROM records WHERE sequence = 5", "record 5", "missing"),
    ];
    for (sql, named, why) in cases {
        let dir = stopped_log(5).await;
        let (code, text) = audit_verify(dir.path());
        assert_eq!(code, 0, "untouched log: {text}");
        let db = rusqlite::Connection::open(dir.path().join("audit.sqlite3")).unwrap();
        db.execute_batch(sql).unwrap();
        drop(db);
        let (code, text) = audit_verify(dir.path());
        assert_eq!(code, 1, "{sql}: {text}");
        assert!(
            text.contains(&format!("FAILED at {named}")),
            "{sql}: {text}"
        );
        assert!(text.contains(why), "{sql}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let ch = channel(server.addr).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "kyso.v1.VerificationService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let expected = [
        "kyso.v1.VerificationService",
        "kyso.v1.AuditService",
        "grpc.health.v1.Health",
    ];
    {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::{
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut reflection = ServerReflectionClient::new(ch.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("{answer:?}")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for name in expected {
            assert!(names.iter().any(|n| n == name), "v1: {names:?}");
        }
    }
    // The older protocol version, which Python's grpcio-reflection and Postman speak.
    {
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::{
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut reflection = ServerReflectionClient::new(ch);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "kyso.v1.VerificationService".into(),
            )),
        };
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("v1alpha: {answer:?}")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    server.stop().await.unwrap();
}

#[test]
fn no_auth_is_refused_off_loopback_and_without_tokens_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--no-auth",
            "--listen",
            "0.0.0.0:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-auth"));
}

/// A TLS CA with a server certificate for 127.0.0.1 and two client certificates, as PEM
/// files in `dir`: `ca.pem`, `server.pem`/`.key`, `dms.pem`/`.key` (has roles) and
/// `stranger.pem`/`.key` (has none).
fn tls_files(dir: &Path) {
    use certs::{issue, Role as R, Urls};
    let ca = issue("kyso test TLS CA", None, R::Ca, 1, &Urls::default());
    let write = |name: &str, id: &certs::Identity| {
        std::fs::write(dir.join(format!("{name}.pem")), id.cert.to_pem().unwrap()).unwrap();
        let key = id.key.private_key_to_pem_pkcs8().unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key).unwrap();
    };
    write("ca", &ca);
    write(
        "server",
        &issue("kyso", Some(&ca), R::TlsServer, 2, &Urls::default()),
    );
    write(
        "dms",
        &issue("dms", Some(&ca), R::TlsClient, 3, &Urls::default()),
    );
    write(
        "stranger",
        &issue("stranger", Some(&ca), R::TlsClient, 4, &Urls::default()),
    );
}

async fn tls_channel(addr: std::net::SocketAddr, dir: &Path, client: Option<&str>) -> Channel {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |f: String| std::fs::read(dir.join(f)).unwrap();
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("ca.pem".into())));
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(
            read(format!("{c}.pem")),
            read(format!("{c}.key")),
        ));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_makes_the_client_certificate_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    tls_files(&tls);
    let subject = "C=VN, O=TỈNH ỦY HẬU GIANG, CN=dms";
    let mut c = config(&dir.path().join("data"));
    c.tls = Some(kyso::service::config::TlsConfig {
        cert: tls.join("server.pem"),
        key: tls.join("server.key"),
        client_ca: Some(tls.join("ca.pem")),
    });
    c.auth.certificates = vec![kyso::service::config::ClientCertificateEntry {
        subject: subject.into(),
        roles: vec![Role::Verifier],
    }];
    let server = kyso::service::start(c).await.unwrap();
    let addr = server.addr;
    let doc = fixture("two-signatures.pdf");

    // The client certificate alone authenticates, as the subject it names.
    let mut v = VerificationServiceClient::new(tls_channel(addr, &tls, Some("dms")).await);
    let r = v
        .verify_document(with_token(None, verify_request(doc.clone(), "tls-1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.report.unwrap().verdict, pb::Verdict::Valid as i32);

    // A certificate from the same CA whose subject has no roles is refused.
    let mut v = VerificationServiceClient::new(tls_channel(addr, &tls, Some("stranger")).await);
    let err = v
        .verify_document(with_token(None, verify_request(doc.clone(), "tls-2")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("CN=stranger"), "{}", err.message());

    // Without a client certificate the handshake fails; plain HTTP/2 gets nothing either.
    let mut v = VerificationServiceClient::new(tls_channel(addr, &tls, None).await);
    let refused = v
        .verify_document(with_token(Some(VERIFIER), verify_request(doc.clone(), "x")))
        .await;
    assert!(
        refused.is_err(),
        "a client without a certificate was served"
    );
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let refused = VerificationServiceClient::new(plain)
        .verify_document(with_token(Some(VERIFIER), verify_request(doc, "x")))
        .await;
    assert!(refused.is_err(), "a plaintext client was served");

    // The CLI client over mutual TLS; then the record names the certificate's subject.
    let f = dir.path().join("doc.pdf");
    std::fs::write(&f, fixture("two-signatures.pdf")).unwrap();
    let (t, f2) = (tls.clone(), f.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
            .args(["client", "verify"])
            .arg(&f2)
            .args(["--server", &format!("https://{addr}"), "--ca"])
            .arg(t.join("ca.pem"))
            .arg("--cert")
            .arg(t.join("dms.pem"))
            .arg("--key")
            .arg(t.join("dms.key"))
            .args(["--document-number", "tls-cli"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut a = AuditServiceClient::new(tls_channel(addr, &tls, Some("dms")).await);
    let found = a
        .query_records(with_token(
            Some(ADMIN),
            pb::QueryRecordsRequest {
                document_number: Some("tls-cli".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.records[0].principal, subject);

    // The HTTP side speaks the same TLS: the certificate is the principal there too.
    let http = server.http_addr;
    assert!(server.http_tls);
    let (t, d) = (tls.clone(), fixture("two-signatures.pdf"));
    let (ok, stranger, none) = tokio::task::spawn_blocking(move || {
        let post = |client: Option<&str>| {
            let mut request = format!(
                "POST /api/v1/verify?document_number=tls-http HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/pdf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                d.len()
            )
            .into_bytes();
            request.extend_from_slice(&d);
            https(http, &t, client, &request)
        };
        (post(Some("dms")), post(Some("stranger")), post(None))
    })
    .await
    .unwrap();
    let (status, body) = ok.expect("served over TLS");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"verdict\":\"VALID\""), "{body}");
    let (status, body) = stranger.expect("answered");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CN=stranger"), "{body}");
    assert!(
        none.is_err(),
        "a client without a certificate was served over HTTP"
    );
    let plain = std::net::TcpStream::connect(http).and_then(|mut c| {
        use std::io::{Read, Write};
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        Ok(answer)
    });
    assert!(
        !plain.unwrap_or_default().starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served beside TLS"
    );
    let found = a
        .query_records(with_token(
            Some(ADMIN),
            pb::QueryRecordsRequest {
                document_number: Some("tls-http".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.records[0].principal, subject);
    assert_eq!(found.records[0].method, "POST /api/v1/verify");
    // The stranger's refusal is a record too (refused before its metadata was read).
    let all = a
        .query_records(with_token(
            Some(ADMIN),
            pb::QueryRecordsRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(all.records.iter().any(|r| r.method == "POST /api/v1/verify"
        && r.error
            .as_deref()
            .is_some_and(|e| e.contains("CN=stranger"))));
    server.stop().await.unwrap();
}

/// One HTTP/1.1 exchange over TLS with `addr`, trusting `dir/ca.pem`, with the client
/// certificate `client` from `dir`: the status and the body, or why the TLS failed.
fn https(
    addr: std::net::SocketAddr,
    dir: &Path,
    client: Option<&str>,
    request: &[u8],
) -> Result<(u16, String), String> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
    use std::io::{Read, Write};
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(dir.join("ca.pem")).unwrap();
    if let Some(c) = client {
        b.set_certificate_chain_file(dir.join(format!("{c}.pem")))
            .unwrap();
        b.set_private_key_file(dir.join(format!("{c}.key")), SslFiletype::PEM)
            .unwrap();
    }
    b.set_alpn_protos(b"\x08http/1.1").unwrap();
    let mut config = b.build().configure().unwrap();
    config.set_verify_hostname(false);
    config.param_mut().set_ip(addr.ip()).unwrap();
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let mut tls = config.connect("kyso", tcp).map_err(|e| e.to_string())?;
    tls.write_all(request).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_signatures_and_get_signed_revision() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let ch = channel(server.addr).await;
    let mut v = VerificationServiceClient::new(ch.clone());
    let doc = fixture("two-signatures.pdf");

    let found = v
        .extract_signatures(with_token(
            Some(VERIFIER),
            pb::ExtractSignaturesRequest {
                document: doc.clone().into(),
                metadata: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.signatures.len(), 2);
    assert_eq!(found.revisions, 3, "the original and two signed updates");
    let numbers: Vec<u32> = found.signatures.iter().map(|s| s.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(found.signatures.iter().all(|s| s.byte_range.len() == 4));
    assert!(
        found.signatures[0].contents.starts_with(&[0x30]),
        "the DER CMS, not hex"
    );
    assert_eq!(found.sha256, hex::encode(openssl::sha::sha256(&doc)));

    for number in [1, 2] {
        let signed = v
            .get_signed_revision(with_token(
                Some(VERIFIER),
                pb::GetSignedRevisionRequest {
                    document: doc.clone().into(),
                    signature: number,
                    metadata: None,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let expected = kyso::signed_version(&doc, number as usize).unwrap();
        assert_eq!(signed.signed_revision, expected, "signature {number}");
        assert_eq!(signed.sha256, hex::encode(openssl::sha::sha256(expected)));
        assert!(!signed.audit_record_id.is_empty());
    }
    for (number, code) in [(3, Code::NotFound), (0, Code::InvalidArgument)] {
        let e = v
            .get_signed_revision(with_token(
                Some(VERIFIER),
                pb::GetSignedRevisionRequest {
                    document: doc.clone().into(),
                    signature: number,
                    metadata: None,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "signature {number}: {e}");
    }
    let e = v
        .extract_signatures(with_token(
            Some(VERIFIER),
            pb::ExtractSignaturesRequest {
                document: b"%PDF-1.7 truncated".to_vec().into(),
                metadata: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    // Each call is in the log, the refused ones with their status.
    let mut a = AuditServiceClient::new(ch);
    let records = a
        .query_records(with_token(
            Some(AUDITOR),
            pb::QueryRecordsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .records;
    let methods = |suffix: &str| {
        records
            .iter()
            .filter(|r| r.method.ends_with(suffix))
            .map(|r| r.error.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(methods("/ExtractSignatures").len(), 2);
    let revisions = methods("/GetSignedRevision");
    assert_eq!(revisions.len(), 4, "{revisions:?}");
    assert!(revisions.iter().any(|e| e.starts_with("NotFound")));
    server.stop().await.unwrap();
}

/// Sends the first chunk of a stream and then nothing more; returns the call.
fn stalled_stream(
    ch: &Channel,
    number: &str,
    timeout: Option<&str>,
) -> (
    tokio::sync::mpsc::Sender<pb::VerifyDocumentChunk>,
    tokio::task::JoinHandle<Result<tonic::Response<pb::VerifyDocumentResponse>, tonic::Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::VerifyDocumentChunk>(4);
    let first = pb::VerifyDocumentChunk {
        metadata: Some(pb::CallerMetadata {
            document_number: number.into(),
            ..Default::default()
        }),
        options: None,
        data: fixture("two-signatures.pdf")[..1000].to_vec().into(),
    };
    tx.try_send(first).unwrap();
    let mut request = with_token(
        Some(VERIFIER),
        tokio_stream::wrappers::ReceiverStream::new(rx),
    );
    if let Some(t) = timeout {
        request
            .metadata_mut()
            .insert("grpc-timeout", t.parse().unwrap());
    }
    let mut v = VerificationServiceClient::new(ch.clone());
    let call = tokio::spawn(async move { v.verify_document_stream(request).await });
    (tx, call)
}

/// The records `query` finds, waiting up to 10 s for one to appear.
async fn records_matching(ch: &Channel, query: pb::QueryRecordsRequest) -> Vec<pb::AuditRecord> {
    let mut a = AuditServiceClient::new(ch.clone());
    let started = std::time::Instant::now();
    loop {
        let records = a
            .query_records(with_token(Some(AUDITOR), query.clone()))
            .await
            .unwrap()
            .into_inner()
            .records;
        if !records.is_empty() || started.elapsed().as_secs() > 10 {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The records with this document number, waiting up to 10 s for one to appear.
async fn records_numbered(ch: &Channel, number: &str) -> Vec<pb::AuditRecord> {
    let query = pb::QueryRecordsRequest {
        document_number: Some(number.into()),
        ..Default::default()
    };
    records_matching(ch, query).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_is_honoured_and_the_request_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.request_timeout_seconds = 1;
    let server = kyso::service::start(c).await.unwrap();
    let ch = channel(server.addr).await;

    // The service's own limit: a stream still arriving after a second is cut off.
    let started = std::time::Instant::now();
    let (_tx, call) = stalled_stream(&ch, "server-limit", None);
    let e = tokio::time::timeout(std::time::Duration::from_secs(10), call)
        .await
        .expect("the service cut the stalled stream off")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(e.message().contains("still arriving"), "{e}");
    assert!(e.message().contains("request_timeout_seconds"), "{e}");
    assert!(started.elapsed().as_millis() < 5000);

    // A shorter deadline from the caller wins over the service's.
    let started = std::time::Instant::now();
    let (_tx, call) = stalled_stream(&ch, "caller-limit", Some("200m"));
    call.await.unwrap().unwrap_err();
    assert!(
        started.elapsed().as_millis() < 900,
        "{:?}",
        started.elapsed()
    );

    for number in ["server-limit", "caller-limit"] {
        let records = records_numbered(&ch, number).await;
        assert_eq!(records.len(), 1, "{number}");
        let error = records[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("DeadlineExceeded"), "{number}: {error}");
    }

    // A deadline that is not one is named.
    let mut v = VerificationServiceClient::new(ch.clone());
    let mut request = with_token(
        Some(VERIFIER),
        verify_request(fixture("two-signatures.pdf"), "garbled"),
    );
    request
        .metadata_mut()
        .insert("grpc-timeout", "soon".parse().unwrap());
    let e = v.verify_document(request).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("grpc-timeout"), "{e}");
    let newest = AuditServiceClient::new(ch.clone())
        .query_records(with_token(
            Some(AUDITOR),
            pb::QueryRecordsRequest {
                caller: Some("dms-haugiang".into()),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records;
    let error = newest[0].error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("InvalidArgument") && error.contains("grpc-timeout"),
        "{error}"
    );

    // A deadline the work fits in changes nothing.
    let mut request = with_token(
        Some(VERIFIER),
        verify_request(fixture("two-signatures.pdf"), "in-time"),
    );
    request.set_timeout(std::time::Duration::from_secs(30));
    let answer = v.verify_document(request).await.unwrap().into_inner();
    assert_eq!(answer.report.unwrap().verdict, pb::Verdict::Valid as i32);
    assert_eq!(
        records_numbered(&ch, "in-time").await[0].verdict_code,
        pb::Verdict::Valid as i32
    );

    let check = AuditServiceClient::new(ch)
        .verify_log(with_token(Some(AUDITOR), pb::VerifyLogRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(check.ok, "{}", check.problem);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_caller_abandons_is_recorded_as_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let ch = channel(server.addr).await;

    // The service is waiting for the rest of the document when the caller gives up.
    let (tx, call) = stalled_stream(&ch, "abandoned", None);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    call.abort();
    drop(tx);

    let records = records_numbered(&ch, "abandoned").await;
    assert_eq!(records.len(), 1, "the abandoned request has its record");
    let error = records[0].error.as_deref().unwrap_or_default();
    assert!(error.starts_with("Cancelled"), "{error}");
    assert_eq!(records[0].principal, "dms-haugiang");
    server.stop().await.unwrap();
}

/// Runs the kyso binary to the end; (exit code, stdout, stderr).
fn kyso_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(args)
        .env_remove("KYSO_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kyso serve` as an operator runs it: a configuration file named by `KYSO_CONFIG`, an
/// environment variable and a flag overriding it; the clerk's and auditor's commands
/// against it; SIGTERM while requests are in flight, which are answered and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyso_serve_runs_from_its_configuration_and_drains_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sha = |t: &str| hex::encode(openssl::sha::sha256(t.as_bytes()));
    let config = format!(
        "listen = \"127.0.0.1:1\"\n\
         data_dir = \"/nonexistent/kyso-data\"\n\
         trust = [{:?}]\n\
         intermediates = [{:?}]\n\
         revocation = \"offline\"\n\
         max_concurrent_verifications = 1\n\
         [[auth.tokens]]\nsha256 = \"{}\"\nprincipal = \"dms-haugiang\"\nroles = [\"verifier\"]\n\
         [[auth.tokens]]\nsha256 = \"{}\"\nprincipal = \"thanh-tra\"\nroles = [\"auditor\"]\n",
        pki("root-ca.pem").to_str().unwrap(),
        pki("party-ca.pem").to_str().unwrap(),
        sha(VERIFIER),
        sha(AUDITOR),
    );
    let config_file = dir.path().join("kyso.toml");
    std::fs::write(&config_file, config).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("KYSO_CONFIG", &config_file)
        .env("KYSO_DATA_DIR", &data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    assert!(banner.contains(&data.display().to_string()), "{banner}");
    let addr: std::net::SocketAddr = banner
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));
    let url = format!("http://{addr}");

    // The clerk's commands.
    let doc = dir.path().join("494-BC-TU.pdf");
    std::fs::write(&doc, fixture("two-signatures.pdf")).unwrap();
    let doc = doc.to_str().unwrap();
    let (code, text, err) = kyso_cli(
        &[
            "client",
            "verify",
            doc,
            "--server",
            &url,
            "--token",
            VERIFIER,
            "--document-number",
            "494-BC/TU",
        ],
        &[],
    );
    assert_eq!(code, 0, "{text}{err}");
    assert!(text.contains("HỢP LỆ"), "{text}");
    let (code, text, err) = kyso_cli(
        &["client", "verify", doc, "--server", &url, "--stream"],
        &[("KYSO_TOKEN", VERIFIER)],
    );
    assert_eq!(code, 0, "{text}{err}");
    // One JSON dialect: the client prints the report `kyso verify --format json` writes,
    // with the service's audit record id and summary.
    let (code, text, err) = kyso_cli(
        &[
            "client", "verify", doc, "--server", &url, "--format", "json", "--lang", "en",
        ],
        &[("KYSO_TOKEN", VERIFIER)],
    );
    assert_eq!(code, 0, "{text}{err}");
    let json: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON object");
    let cli = verify_fixture("two-signatures.pdf").to_json("494-BC-TU.pdf");
    assert_eq!(json["verdict"], "VALID");
    assert_eq!(json["sha256"], cli["sha256"]);
    assert_eq!(
        json["signatures"][0]["signer"]["common_name"],
        cli["signatures"][0]["signer"]["common_name"]
    );
    assert_eq!(json["policy"]["conforms"], true);
    assert!(!json["audit_record_id"].as_str().unwrap().is_empty());
    assert!(
        json["summary"].as_str().unwrap().contains("VALID"),
        "{json}"
    );
    let (code, _, err) = kyso_cli(&["client", "verify", doc, "--server", &url], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Unauthenticated") || err.contains("token"),
        "{err}"
    );

    // The auditor's, through the service.
    let (code, text, err) = kyso_cli(
        &[
            "client",
            "audit",
            "query",
            "--server",
            &url,
            "--token",
            AUDITOR,
            "--document-number",
            "494-BC/TU",
            "--format",
            "csv",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(rows[0].iter().any(|c| c == "VALID"), "{text}");
    assert!(
        rows[0].iter().any(|c| c.contains("Trần Văn Huyến")),
        "{text}"
    );
    let (code, text, err) = kyso_cli(
        &[
            "client", "audit", "verify", "--server", &url, "--token", AUDITOR,
        ],
        &[],
    );
    assert_eq!(code, 0, "{text}{err}");

    // Requests in flight when SIGTERM comes: each stream has sent its first chunk, the
    // rest follows after the signal; every one is answered.
    let ch = channel(addr).await;
    let whole = fixture("two-signatures.pdf");
    let calls: Vec<_> = (0..4)
        .map(|i| stalled_stream(&ch, &format!("in-flight-{i}"), None))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refused = Channel::from_shared(url.clone()).unwrap().connect().await;
    assert!(refused.is_err(), "a new connection was taken after SIGTERM");
    let mut ids = Vec::new();
    for (tx, call) in calls {
        tx.send(pb::VerifyDocumentChunk {
            metadata: None,
            options: None,
            data: whole[1000..].to_vec().into(),
        })
        .await
        .unwrap();
        drop(tx);
        let answer = call.await.unwrap().unwrap().into_inner();
        assert_eq!(answer.report.unwrap().verdict, pb::Verdict::Valid as i32);
        ids.push(answer.audit_record_id);
    }
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");

    // The stopped server's data: the chain verifies, and the in-flight answers are there.
    let data = data.to_str().unwrap();
    let (code, text, _) = kyso_cli(&["audit", "verify", "--data-dir", data], &[]);
    assert_eq!(code, 0, "{text}");
    let (code, text, err) = kyso_cli(
        &[
            "audit",
            "query",
            "--data-dir",
            data,
            "--format",
            "json",
            "--limit",
            "100",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let r = records
            .iter()
            .find(|r| r["id"].as_str() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("record {id} of in-flight-{i} is missing"));
        assert_eq!(r["document_number"], format!("in-flight-{i}"));
        assert_eq!(r["verdict"], "VALID");
    }
    let (code, text, _) = kyso_cli(
        &["audit", "query", "--data-dir", data, "--verdict", "VALID"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        text.starts_with("sequence"),
        "a table with a header: {text}"
    );
    assert!(text.contains("494-BC/TU"), "{text}");
}

/// What the log alone cannot prove — that its tail was not cut together with the
/// checkpoints stored beside it — a checkpoint the auditor saved earlier does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_checkpoint_catches_a_log_cut_with_its_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let doc = fixture("two-signatures.pdf");
    let verify_some = |addr, n: usize| {
        let doc = doc.clone();
        async move {
            let mut v = VerificationServiceClient::new(channel(addr).await);
            for i in 0..n {
                v.verify_document(with_token(
                    Some(VERIFIER),
                    verify_request(doc.clone(), &format!("{i}")),
                ))
                .await
                .unwrap();
            }
        }
    };
    let server = kyso::service::start(config(&data)).await.unwrap();
    verify_some(server.addr, 3).await;
    server.stop().await.unwrap(); // seals records 1–3 with a checkpoint

    let server = kyso::service::start(config(&data)).await.unwrap();
    let url = format!("http://{}", server.addr);
    let saved = dir.path().join("checkpoint.json");
    let (code, json, err) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            kyso_cli(
                &[
                    "client",
                    "audit",
                    "checkpoint",
                    "--server",
                    &url,
                    "--token",
                    AUDITOR,
                    "--format",
                    "json",
                ],
                &[],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    std::fs::write(&saved, &json).unwrap();
    let checkpoint: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(checkpoint["tree_size"], 3);
    let public_key = dir.path().join("kyso-audit.vkey");
    std::fs::write(&public_key, checkpoint["verifier_key"].as_str().unwrap()).unwrap();
    verify_some(server.addr, 2).await;
    server.stop().await.unwrap();

    // Cut the log from record 3 on, and every checkpoint of what was cut with it.
    let db = rusqlite::Connection::open(data.join("audit.sqlite3")).unwrap();
    db.execute_batch(
        // The tree's hashes of the records cut go too (stored_hash_count(2) = 3): what they
        // left behind would tell of the cut (a unit test of src/audit shows).
        "DELETE FROM records WHERE sequence >= 3; DELETE FROM tree_checkpoints WHERE size >= 3;
         DELETE FROM tree_hashes WHERE idx >= 3;",
    )
    .unwrap();
    drop(db);
    let data_s = data.to_str().unwrap();
    let (saved_s, key_s) = (saved.to_str().unwrap(), public_key.to_str().unwrap());
    let (code, text, _) = kyso_cli(&["audit", "verify", "--data-dir", data_s], &[]);
    assert_eq!(code, 0, "the log alone agrees with itself: {text}");
    for extra in [vec![], vec!["--public-key", key_s]] {
        let mut args = vec![
            "audit",
            "verify",
            "--data-dir",
            data_s,
            "--checkpoint",
            saved_s,
        ];
        args.extend(extra);
        let (code, text, err) = kyso_cli(&args, &[]);
        assert_eq!(code, 1, "{text}{err}");
        assert!(text.contains("FAILED at record 3"), "{text}");
        assert!(text.contains("kept checkpoint"), "{text}");
    }
    // A key kept elsewhere that is not the service's: the saved checkpoint does not verify.
    let other = dir.path().join("other.pub.pem");
    let stranger = openssl::pkey::PKey::generate_ed25519().unwrap();
    std::fs::write(&other, stranger.public_key_to_pem().unwrap()).unwrap();
    let (code, text, _) = kyso_cli(
        &[
            "audit",
            "verify",
            "--data-dir",
            data_s,
            "--checkpoint",
            saved_s,
            "--public-key",
            other.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("does not verify"), "{text}");
    // A file that is no checkpoint is named.
    let (code, _, err) = kyso_cli(
        &[
            "audit",
            "verify",
            "--data-dir",
            data_s,
            "--checkpoint",
            key_s,
        ],
        &[],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("kyso-audit.vkey"), "{err}");

    // The same through the service, which has since written a new record 3.
    let server = kyso::service::start(config(&data)).await.unwrap();
    let url = format!("http://{}", server.addr);
    let (plain, with_saved) = tokio::task::spawn_blocking({
        let saved = saved_s.to_owned();
        move || {
            let base = [
                "client", "audit", "verify", "--server", &url, "--token", AUDITOR,
            ];
            let plain = kyso_cli(&base, &[]);
            let mut args = base.to_vec();
            args.extend(["--checkpoint", &saved]);
            (plain, kyso_cli(&args, &[]))
        }
    })
    .await
    .unwrap();
    assert_eq!(plain.0, 0, "{}{}", plain.1, plain.2);
    assert_eq!(with_saved.0, 1, "{}{}", with_saved.1, with_saved.2);
    assert!(
        with_saved.1.contains("FAILED at record 3"),
        "{}",
        with_saved.1
    );
    server.stop().await.unwrap();
}

/// Calls `path` with `message`, whatever the method expects.
async fn raw_call<M: prost::Message + Default + Send + Sync + 'static>(
    ch: &Channel,
    path: &'static str,
    message: M,
) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<M, pb::VerifyDocumentResponse>::default();
    grpc.unary(
        with_token(Some(VERIFIER), message),
        http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(|_| ())
    .unwrap_err()
}

/// Requests tonic refuses before a kyso handler runs get the API's codes and their records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_any_handler_are_recorded_with_the_api_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_document_bytes = 100_000;
    let server = kyso::service::start(c).await.unwrap();
    let ch = channel(server.addr).await;

    // Not the method's message: a varint where the document's bytes should be.
    let e = raw_call(
        &ch,
        "/kyso.v1.VerificationService/VerifyDocument",
        pb::VerifyLogRequest {
            from_sequence: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("not a valid"), "{e}");

    // Over the message limit (the document limit plus 1 MiB for the rest).
    let e = raw_call(
        &ch,
        "/kyso.v1.VerificationService/VerifyDocument",
        verify_request(vec![b'%'; 1_300_000], "huge"),
    )
    .await;
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");

    // No such method.
    let e = raw_call(
        &ch,
        "/kyso.v1.VerificationService/Forge",
        pb::GetRecordRequest { id: "1".into() },
    )
    .await;
    assert_eq!(e.code(), Code::Unimplemented, "{e}");

    // Health checks are not requests to kyso and leave no record.
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();

    let records = AuditServiceClient::new(ch)
        .query_records(with_token(Some(ADMIN), pb::QueryRecordsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .records;
    let seen: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.principal.as_str(),
                r.error.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (method, code) in [
        ("/kyso.v1.VerificationService/Forge", "Unimplemented"),
        (
            "/kyso.v1.VerificationService/VerifyDocument",
            "ResourceExhausted",
        ),
        (
            "/kyso.v1.VerificationService/VerifyDocument",
            "InvalidArgument",
        ),
    ] {
        assert!(
            seen.iter()
                .any(|(m, p, e)| *m == method && *p == "dms-haugiang" && e.starts_with(code)),
            "{method} {code}: {seen:?}"
        );
    }
    server.stop().await.unwrap();
}

/// A caller that walks away while its message is still arriving — before tonic has a whole
/// message to hand to a handler — still leaves a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_gone_mid_message_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let addr = server.addr;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{addr}/kyso.v1.VerificationService/VerifyDocument"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("authorization", format!("Bearer {VERIFIER}"))
    .body(())
    .unwrap();
    let (_response, mut body) = client.send_request(request, false).unwrap();
    // A gRPC frame announcing 65,536 bytes, of which 100 come.
    let mut half = vec![0u8, 0, 1, 0, 0];
    half.extend_from_slice(&[0x0a; 100]);
    body.send_data(half.into(), false).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    body.send_reset(h2::Reason::CANCEL);

    let query = pb::QueryRecordsRequest {
        caller: Some("dms-haugiang".into()),
        ..Default::default()
    };
    let records = records_matching(&channel(addr).await, query).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].method,
        "/kyso.v1.VerificationService/VerifyDocument"
    );
    let error = records[0].error.as_deref().unwrap_or_default();
    assert!(error.starts_with("Cancelled"), "{error}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_follows_pages_past_the_services_page_size() {
    let dir = tempfile::tempdir().unwrap();
    // 1,205 records, more than one page of 1,000.
    let log = kyso::service::open_audit(dir.path(), None, None).unwrap();
    for i in 0..1205u64 {
        log.append(kyso::audit::Entry {
            time: time::OffsetDateTime::now_utc(),
            principal: "dms".into(),
            peer: "127.0.0.1:1".into(),
            method: "/kyso.v1.VerificationService/VerifyDocument".into(),
            document_sha256: Some(format!("{i:064x}")),
            document_size: Some(1),
            metadata: Default::default(),
            signatures: Vec::new(),
            verdict: "VALID".into(),
            error: None,
            kyso_version: "test".into(),
            trust_fingerprint: String::new(),
            policy: None,
        })
        .await
        .unwrap();
    }
    log.close();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let url = format!("http://{}", server.addr);
    let rows = |limit: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let (code, csv, err) = kyso_cli(
                &[
                    "client",
                    "audit",
                    "query",
                    "--server",
                    &url,
                    "--token",
                    AUDITOR,
                    "--verdict",
                    "VALID",
                    "--limit",
                    limit,
                    "--format",
                    "csv",
                ],
                &[],
            );
            assert_eq!(code, 0, "{err}");
            csv.lines().count() - 1
        })
    };
    assert_eq!(rows("1100").await.unwrap(), 1100);
    assert_eq!(
        rows("5000").await.unwrap(),
        1205,
        "every record, over two pages"
    );
    assert_eq!(rows("7").await.unwrap(), 7);
    server.stop().await.unwrap();
}

#[test]
fn the_client_names_why_it_failed_in_its_exit_status() {
    // Nothing listens on port 9 of the loopback: unreachable (EX_UNAVAILABLE), not 4.
    let doc = root().join("certs-test/pdf/two-signatures.pdf");
    let (code, _, err) = kyso_cli(
        &[
            "client",
            "verify",
            doc.to_str().unwrap(),
            "--server",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("cannot reach http://127.0.0.1:9"), "{err}");
    let (code, _, err) = kyso_cli(
        &[
            "client",
            "verify",
            "/nonexistent.pdf",
            "--server",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("cannot read /nonexistent.pdf"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_client_gets_its_own_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let url = format!("http://{}", server.addr);
    let doc = root().join("certs-test/pdf/two-signatures.pdf");
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        kyso_cli(
            &[
                "client",
                "verify",
                doc.to_str().unwrap(),
                "--server",
                &url,
                "--token",
                "wrong",
            ],
            &[],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 77, "EX_NOPERM: {err}");
    assert!(
        err.contains("Unauthenticated: the bearer token is not known"),
        "{err}"
    );
    server.stop().await.unwrap();
}

#[test]
fn the_protocol_names_changes_with_enums_beside_the_old_strings() {
    let report = kyso::service::convert::report(&verify_fixture("two-signatures.pdf"));
    let changes = &report.signatures[0].modifications;
    assert!(
        !changes.is_empty(),
        "the seal's revision changed what the person signed"
    );
    for c in changes {
        let class = pb::ChangeClass::try_from(c.change_class).expect("a known class");
        let verdict = pb::ChangeVerdict::try_from(c.change_verdict).expect("a known verdict");
        let kind = pb::ChangeKind::try_from(c.change_kind).expect("a known kind");
        assert_ne!(class, pb::ChangeClass::Unspecified);
        assert_ne!(verdict, pb::ChangeVerdict::Unspecified);
        assert_ne!(kind, pb::ChangeKind::Unspecified);
        // The enum's name is the deprecated string's, upper-cased and prefixed.
        #[allow(deprecated)]
        {
            assert_eq!(
                class.as_str_name(),
                format!("CHANGE_CLASS_{}", c.class.to_uppercase())
            );
            assert_eq!(
                verdict.as_str_name(),
                format!("CHANGE_VERDICT_{}", c.verdict.to_uppercase())
            );
            assert_eq!(
                kind.as_str_name(),
                format!("CHANGE_KIND_{}", c.kind.to_uppercase())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bytes_in_flight_have_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_request_bytes_in_flight = 1 << 20;
    c.max_document_bytes = 1 << 20;
    let server = kyso::service::start(c).await.unwrap();
    let ch = channel(server.addr).await;
    // A stream that sends 700 KB and holds its request open.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::VerifyDocumentChunk>(4);
    tx.send(pb::VerifyDocumentChunk {
        metadata: None,
        options: None,
        data: vec![b'%'; 700 << 10].into(),
    })
    .await
    .unwrap();
    let mut v = VerificationServiceClient::new(ch.clone());
    let held = tokio::spawn(async move {
        v.verify_document_stream(with_token(
            Some(VERIFIER),
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
    });
    // Until the service has taken those bytes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut v = VerificationServiceClient::new(ch.clone());
    let refused = v
        .verify_document(with_token(
            Some(VERIFIER),
            verify_request(vec![b'%'; 700 << 10], "over"),
        ))
        .await
        .expect_err("over the budget");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("max_request_bytes_in_flight"),
        "{}",
        refused.message()
    );
    // Once the held request ends, its bytes are given back.
    drop(tx);
    let _ = held.await.unwrap();
    let answer = v
        .verify_document(with_token(
            Some(VERIFIER),
            verify_request(fixture("two-signatures.pdf"), "after"),
        ))
        .await
        .expect("within the budget again")
        .into_inner();
    assert_eq!(answer.report.unwrap().verdict, pb::Verdict::Valid as i32);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_call_is_served_beside_five_thousand_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    // Slow-loris: connections that never send the HTTP/2 preface, and some that stop in it.
    let mut idle = Vec::new();
    for i in 0..5000 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        if i % 10 == 0 {
            use tokio::io::AsyncWriteExt;
            s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        }
        idle.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let mut a = AuditServiceClient::new(channel(server.addr).await);
    a.query_records(with_token(
        Some(AUDITOR),
        pb::QueryRecordsRequest::default(),
    ))
    .await
    .expect("answered");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(100),
        "a normal call took {took:?} beside 5,000 idle connections"
    );
    drop(idle);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_and_connections_over_the_cap_wait() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.idle_timeout_seconds = 2;
    c.keepalive_seconds = 1;
    c.max_connections = 2;
    let server = kyso::service::start(c).await.unwrap();
    // A connection that sends nothing is closed after its idle timeout.
    let mut quiet = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = Vec::new();
    let opened = std::time::Instant::now();
    // The read ends (end of stream, or a reset) when the server closes the connection.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        quiet.read_to_end(&mut buf),
    )
    .await
    .expect("closed by the server");
    assert!(
        opened.elapsed() >= std::time::Duration::from_millis(1900),
        "closed by the idle timer, not at once ({:?})",
        opened.elapsed()
    );
    // Two quiet connections hold both slots: a third waits until the idle timer frees one,
    // then it is served.
    let _a = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let _b = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut audit = AuditServiceClient::new(channel(server.addr).await);
    audit
        .query_records(with_token(
            Some(AUDITOR),
            pb::QueryRecordsRequest::default(),
        ))
        .await
        .expect("served once a slot is free");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "the third connection waited for a slot ({:?})",
        started.elapsed()
    );
    server.stop().await.unwrap();
}

/// Starts `kyso serve` on `data` with the test tokens; its address.
fn spawn_serve(dir: &Path, data: &Path) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let sha = |t: &str| hex::encode(openssl::sha::sha256(t.as_bytes()));
    let config = format!(
        "trust = [{:?}]\n\
         intermediates = [{:?}]\n\
         revocation = \"offline\"\n\
         [[auth.tokens]]\nsha256 = \"{}\"\nprincipal = \"dms-haugiang\"\nroles = [\"verifier\"]\n",
        pki("root-ca.pem").to_str().unwrap(),
        pki("party-ca.pem").to_str().unwrap(),
        sha(VERIFIER),
    );
    let config_file = dir.join("kyso-kill.toml");
    std::fs::write(&config_file, config).unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("KYSO_CONFIG", &config_file)
        .env("KYSO_DATA_DIR", data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let addr = banner
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no address in {banner:?}"));
    (server, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_survives_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let doc = fixture("two-signatures.pdf");
    let mut answered: Vec<u64> = Vec::new();
    for round in 0..3 {
        let (mut server, addr) = spawn_serve(dir.path(), &data);
        let ch = channel(addr).await;
        // Eight clients verify as fast as they can; the server is killed under them.
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let (ch, doc) = (ch.clone(), doc.clone());
                tokio::spawn(async move {
                    let mut v = VerificationServiceClient::new(ch);
                    let mut ids = Vec::new();
                    for i in 0.. {
                        let request = verify_request(doc.clone(), &format!("{round}-{c}-{i}"));
                        match v.verify_document(with_token(Some(VERIFIER), request)).await {
                            Ok(r) => {
                                ids.push(r.into_inner().audit_record_id.parse::<u64>().unwrap())
                            }
                            Err(_) => break,
                        }
                    }
                    ids
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        server.kill().unwrap(); // SIGKILL
        let _ = server.wait();
        for c in clients {
            answered.extend(c.await.unwrap());
        }
    }
    assert!(answered.len() > 10, "only {} answers", answered.len());
    // Every answer a client received names a record that is in the log, and the log
    // verifies, and kyso extends it again.
    let store = kyso::audit::sqlite::SqliteStore::open(&data.join("audit.sqlite3")).unwrap();
    for id in &answered {
        use kyso::audit::AuditStore;
        assert!(
            store.get(*id).unwrap().is_some(),
            "record {id} was answered, then lost"
        );
    }
    drop(store);
    let (code, text, err) = kyso_cli(
        &["audit", "verify", "--data-dir", data.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{text}{err}");
    let (mut server, _) = spawn_serve(dir.path(), &data);
    server.kill().unwrap();
    let _ = server.wait();
}

/// `VerifyDocument` answers with the receipt of its record; `GetInclusionProof` and
/// `GetConsistencyProof` give the auditor's proofs; all check with the verifier key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_receipts_and_the_log_gives_proofs() {
    use kyso::audit::tree::{Proven, VerifierKey};
    use kyso::service::convert;
    let dir = tempfile::tempdir().unwrap();
    let server = kyso::service::start(config(dir.path())).await.unwrap();
    let mut v = VerificationServiceClient::new(channel(server.addr).await);
    let mut a = AuditServiceClient::new(channel(server.addr).await);
    let doc = fixture("two-signatures.pdf");
    let mut answers = Vec::new();
    for i in 0..3 {
        let r = v
            .verify_document(with_token(
                Some(VERIFIER),
                verify_request(doc.clone(), &format!("{i}/QĐ-UBND")),
            ))
            .await
            .unwrap()
            .into_inner();
        answers.push(r);
    }
    let cp = a
        .get_checkpoint(with_token(Some(AUDITOR), pb::GetCheckpointRequest {}))
        .await
        .unwrap()
        .into_inner();
    let key = VerifierKey::parse(&cp.verifier_key).unwrap();
    assert_eq!(key.name(), "kyso.localhost/audit");
    assert!(cp
        .note
        .starts_with(&format!("kyso.localhost/audit\n{}\n", cp.tree_size)));
    for r in &answers {
        let receipt = r.receipt.as_ref().expect("a receipt");
        let id: u64 = r.audit_record_id.parse().unwrap();
        match convert::from_receipt(receipt).verify(&key).unwrap() {
            Proven::Inclusion { leaf_index, .. } => assert_eq!(leaf_index, id - 1),
            other => panic!("{other:?}"),
        }
    }
    let id = answers[0].audit_record_id.clone();
    let proof = a
        .get_inclusion_proof(with_token(
            Some(AUDITOR),
            pb::GetInclusionProofRequest {
                record_id: id.clone(),
                tree_size: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(proof.tree_size >= 3);
    assert!(convert::from_receipt(&proof).verify(&key).is_ok());
    let consistency = a
        .get_consistency_proof(with_token(
            Some(AUDITOR),
            pb::GetConsistencyProofRequest {
                old_size: 1,
                new_size: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(convert::from_consistency(&consistency)
        .verify(&key, None)
        .is_ok());
    for (request, code) in [
        (
            pb::GetInclusionProofRequest {
                record_id: "9999".into(),
                tree_size: 0,
            },
            Code::InvalidArgument,
        ),
        (
            pb::GetInclusionProofRequest {
                record_id: id.clone(),
                tree_size: 9999,
            },
            Code::NotFound,
        ),
    ] {
        let e = a
            .get_inclusion_proof(with_token(Some(AUDITOR), request))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
    }
    let e = a
        .get_inclusion_proof(with_token(
            Some(VERIFIER),
            pb::GetInclusionProofRequest {
                record_id: id,
                tree_size: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    server.stop().await.unwrap();
}
