//! The core: `verify(bytes, &Context, Inputs) -> Result<Report, VerifyError>`, pure and
//! synchronous.
//!
//! The steps, in the order they run, each in its file: `prepare` reads each signature
//! dictionary's structure (ByteRange, coverage); `digest` hashes every signature's ranges
//! and the file in one pass while `changes` analyses what later revisions changed; then, per
//! signature, `signature` checks its CMS and signature value, sets its validation time,
//! asks `chain` for the path and its revocation and `timestamps` for its timestamps, and
//! assembles its report. It never reads the clock nor the network by itself: "now" and the
//! caller's validation time are the call's [`Inputs`], and fetching goes through the
//! [`Context`]'s fetcher.
//!
//! `Err` means kyso could not evaluate the file at all (not a PDF, encrypted with a
//! password). A signature that fails is a successful call whose report says FAILED.

mod chain;
mod changes;
mod context;
mod digest;
mod error;
mod prepare;
mod signature;
mod timestamps;

pub use context::{
    AlgorithmPolicy, Context, ContextError, Inputs, RevocationMode, Settings, WeakAlgorithmAction,
};
pub use error::{ExtractError, VerifyError};

use crate::pdf::{Coverage, PdfFile};
use crate::report::{Report, Verdict};
use crate::revocation::{self, RevocationData};

use changes::{analyse_changes, apply_changes, ChangeOutcome};
use digest::hash_ranges_and_file;
use prepare::Prepared;
use signature::{evaluate, DocumentData};

/// The bytes signature `number` (1-based, in the order of the report) covers: the file as
/// its signer saw it, from the start to the end of its `/ByteRange`.
pub fn signed_version(bytes: &[u8], number: usize) -> Result<&[u8], ExtractError> {
    let pdf = PdfFile::parse(bytes)?;
    let count = pdf.signatures.len();
    let sig = number
        .checked_sub(1)
        .and_then(|i| pdf.signatures.get(i))
        .ok_or(ExtractError::NoSuchSignature { number, count })?;
    let range = sig
        .check_byte_range(bytes)
        .map_err(|source| ExtractError::ByteRange { number, source })?;
    Ok(&bytes[..range.end()])
}

/// From this size on, the change analysis runs on a thread of its own beside the hashing;
/// below it, starting a thread costs more than the hashing it would overlap.
const PARALLEL_ANALYSIS_FROM: usize = 1 << 20;

/// Verifies every signature of the PDF in `bytes`, in `ctx`, with this call's `inputs`.
pub fn verify(bytes: &[u8], ctx: &Context, inputs: Inputs) -> Result<Report, VerifyError> {
    let pdf = PdfFile::parse(bytes)?;
    let mut prepared: Vec<Prepared> = pdf
        .signatures
        .iter()
        .map(|sig| Prepared::new(sig, bytes, &pdf))
        .collect();
    let coverages: Vec<Option<Coverage>> = prepared.iter().map(|p| p.coverage).collect();
    // The analysis only panics on a bug; its signatures then say so.
    let failed = |_| {
        coverages
            .iter()
            .map(|_| ChangeOutcome::NotAnalysed("the change analysis failed unexpectedly".into()))
            .collect()
    };
    let (file_sha256, outcomes) = if bytes.len() < PARALLEL_ANALYSIS_FROM {
        let digests = hash_ranges_and_file(bytes, &mut prepared)?;
        let analysed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            analyse_changes(bytes, &pdf, &coverages)
        }));
        (digests, analysed.unwrap_or_else(failed))
    } else {
        std::thread::scope(|scope| {
            let analysis = scope.spawn(|| analyse_changes(bytes, &pdf, &coverages));
            let digests = hash_ranges_and_file(bytes, &mut prepared);
            let outcomes = analysis.join().unwrap_or_else(failed);
            digests.map(|file| (file, outcomes))
        })?
    };
    apply_changes(&mut prepared, outcomes);
    // The document's /DSS, parsed once for all signatures; unreadable items are skipped (a
    // signature's revocation check then reports what it could not use).
    let dss = DocumentData {
        revocation: RevocationData::from_ders(
            pdf.dss.crls.iter().map(Vec::as_slice),
            pdf.dss.ocsp.iter().map(Vec::as_slice),
            &revocation::Source::Dss,
        ),
        certs: ctx.cache.certificates(&pdf.dss.certs),
    };
    let signatures = prepared
        .into_iter()
        .map(|p| evaluate(p, bytes, ctx, &dss, inputs))
        .collect();
    let mut report = Report {
        sha256: hex::encode(file_sha256),
        size: bytes.len(),
        verdict: Verdict::Unsigned,
        reasons: Vec::new(),
        revisions: pdf.revisions.len(),
        hybrid_reference: pdf.hybrid_reference,
        decrypted: pdf.decrypted.clone(),
        signatures,
        unsigned_fields: pdf.unsigned_fields.clone(),
        trust_fingerprint: ctx.trust.fingerprint(),
        kyso_version: env!("CARGO_PKG_VERSION"),
        policy: None,
    };
    report.conclude();
    ctx.policy.apply(&mut report, inputs.policy, inputs.expect);
    Ok(report)
}
