//! `deploy/`: the example configuration parses to what it says, and the nginx recipe puts
//! two instances on one PostgreSQL log behind one address for gRPC and one for HTTP. The
//! second test needs PostgreSQL and nginx (Debian's `nginx`): ignored by a plain `cargo
//! test`, run by `.ci/run`, which installs nginx; without nginx it says so and passes,
//! unless `KYSO_TEST_NGINX=required`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/stores.rs"]
mod stores;

use std::io::BufRead;
use std::path::Path;

use common::*;
use kyso::service::config::{Config, Role};
use kyso::service::proto::verification_service_client::VerificationServiceClient;
use kyso::service::proto::{self as pb};
use stores::Backend;

#[test]
fn the_example_configuration_reads_as_it_says() {
    let c = Config::from_file(&root().join("deploy/kyso.toml")).expect("deploy/kyso.toml");
    assert_eq!(c.listen.to_string(), "127.0.0.1:50061");
    assert_eq!(c.http_listen.to_string(), "127.0.0.1:8081");
    assert!(c
        .audit_store
        .as_deref()
        .is_some_and(|s| s.starts_with("postgres://")));
    let location = kyso::audit::Location::parse(c.audit_store.as_deref().unwrap()).unwrap();
    assert!(matches!(location, kyso::audit::Location::Postgres(_)));
    assert_eq!(
        c.audit_origin.as_deref(),
        Some("kyso.tinhuy.example.gov.vn/audit")
    );
    assert_eq!(c.trust_profiles, ["bcy"]);
    let roles: Vec<(&str, &[Role])> = c
        .auth
        .tokens
        .iter()
        .map(|t| (t.principal.as_str(), t.roles.as_slice()))
        .collect();
    assert_eq!(
        roles,
        [
            ("dms-tinhuy", &[Role::Verifier][..]),
            ("thanh-tra", &[Role::Auditor][..])
        ]
    );
    // The tokens the comment names are the ones hashed.
    let sha = |t: &str| hex::encode(openssl::sha::sha256(t.as_bytes()));
    assert_eq!(c.auth.tokens[0].sha256, sha("change-me-dms-token"));
    assert_eq!(c.auth.tokens[1].sha256, sha("change-me-audit-token"));
    // The unit starts kyso on that file.
    let unit = std::fs::read_to_string(root().join("deploy/kyso.service")).unwrap();
    assert!(unit.contains("Environment=KYSO_CONFIG=/etc/kyso/kyso.toml"));
    assert!(unit.contains("ExecStart=/usr/local/bin/kyso serve"));
}

/// A free port on the loopback (bound, then released for the process that takes it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Processes stopped however the test ends.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its workers (killed outright, it would
        // leave them running), kyso drains.
        for c in &mut self.0 {
            let _ = std::process::Command::new("kill")
                .arg(c.id().to_string())
                .status();
        }
        for c in &mut self.0 {
            let stopped = (0..100).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn serve(b: &Backend, data: &Path, grpc: u16, http: u16) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kyso"))
        .args(["serve", "--no-auth", "--revocation", "offline"])
        .args(["--listen", &format!("127.0.0.1:{grpc}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--audit-store", &b.url()])
        .arg("--trust")
        .arg(pki("root-ca.pem"))
        .arg("--intermediates")
        .arg(pki("party-ca.pem"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains("serving gRPC"), "{banner}");
    child
}

/// The verifications an instance answered, from its `/metrics`.
fn verifications(http: u16) -> u64 {
    let text = ureq::get(&format!("http://127.0.0.1:{http}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("kyso_verdicts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 and nginx (.ci/run has both)"]
fn nginx_spreads_grpc_and_http_over_two_instances_of_one_log() {
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        assert_ne!(
            std::env::var("KYSO_TEST_NGINX").as_deref(),
            Ok("required"),
            "nginx is not installed"
        );
        eprintln!("nginx is not installed: the load-balancer recipe is not tried");
        return;
    }
    let b = Backend::postgres();
    drop(b.key());
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let (front_grpc, front_http) = (ports[0], ports[1]);
    let mut children = Children(Vec::new());
    for i in 0..2 {
        let data = b.dir().join(format!("instance-{i}"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(b.dir().join("audit-key.pem"), data.join("audit-key.pem")).unwrap();
        children
            .0
            .push(serve(&b, &data, ports[2 + i], ports[4 + i]));
    }
    // The recipe as shipped, its addresses moved to this test's ports.
    let recipe = std::fs::read_to_string(root().join("deploy/nginx/kyso.conf"))
        .unwrap()
        .replace("127.0.0.1:50051", &format!("127.0.0.1:{front_grpc}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{front_http}"))
        .replace("127.0.0.1:50061", &format!("127.0.0.1:{}", ports[2]))
        .replace("127.0.0.1:50062", &format!("127.0.0.1:{}", ports[3]))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", ports[4]))
        .replace("127.0.0.1:8082", &format!("127.0.0.1:{}", ports[5]));
    let prefix = b.dir().join("nginx");
    std::fs::create_dir_all(&prefix).unwrap();
    std::fs::write(prefix.join("kyso.conf"), recipe).unwrap();
    let p = prefix.display();
    std::fs::write(
        prefix.join("nginx.conf"),
        format!(
            "worker_processes 1;\nerror_log {p}/error.log;\npid {p}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  \
             proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  \
             uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  \
             include {p}/kyso.conf;\n}}\n"
        ),
    )
    .unwrap();
    children.0.push(
        std::process::Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            // Its workers must not hold the test's output open.
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = |port| {
        (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    };
    assert!(up(front_grpc) && up(front_http), "nginx listens");

    let doc = fixture("two-signatures.pdf");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let grpc_ids: Vec<u64> = runtime.block_on(async {
        let channel =
            tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{front_grpc}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let mut v = VerificationServiceClient::new(channel);
        let mut ids = Vec::new();
        for i in 0..10 {
            let r = v
                .verify_document(pb::VerifyDocumentRequest {
                    document: doc.clone().into(),
                    metadata: Some(pb::CallerMetadata {
                        document_number: format!("{i}/grpc"),
                        ..Default::default()
                    }),
                    options: None,
                })
                .await
                .expect("through nginx")
                .into_inner();
            assert!(r.receipt.is_some());
            ids.push(r.audit_record_id.parse().unwrap());
        }
        ids
    });
    let mut http_ids: Vec<u64> = Vec::new();
    for _ in 0..10 {
        let mut r = ureq::post(&format!("http://127.0.0.1:{front_http}/api/v1/verify"))
            .header("content-type", "application/pdf")
            .send(&doc[..])
            .expect("through nginx");
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(v["verdict"], "VALID", "{v}");
        http_ids.push(v["audit_record_id"].as_str().unwrap().parse().unwrap());
    }
    // Both instances answered, and wrote one log.
    let (first, second) = (verifications(ports[4]), verifications(ports[5]));
    assert_eq!(first + second, 20);
    assert!(first > 0 && second > 0, "{first} and {second}");
    let mut ids: Vec<u64> = grpc_ids.into_iter().chain(http_ids).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=20).collect::<Vec<_>>(),
        "one log, numbered as one"
    );
    drop(children);
    let store = b.open();
    let key = b.key();
    let check = kyso::audit::verify_log(store.as_ref(), key.public_key(), 0, None, &[]).unwrap();
    assert!(check.ok, "{}", check.problem);
}
