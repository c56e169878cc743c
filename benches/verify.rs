//! `cargo bench --bench verify`: in-process verification of the two-signature document at
//! about 100 KB, 2 MB and 20 MB, against a floor measured in the same run: one SHA-256 pass
//! over the same bytes with OpenSSL.
//!
//! Targets (issue "Verify every signature"): the 20 MB document in at most 1.5× one hashing
//! pass, the 100 KB one in under 5 ms. The change analysis (issue "Document integrity") is
//! timed on its own in the same run — loading the signed revision and classifying what
//! followed — and must add at most 20 % to the verification without it. The documents are built in memory with the committed
//! test keys (`certs-test/fixture.rs`), padded with an unused image stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The allocator of the `kyso` binary (src/main.rs says why), so the figures are its figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../certs-test/fixture.rs"]
mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use kyso::trust::TrustStore;
use kyso::{Context, Verdict};

/// Median of `runs` timings of `f`, after one warm-up call.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-test/pki");
    let trust =
        TrustStore::from_paths(&[pki.join("root-ca.pem")], &[pki.join("party-ca.pem")]).unwrap();
    let ctx = Context::new(trust);
    println!(
        "{:>10}  {:>12}  {:>12}  {:>8}  {:>10}",
        "size", "verify", "sha256 pass", "ratio", "MB/s"
    );
    for (label, target, runs) in [
        ("100 KB", 100_000usize, 201),
        ("2 MB", 2_000_000, 41),
        ("20 MB", 20_000_000, 11),
    ] {
        let base = fixture::two_signature_document(&pki, 0).len();
        let doc = fixture::two_signature_document(&pki, target.saturating_sub(base));
        let report = kyso::verify(
            &doc,
            &ctx,
            kyso::Inputs::at(time::macros::datetime!(2026-11-23 00:00:00 UTC)),
        )
        .unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Valid,
            "the benchmark document must verify"
        );
        let verify = median(runs, || {
            std::hint::black_box(
                kyso::verify(
                    std::hint::black_box(&doc),
                    &ctx,
                    kyso::Inputs::at(time::macros::datetime!(2026-11-23 00:00:00 UTC)),
                )
                .unwrap(),
            );
        });
        let floor = median(runs, || {
            std::hint::black_box(openssl::sha::sha256(std::hint::black_box(&doc)));
        });
        // The change analysis alone: what `verify` does for the first signature, which covers
        // revision 2 of 3 (the second covers the whole file and needs none).
        let pdf = kyso::pdf::PdfFile::parse(&doc).unwrap();
        let perms = kyso::integrity::Permissions {
            docmdp: Some(2),
            locks: Vec::new(),
            p_from_lock: false,
        };
        let changes = median(runs, || {
            let old = pdf.load_revision(&doc, 2).unwrap();
            std::hint::black_box(kyso::integrity::analyse(
                &old,
                &pdf.document,
                &pdf.revisions,
                2,
                &perms,
            ));
        });
        let without = verify.saturating_sub(changes);
        println!(
            "{:>10}  {:>9.3} ms  {:>9.3} ms  {:>7.2}×  {:>10.0}  {:>14.3} ms  {:>8.1} %",
            format!("{label} ({})", doc.len()),
            verify.as_secs_f64() * 1e3,
            floor.as_secs_f64() * 1e3,
            verify.as_secs_f64() / floor.as_secs_f64(),
            doc.len() as f64 / verify.as_secs_f64() / 1e6,
            changes.as_secs_f64() * 1e3,
            changes.as_secs_f64() / without.as_secs_f64() * 100.0,
        );
    }
}
