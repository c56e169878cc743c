//! Conformance: every row of `../shared/corpus/MANIFEST.tsv` and `MANIFEST-2.tsv` (columns in
//! their README).
//!
//! - `broken` → INVALID (or a verdict the row's `also_acceptable` names);
//! - `intact` → no signature FAILED for cryptographic or structural reasons;
//! - `unsigned` → UNSIGNED;
//! - `unreadable` → a clear error or INVALID, without a panic;
//! - the signature count, and with `trust` and `validation_time` the expected verdict.
//!
//! - `modified` → INVALID, with a modification finding: a signature whose change analysis
//!   failed, whose dictionary was rewritten around another's /Contents, or that a later
//!   revision removed;
//! - `unreadable` rows, `pades_infinite_loop.pdf` among them, answer within 1 second.
//!
//! The corpus is third-party and lives outside the repository: ignored by a plain `cargo
//! test`, run by `.ci/run`, which fails when `../shared` is missing.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use kyso::report::{CheckId, Indication};
use kyso::trust::TrustStore;
use kyso::{Context, Verdict};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Any time will do for rows without one: it is only used for signatures with no time.
const NOW: OffsetDateTime = time::macros::datetime!(2026-11-23 00:00:00 UTC);

struct Row {
    file: String,
    integrity: String,
    signatures: Option<usize>,
    trust: Option<String>,
    validation_time: Option<OffsetDateTime>,
    expect_with_trust: Option<String>,
    also_acceptable: Vec<String>,
}

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "{} is missing: the conformance test needs ../shared",
        dir.display()
    );
    dir
}

fn rows(dir: &Path, manifest: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join(manifest)).expect("manifest reads");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (f, i, s, t, v, e, a) = (
        col("file"),
        col("integrity"),
        col("signatures"),
        col("trust"),
        col("validation_time"),
        col("expect_with_trust"),
        col("also_acceptable"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let get = |k: usize| c.get(k).map(|x| x.trim()).filter(|x| !x.is_empty());
            Row {
                file: c[f].to_owned(),
                integrity: c[i].to_owned(),
                signatures: get(s).map(|x| x.parse().expect("signature count")),
                trust: get(t).map(str::to_owned),
                validation_time: get(v)
                    .map(|x| OffsetDateTime::parse(x, &Rfc3339).expect("RFC 3339")),
                expect_with_trust: get(e).map(str::to_owned),
                also_acceptable: get(a)
                    .map(|x| {
                        x.split([',', ' '])
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Indeterminate => "INDETERMINATE",
        Verdict::Unsigned => "UNSIGNED",
    }
}

/// Checks one row; `Err` says what is wrong with it.
fn check_row(dir: &Path, row: &Row) -> Result<(), String> {
    let bytes = std::fs::read(dir.join(&row.file)).map_err(|e| e.to_string())?;
    let trust = match &row.trust {
        Some(t) => TrustStore::from_paths(&[dir.join(t)], &[]).map_err(|e| e.to_string())?,
        None => TrustStore::default(),
    };
    let ctx = Context::new(trust);
    let inputs = kyso::Inputs {
        at: row.validation_time,
        ..kyso::Inputs::at(NOW)
    };
    // The verification runs on its own thread so that a hang is a failure, not a stuck CI.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(kyso::verify(&bytes, &ctx, inputs).map_err(|e| e.to_string()));
    });
    // A hang guard, not a speed test.
    // Unreadable rows must be refused quickly; the others get room for a debug build on a
    // loaded machine (the largest rows take about 2 s unoptimised, 0.2 s in release).
    let limit = if row.integrity == "unreadable" { 1 } else { 10 };
    let result = match rx.recv_timeout(Duration::from_secs(limit)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => return Err(format!("no answer within {limit} s")),
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err("the verification panicked".into()),
    };
    let acceptable = |name: &str| row.also_acceptable.iter().any(|a| a == name);
    let report = match result {
        Ok(r) => r,
        Err(e) if row.integrity == "unreadable" || acceptable("ERROR") => {
            if e.is_empty() {
                return Err("an error without a message".into());
            }
            return Ok(());
        }
        Err(e) if row.integrity == "modified" => {
            return Err(format!("modified row not readable: {e}"))
        }
        Err(e) => return Err(format!("error: {e}")),
    };
    let got = verdict_name(report.verdict);
    let want_one_of = |want: &str| -> Result<(), String> {
        if got == want || acceptable(got) {
            Ok(())
        } else {
            Err(format!(
                "verdict {got}, expected {want} (also acceptable: {:?})",
                row.also_acceptable
            ))
        }
    };
    match row.integrity.as_str() {
        "broken" => want_one_of("INVALID")?,
        "unsigned" => want_one_of("UNSIGNED")?,
        "unreadable" => want_one_of("INVALID")?,
        "intact" => {
            if let Some(s) = report
                .signatures
                .iter()
                .find(|s| s.indication == Indication::Failed)
            {
                if !acceptable("INVALID") {
                    return Err(format!(
                        "intact, but signature {:?} FAILED: {:?}",
                        s.field,
                        s.checks
                            .iter()
                            .filter(|c| c.outcome == kyso::report::Outcome::Failed)
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        "modified" => {
            want_one_of("INVALID")?;
            let finding = report.signatures.iter().any(|s| {
                s.checks.iter().any(|c| {
                    c.outcome == kyso::report::Outcome::Failed
                        && (matches!(c.id, CheckId::Modifications | CheckId::FinalRevision)
                            || c.detail.contains("written after signing"))
                })
            });
            if !finding {
                return Err("INVALID, but without a modification finding".into());
            }
        }
        other => return Err(format!("unknown integrity class {other}")),
    }
    if let Some(n) = row.signatures {
        if report.signatures.len() != n {
            return Err(format!(
                "{} signatures found, expected {n}",
                report.signatures.len()
            ));
        }
    }
    if let Some(want) = &row.expect_with_trust {
        want_one_of(want)?;
    }
    Ok(())
}

#[test]
#[ignore = "needs ../shared/corpus (third-party files); .ci/run runs it"]
fn every_manifest_row_passes() {
    check_manifest("MANIFEST.tsv", 80);
}

#[test]
#[ignore = "needs ../shared/corpus (third-party files); .ci/run runs it"]
fn every_manifest_2_row_passes() {
    check_manifest("MANIFEST-2.tsv", 81);
}

fn check_manifest(manifest: &str, at_least: usize) {
    let dir = corpus();
    let rows = rows(&dir, manifest);
    assert!(rows.len() >= at_least, "{manifest} has {} rows", rows.len());
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            check_row(&dir, row)
                .err()
                .map(|e| format!("{} ({}): {e}", row.file, row.integrity))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows fail:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
