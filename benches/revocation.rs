//! `cargo bench --bench revocation`: a CRL with 200,000 entries (issue "Time and
//! revocation"): its first load, then a lookup in the same process (target under 10 µs),
//! and 1,000 verifications of the 100 KB two-signature document against it compared with
//! the same against an empty CRL in the same run (target at most +5 %).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The allocator of the `kyso` binary (src/main.rs says why), so the figures are its figures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../certs-test/fixture.rs"]
mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use kyso::revocation::{Crl, RevocationData, Source};
use kyso::trust::TrustStore;
use kyso::{Context, Verdict};
use time::macros::datetime;

fn main() {
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-test/pki");
    let party = fixture::Identity::load(&pki, "party-ca");
    let root = fixture::Identity::load(&pki, "root-ca");
    let revoked_on = datetime!(2023-01-01 00:00:00 UTC);
    let entries: Vec<(u32, time::OffsetDateTime)> = (0..200_000u32)
        .map(|i| (0x10_0000 + i, revoked_on))
        .collect();
    let this_update = datetime!(2024-01-15 00:00:00 UTC);
    let next_update = Some(datetime!(2024-02-15 00:00:00 UTC));
    let big_der = fixture::crl(&party, &party, this_update, next_update, &entries);
    let empty_der = fixture::crl(&party, &party, this_update, next_update, &[]);
    let root_der = fixture::crl(
        &root,
        &root,
        this_update,
        Some(datetime!(2024-07-15 00:00:00 UTC)),
        &[],
    );

    let t = Instant::now();
    let big = Crl::from_der(&big_der, Source::File("200k.crl".into())).unwrap();
    let load = t.elapsed();
    println!(
        "CRL of 200,000 entries ({} bytes): first load {:.1} ms",
        big_der.len(),
        load.as_secs_f64() * 1e3
    );

    let trust =
        TrustStore::from_paths(&[pki.join("root-ca.pem")], &[pki.join("party-ca.pem")]).unwrap();
    let signer = kyso::trust::load_certificates(&pki.join("personal-rsa.pem"))
        .unwrap()
        .remove(0);
    let issuer = kyso::trust::load_certificates(&pki.join("party-ca.pem"))
        .unwrap()
        .remove(0);
    let set = RevocationData::new(vec![big.clone()], Vec::new());
    let at = datetime!(2023-12-29 03:50:26 UTC);
    let t = Instant::now();
    let _ = kyso::revocation::status(&signer, &issuer, at, &[&set], &[]);
    println!(
        "first lookup (checks the CRL's signature once): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let runs = 10_000u32;
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(kyso::revocation::status(&signer, &issuer, at, &[&set], &[]));
    }
    println!(
        "later lookups: {:.2} µs each (target < 10 µs)",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
    );

    let doc = fixture::two_signature_document(&pki, 50_000);
    let context = |party_crl: Crl| {
        let mut ctx = Context::new(trust.clone());
        ctx.crls = RevocationData::new(
            vec![
                party_crl,
                Crl::from_der(&root_der, Source::File("root.crl".into())).unwrap(),
            ],
            Vec::new(),
        );
        ctx
    };
    let with_big = context(big);
    let with_empty = context(Crl::from_der(&empty_der, Source::File("empty.crl".into())).unwrap());
    assert_eq!(
        kyso::verify(
            &doc,
            &with_big,
            kyso::Inputs::at(time::macros::datetime!(2026-11-23 00:00:00 UTC))
        )
        .unwrap()
        .verdict,
        Verdict::Valid
    );
    assert_eq!(
        kyso::verify(
            &doc,
            &with_empty,
            kyso::Inputs::at(time::macros::datetime!(2026-11-23 00:00:00 UTC))
        )
        .unwrap()
        .verdict,
        Verdict::Valid
    );
    // Alternate the two, five rounds of 200 documents each, to share the machine's noise.
    let (mut big_total, mut empty_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        for (ctx, total) in [(&with_empty, &mut empty_total), (&with_big, &mut big_total)] {
            let t = Instant::now();
            for _ in 0..200 {
                std::hint::black_box(
                    kyso::verify(
                        &doc,
                        ctx,
                        kyso::Inputs::at(time::macros::datetime!(2026-11-23 00:00:00 UTC)),
                    )
                    .unwrap(),
                );
            }
            *total += t.elapsed();
        }
    }
    println!(
        "1,000 verifications: {:.0} ms with the 200,000-entry CRL, {:.0} ms with an empty one: {:+.1} % (target ≤ +5 %)",
        big_total.as_secs_f64() * 1e3,
        empty_total.as_secs_f64() * 1e3,
        (big_total.as_secs_f64() / empty_total.as_secs_f64() - 1.0) * 100.0
    );
}
