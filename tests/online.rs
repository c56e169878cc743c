//! Revocation from every source, without the internet: a loopback HTTP server serves CRLs,
//! OCSP answers (a responder built from the test PKI) and caIssuers certificates; the
//! certificates are issued at test time so that they point at the server's port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../certs-test/fixture.rs"]
mod fixture;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use fixture::{CmsSpec, Doc, Identity, OcspStatus, Role, Scheme, SigSpec, Urls};
use kyso::report::{CheckId, Indication, Outcome, SignatureReport, SubIndication};
use kyso::revocation::fetch::{HttpFetcher, Online};
use kyso::revocation::{RevocationData, Source};
use kyso::trust::TrustStore;
use kyso::verify::RevocationMode;
use kyso::{Context, Report};
use time::macros::datetime;
use time::OffsetDateTime;

type Handler = Box<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// A loopback HTTP server: path → handler of the request body. Counts requests per path.
struct Server {
    base: String,
    routes: Arc<Mutex<HashMap<String, Handler>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    http: Arc<tiny_http::Server>,
}

impl Server {
    fn start() -> Server {
        let http = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://{}", http.server_addr().to_ip().unwrap());
        let routes: Arc<Mutex<HashMap<String, Handler>>> = Default::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Default::default();
        let (h, r, c) = (http.clone(), routes.clone(), hits.clone());
        std::thread::spawn(move || {
            for mut request in h.incoming_requests() {
                let path = request.url().to_owned();
                *c.lock().unwrap().entry(path.clone()).or_default() += 1;
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let answer = r.lock().unwrap().get(&path).and_then(|f| f(&body));
                let _ = match answer {
                    Some(bytes) => request.respond(tiny_http::Response::from_data(bytes)),
                    None => request.respond(tiny_http::Response::empty(404)),
                };
            }
        });
        Server {
            base,
            routes,
            hits,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn route(
        &self,
        path: &str,
        handler: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), Box::new(handler));
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.unblock();
    }
}

/// A URL nothing listens at.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/ocsp")
}

/// The runtime PKI: the committed test root → a new sub-CA → a new signer, both pointing at
/// the server (or at `urls` for the signer).
struct Pki {
    root: Identity,
    sub: Identity,
    leaf: Identity,
    tsa: Identity,
}

fn make_pki(server: &Server, leaf_urls: Urls) -> Pki {
    let root = Identity::load(&pki_dir(), "root-ca");
    let sub = fixture::issue(
        "kyso Test CA trực tuyến",
        Some(&root),
        Role::Ca,
        0x2001,
        &Urls {
            crl: Some(server.url("/root.crl")),
            ..Urls::default()
        },
    );
    let leaf = fixture::issue(
        "Lê Văn Trực Tuyến",
        Some(&sub),
        Role::Signer,
        0x3001,
        &leaf_urls,
    );
    Pki {
        root,
        sub,
        leaf,
        tsa: Identity::load(&pki_dir(), "tsa"),
    }
}

fn pki_dir() -> std::path::PathBuf {
    root().join("certs-test/pki")
}

fn standard_urls(server: &Server) -> Urls {
    Urls {
        crl: None,
        ocsp: Some(server.url("/ocsp")),
        ca_issuers: Some(server.url("/sub.cer")),
    }
}

/// Signed at the sample's time (2023-12-29), optionally with a signature timestamp a second
/// later, embedding `certs` (the leaf's own certificate always first).
fn sign(pki: &Pki, timestamped: bool, with_sub: bool, ocsp: Vec<Vec<u8>>) -> Doc {
    let mut doc = Doc::base(0);
    doc.sign(
        &SigSpec::new("Signature1", fixture::personal_time()),
        |data| {
            let certs = if with_sub { vec![&pki.sub] } else { vec![] };
            let mut c = CmsSpec::new(&pki.leaf, Scheme::Ecdsa, certs);
            c.signing_time = Some(fixture::personal_time());
            if timestamped {
                c.timestamp = Some((
                    &pki.tsa,
                    fixture::personal_time() + time::Duration::seconds(1),
                ));
            }
            c.ocsp = ocsp;
            c.build(data)
        },
    );
    doc
}

/// Trust: the root, the Party sub-CA (the TSA's issuer) as intermediate; the committed CRLs
/// that keep the TSA's chain good at the signing time, so only the runtime chain is at issue.
fn context(mode: RevocationMode, online: Option<Arc<Online>>) -> Context {
    let trust = TrustStore::from_paths(&[pki("root-ca.pem")], &[pki("party-ca.pem")]).unwrap();
    let mut ctx = Context::new(trust);
    ctx.revocation = mode;
    ctx.online = online;
    ctx.crls = RevocationData::from_paths(&[
        root().join("certs-test/crl/party-ca-good.crl"),
        root().join("certs-test/crl/root-ca-good.crl"),
    ])
    .unwrap();
    ctx
}

fn online() -> Arc<Online> {
    Arc::new(Online::new(
        Arc::new(HttpFetcher::new(std::time::Duration::from_secs(2))),
        None,
    ))
}

fn run(doc: &Doc, ctx: &Context) -> Report {
    kyso::verify(&doc.bytes, ctx, common::inputs()).unwrap()
}

fn first(r: &Report) -> &SignatureReport {
    &r.signatures[0]
}

fn details(sig: &SignatureReport, id: CheckId) -> String {
    sig.checks
        .iter()
        .filter(|c| c.id == id)
        .map(|c| format!("{:?}: {}", c.outcome, c.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A responder answering for the leaf with `status`, signed by `signer`, echoing the nonce.
fn responder(
    server: &Server,
    p: &Pki,
    signer: Identity,
    status: OcspStatus,
    next: Option<OffsetDateTime>,
) {
    let leaf = Identity {
        cert: p.leaf.cert.clone(),
        key: p.leaf.key.clone(),
    };
    let sub = Identity {
        cert: p.sub.cert.clone(),
        key: p.sub.key.clone(),
    };
    server.route("/ocsp", move |req| {
        let nonce = fixture::ocsp_request_nonce(req);
        assert!(nonce.is_some(), "kyso sends a nonce");
        Some(fixture::ocsp_response(
            &signer,
            &leaf,
            &sub,
            status,
            datetime!(2024-01-10 00:00:00 UTC),
            next,
            nonce.as_deref(),
        ))
    });
}

fn clone_id(i: &Identity) -> Identity {
    Identity {
        cert: i.cert.clone(),
        key: i.key.clone(),
    }
}

#[test]
fn ocsp_good_from_the_responder_passes_with_its_evidence() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    responder(&server, &p, clone_id(&p.sub), OcspStatus::Good, None);
    let r = run(
        &sign(&p, true, true, vec![]),
        &context(RevocationMode::SoftFail, Some(online())),
    );
    let s = first(&r);
    assert_eq!(
        s.indication,
        Indication::Passed,
        "{}",
        details(s, CheckId::Revocation)
    );
    let leaf = &s.revocation[0];
    assert_eq!(leaf.status, "good");
    let e = leaf.evidence.as_ref().unwrap();
    assert_eq!(e.kind, kyso::revocation::EvidenceKind::Ocsp);
    assert_eq!(e.source, Source::Online(server.url("/ocsp")));
    assert_eq!(server.hits("/ocsp"), 1);
}

#[test]
fn a_delegated_responder_needs_ocsp_signing() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    let delegate = fixture::issue(
        "kyso OCSP",
        Some(&p.sub),
        Role::OcspResponder {
            eku: true,
            nocheck: true,
        },
        0x3100,
        &Urls::default(),
    );
    responder(&server, &p, delegate, OcspStatus::Good, None);
    let r = run(
        &sign(&p, true, true, vec![]),
        &context(RevocationMode::HardFail, Some(online())),
    );
    assert_eq!(
        first(&r).indication,
        Indication::Passed,
        "{}",
        details(first(&r), CheckId::Revocation)
    );
    assert_eq!(first(&r).revocation[0].status, "good");

    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    let impostor = fixture::issue(
        "kyso not OCSP",
        Some(&p.sub),
        Role::OcspResponder {
            eku: false,
            nocheck: true,
        },
        0x3101,
        &Urls::default(),
    );
    responder(
        &server,
        &p,
        impostor,
        OcspStatus::Revoked(datetime!(2023-01-01 00:00:00 UTC)),
        None,
    );
    let r = run(
        &sign(&p, true, true, vec![]),
        &context(RevocationMode::HardFail, Some(online())),
    );
    let s = first(&r);
    assert_eq!(s.revocation[0].status, "unknown");
    assert_eq!(s.sub_indication, Some(SubIndication::TryLater));
    assert!(
        details(s, CheckId::Revocation).contains("not authorised to sign OCSP"),
        "{}",
        details(s, CheckId::Revocation)
    );
}

#[test]
fn a_replayed_answer_with_another_nonce_is_refused() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    let (leaf, sub) = (clone_id(&p.leaf), clone_id(&p.sub));
    server.route("/ocsp", move |_| {
        Some(fixture::ocsp_response(
            &sub,
            &leaf,
            &sub,
            OcspStatus::Good,
            datetime!(2024-01-10 00:00:00 UTC),
            None,
            Some(b"an old nonce"),
        ))
    });
    let r = run(
        &sign(&p, true, true, vec![]),
        &context(RevocationMode::SoftFail, Some(online())),
    );
    let s = first(&r);
    assert_eq!(s.indication, Indication::Passed);
    assert_eq!(s.revocation[0].status, "unknown");
    assert!(
        details(s, CheckId::Revocation).contains("nonce"),
        "{}",
        details(s, CheckId::Revocation)
    );
}

#[test]
fn ocsp_unknown_is_not_an_answer() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    responder(&server, &p, clone_id(&p.sub), OcspStatus::Unknown, None);
    let doc = sign(&p, true, true, vec![]);
    let r = run(&doc, &context(RevocationMode::SoftFail, Some(online())));
    let s = first(&r);
    assert_eq!(s.indication, Indication::Passed);
    assert_eq!(s.revocation[0].status, "unknown");
    assert!(
        details(s, CheckId::Revocation).contains("answered \"unknown\""),
        "{}",
        details(s, CheckId::Revocation)
    );
    let r = run(&doc, &context(RevocationMode::Require, Some(online())));
    assert_eq!(first(&r).indication, Indication::Indeterminate);
    assert_eq!(first(&r).sub_indication, Some(SubIndication::TryLater));
}

#[test]
fn revoked_before_or_after_a_timestamped_signing_and_without_timestamp() {
    for (revoked, timestamped, indication, sub) in [
        (
            datetime!(2023-06-01 00:00:00 UTC),
            true,
            Indication::Failed,
            Some(SubIndication::Revoked),
        ),
        (
            datetime!(2024-06-01 00:00:00 UTC),
            true,
            Indication::Passed,
            None,
        ),
        (
            datetime!(2024-06-01 00:00:00 UTC),
            false,
            Indication::Indeterminate,
            Some(SubIndication::RevokedNoPoe),
        ),
    ] {
        let server = Server::start();
        let p = make_pki(&server, standard_urls(&server));
        responder(
            &server,
            &p,
            clone_id(&p.sub),
            OcspStatus::Revoked(revoked),
            None,
        );
        let r = run(
            &sign(&p, timestamped, true, vec![]),
            &context(RevocationMode::SoftFail, Some(online())),
        );
        let s = first(&r);
        assert_eq!(
            (s.indication, s.sub_indication),
            (indication, sub),
            "revoked {revoked}, timestamped {timestamped}: {}",
            details(s, CheckId::Revocation)
        );
        assert_eq!(s.revocation[0].status, "revoked");
        assert_eq!(s.revocation[0].revoked_at, Some(revoked));
    }
}

#[test]
fn an_ocsp_response_inside_the_signature_needs_no_network() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    let embedded = fixture::ocsp_response(
        &p.sub,
        &p.leaf,
        &p.sub,
        OcspStatus::Revoked(datetime!(2024-06-01 00:00:00 UTC)),
        datetime!(2024-07-01 00:00:00 UTC),
        None,
        None,
    );
    let r = run(
        &sign(&p, true, true, vec![embedded]),
        &context(RevocationMode::Offline, None),
    );
    let s = first(&r);
    assert_eq!(
        s.indication,
        Indication::Passed,
        "{}",
        details(s, CheckId::Revocation)
    );
    assert_eq!(s.revocation[0].status, "revoked");
    assert_eq!(
        s.revocation[0].evidence.as_ref().unwrap().source,
        Source::Signature
    );
    assert_eq!(server.hits("/ocsp"), 0);
}

#[test]
fn an_unreachable_responder_in_each_mode() {
    let server = Server::start();
    let urls = Urls {
        ocsp: Some(dead_url()),
        ..Urls::default()
    };
    let p = make_pki(&server, urls);
    let doc = sign(&p, true, true, vec![]);
    for (mode, indication, says) in [
        (
            RevocationMode::Offline,
            Indication::Passed,
            "nothing is fetched",
        ),
        (
            RevocationMode::SoftFail,
            Indication::Passed,
            "did not answer",
        ),
        (
            RevocationMode::HardFail,
            Indication::Indeterminate,
            "did not answer",
        ),
        (
            RevocationMode::Require,
            Indication::Indeterminate,
            "did not answer",
        ),
    ] {
        let r = run(&doc, &context(mode, Some(online())));
        let s = first(&r);
        assert_eq!(
            s.indication,
            indication,
            "{mode:?}: {}",
            details(s, CheckId::Revocation)
        );
        if indication == Indication::Indeterminate {
            assert_eq!(s.sub_indication, Some(SubIndication::TryLater));
        } else {
            assert_eq!(check(s, CheckId::Revocation), Outcome::Warning);
        }
        assert!(
            details(s, CheckId::Revocation).contains(says),
            "{mode:?}: {}",
            details(s, CheckId::Revocation)
        );
    }
    // Hard-fail only fails where a source exists: a certificate naming none is reported.
    let p = make_pki(&server, Urls::default());
    let r = run(
        &sign(&p, true, true, vec![]),
        &context(RevocationMode::HardFail, Some(online())),
    );
    assert_eq!(
        first(&r).indication,
        Indication::Passed,
        "{}",
        details(first(&r), CheckId::Revocation)
    );
    let r = run(
        &sign(&p, true, true, vec![]),
        &context(RevocationMode::Require, Some(online())),
    );
    assert_eq!(first(&r).indication, Indication::Indeterminate);
}

#[test]
fn a_crl_is_fetched_once_and_kept_in_memory_and_on_disk() {
    let server = Server::start();
    let crl_path = "/sub.crl";
    let p = make_pki(
        &server,
        Urls {
            crl: Some(server.url(crl_path)),
            ..Urls::default()
        },
    );
    let crl = fixture::crl(
        &p.sub,
        &p.sub,
        datetime!(2024-01-10 00:00:00 UTC),
        Some(datetime!(2030-01-01 00:00:00 UTC)),
        &[(0x9999, datetime!(2023-01-01 00:00:00 UTC))],
    );
    server.route(crl_path, move |_| Some(crl.clone()));
    let dir = tempfile::tempdir().unwrap();
    let cached = Arc::new(Online::new(
        Arc::new(HttpFetcher::new(std::time::Duration::from_secs(2))),
        Some(dir.path().to_owned()),
    ));
    let doc = sign(&p, true, true, vec![]);
    for _ in 0..3 {
        let r = run(
            &doc,
            &context(RevocationMode::HardFail, Some(cached.clone())),
        );
        let s = first(&r);
        assert_eq!(
            s.indication,
            Indication::Passed,
            "{}",
            details(s, CheckId::Revocation)
        );
        assert_eq!(
            s.revocation[0].evidence.as_ref().unwrap().kind,
            kyso::revocation::EvidenceKind::Crl
        );
    }
    assert_eq!(
        server.hits(crl_path),
        1,
        "fetched once for three verifications"
    );
    // A new process with the same cache directory needs no network.
    drop(server);
    let fresh = Arc::new(Online::new(
        Arc::new(HttpFetcher::new(std::time::Duration::from_secs(2))),
        Some(dir.path().to_owned()),
    ));
    let r = run(&doc, &context(RevocationMode::HardFail, Some(fresh)));
    assert_eq!(
        first(&r).indication,
        Indication::Passed,
        "{}",
        details(first(&r), CheckId::Revocation)
    );
}

#[test]
fn a_leaf_only_chain_is_completed_through_ca_issuers() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    responder(&server, &p, clone_id(&p.sub), OcspStatus::Good, None);
    let sub_der = p.sub.cert.to_der().unwrap();
    server.route("/sub.cer", move |_| Some(sub_der.clone()));
    let doc = sign(&p, true, false, vec![]);
    let r = run(&doc, &context(RevocationMode::Offline, None));
    assert_eq!(
        first(&r).sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );
    let r = run(&doc, &context(RevocationMode::SoftFail, Some(online())));
    let s = first(&r);
    assert_eq!(
        s.indication,
        Indication::Passed,
        "{}",
        details(s, CheckId::CertificateChain)
    );
    assert_eq!(s.chain.len(), 3);
    assert!(details(s, CheckId::CertificateChain).contains("caIssuers"));
    assert_eq!(server.hits("/sub.cer"), 1);
}

/// PAdES B-LT: the intermediate, an OCSP response and the root's CRL in the /DSS; then B-LTA:
/// a document timestamp over all of it. Offline: everything needed is in the document.
#[test]
fn b_lt_and_b_lta_documents_validate_offline() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    let mut doc = sign(&p, true, false, vec![]);
    let ocsp = fixture::ocsp_response(
        &p.sub,
        &p.leaf,
        &p.sub,
        OcspStatus::Good,
        datetime!(2024-01-10 00:00:00 UTC),
        None,
        None,
    );
    let root_crl = fixture::crl(
        &p.root,
        &p.root,
        datetime!(2024-01-10 00:00:00 UTC),
        None,
        &[],
    );
    doc.add_dss(&[p.sub.cert.to_der().unwrap()], &[root_crl], &[ocsp]);
    let mut offline = context(RevocationMode::Require, None);
    offline.crls =
        RevocationData::from_paths(&[root().join("certs-test/crl/party-ca-good.crl")]).unwrap();
    let r = run(&doc, &offline);
    let s = first(&r);
    assert_eq!(
        s.indication,
        Indication::Passed,
        "{}\n{}",
        details(s, CheckId::CertificateChain),
        details(s, CheckId::Revocation)
    );
    assert!(s.revocation.iter().all(
        |c| c.evidence.as_ref().unwrap().source == Source::Dss || c.subject.contains("RootCA")
    ));
    assert_eq!(
        s.revocation[0].evidence.as_ref().unwrap().kind,
        kyso::revocation::EvidenceKind::Ocsp
    );

    let mut lta = doc.clone();
    let mut spec = SigSpec::new("DocTimeStamp1", datetime!(2024-01-11 00:00:00 UTC));
    spec.sub_filter = "ETSI.RFC3161";
    spec.kind_doc_timestamp = true;
    lta.sign(&spec, |data| {
        fixture::timestamp_token(
            &p.tsa,
            fixture::Digest::Sha256,
            data,
            datetime!(2024-01-11 00:00:00 UTC),
        )
    });
    let mut offline = context(RevocationMode::Offline, None);
    offline.crls = RevocationData::from_paths(&[
        root().join("certs-test/crl/party-ca-good.crl"),
        root().join("certs-test/crl/root-ca-good.crl"),
    ])
    .unwrap();
    let r = run(&lta, &offline);
    assert_eq!(r.signatures.len(), 2);
    for s in &r.signatures {
        assert_eq!(
            s.indication,
            Indication::Passed,
            "{:?}: {}",
            s.field,
            details(s, CheckId::Revocation)
        );
    }
    assert_eq!(r.verdict, kyso::Verdict::Valid, "{:?}", r.reasons);
    assert!(r.signatures[1].validation_time.proven);
}

#[test]
fn a_tsa_revoked_before_its_stamp_proves_nothing() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    responder(&server, &p, clone_id(&p.sub), OcspStatus::Good, None);
    let party = Identity::load(&pki_dir(), "party-ca");
    let crl = fixture::crl(
        &party,
        &party,
        datetime!(2024-01-10 00:00:00 UTC),
        None,
        &[(0x1007, datetime!(2023-06-01 00:00:00 UTC))],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("party.crl"), crl).unwrap();
    let mut ctx = context(RevocationMode::SoftFail, Some(online()));
    ctx.crls = RevocationData::from_paths(&[
        dir.path().join("party.crl"),
        root().join("certs-test/crl/root-ca-good.crl"),
    ])
    .unwrap();
    let r = run(&sign(&p, true, true, vec![]), &ctx);
    let s = first(&r);
    assert!(!s.validation_time.proven);
    assert_eq!(check(s, CheckId::SignatureTimestamp), Outcome::Warning);
    assert!(
        details(s, CheckId::SignatureTimestamp).contains("revoked"),
        "{}",
        details(s, CheckId::SignatureTimestamp)
    );
    let ts = &s.timestamps[0];
    assert!(!ts.proves);
    assert_eq!(ts.revocation[0].status, "revoked");
}

#[test]
fn a_content_timestamp_is_reported() {
    let server = Server::start();
    let p = make_pki(&server, standard_urls(&server));
    let mut doc = Doc::base(0);
    doc.sign(
        &SigSpec::new("Signature1", fixture::personal_time()),
        |data| {
            let mut c = CmsSpec::new(&p.leaf, Scheme::Ecdsa, vec![&p.sub]);
            c.content_timestamp = Some((
                &p.tsa,
                fixture::personal_time() - time::Duration::minutes(1),
            ));
            c.build(data)
        },
    );
    let r = run(&doc, &context(RevocationMode::Offline, None));
    let s = first(&r);
    assert_eq!(
        check(s, CheckId::ContentTimestamp),
        Outcome::Info,
        "{}",
        details(s, CheckId::ContentTimestamp)
    );
    let ts = s.timestamps.iter().find(|t| t.kind == "content").unwrap();
    assert!(ts.proves);
    assert_eq!(
        ts.time,
        Some(fixture::personal_time() - time::Duration::minutes(1))
    );
}
