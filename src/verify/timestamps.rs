//! Timestamps: a document timestamp's own token, a signature timestamp and a content
//! timestamp, each with its TSA chain and that chain's revocation status.

use time::OffsetDateTime;

use super::chain::{
    describe, display_subject, revocation_statuses, rfc3339, unknown_fails, unknown_why,
};
use super::context::Context;
use super::prepare::Prepared;
use crate::cms::{self, SignedData};
use crate::report::{
    CertificateRevocation, CheckId, Indication, Outcome, SubIndication, TimeSource, TimestampReport,
};
use crate::revocation::{RevocationData, Status};
use crate::timestamp::{self, ProvenTime};

/// For a document timestamp: the token's TSTInfo and its imprint over the ranges (RFC 3161
/// §2.4.2, ISO 32000-2 §12.8.5). Returns the token's genTime.
pub(super) fn check_document_timestamp(
    p: &mut Prepared<'_>,
    sd: &SignedData,
) -> Option<(OffsetDateTime, TimeSource)> {
    if sd.econtent_type != cms::oid::TST_INFO {
        p.fail(
            CheckId::EncapsulatedContent,
            Indication::Failed,
            SubIndication::FormatFailure,
            format!(
                "a document timestamp must encapsulate a TSTInfo, not {}",
                sd.econtent_type
            ),
        );
        return None;
    }
    let tst = match cms::parse_tst_info(sd.econtent.as_deref().unwrap_or(&[])) {
        Ok(t) => t,
        Err(e) => {
            p.fail(
                CheckId::EncapsulatedContent,
                Indication::Failed,
                SubIndication::FormatFailure,
                e.to_string(),
            );
            return None;
        }
    };
    p.pass(
        CheckId::EncapsulatedContent,
        format!("TSTInfo with genTime {}", tst.gen_time),
    );
    match (&p.digest, p.digest_alg) {
        (Some(d), Some(alg)) if *d == tst.imprint => p.pass(CheckId::TimestampImprint,
            format!("the token's {} imprint equals the digest of the signed ranges", alg.name())),
        (Some(_), _) => p.fail(CheckId::TimestampImprint, Indication::Failed, SubIndication::HashFailure,
            "the token's imprint differs from the digest of the signed ranges: the document was changed".into()),
        (None, None) if p.range.is_some() => p.fail(CheckId::TimestampImprint, Indication::Failed, SubIndication::FormatFailure,
            format!("the imprint's hash algorithm {} is not supported", tst.imprint_algorithm.oid)),
        (None, _) => p.push(CheckId::TimestampImprint, Outcome::Skipped, "the ranges could not be hashed".into()),
    }
    Some((tst.gen_time, TimeSource::TimestampToken))
}

/// The signature timestamp (RFC 3161 token in the unsigned attribute
/// id-aa-signatureTimeStampToken, over the signature value): returns the proven time when the
/// token, its TSA's chain and that chain's revocation status all hold.
pub(super) fn check_signature_timestamp(
    p: &mut Prepared<'_>,
    sd: &SignedData,
    ctx: &Context,
    now: OffsetDateTime,
    sources: &[&RevocationData],
    out: &mut Vec<TimestampReport>,
) -> Option<ProvenTime> {
    let token = sd
        .signer
        .unsigned_attr(&cms::oid::SIGNATURE_TIMESTAMP)?
        .values
        .first()?;
    match timestamp::verify_token(token, &[&sd.signer.signature], &ctx.trust, &ctx.cache) {
        Ok(proof) => {
            let tsa = display_subject(&proof.tsa);
            let (revocation, problem) = check_tsa_revocation(&proof, sources, ctx, now);
            out.push(TimestampReport::proven(
                "signature",
                &proof,
                revocation,
                problem.clone(),
            ));
            if let Some(problem) = problem {
                p.push(
                    CheckId::SignatureTimestamp,
                    Outcome::Warning,
                    format!(
                        "the signature timestamp of {} by {tsa} proves no time: {problem}",
                        rfc3339(proof.gen_time)
                    ),
                );
                return None;
            }
            p.pass(
                CheckId::SignatureTimestamp,
                format!(
                    "a {} timestamp of {} by {tsa} proves the signature existed then",
                    proof.imprint_algorithm.name(),
                    rfc3339(proof.gen_time),
                ),
            );
            Some(proof)
        }
        Err(e) => {
            // A timestamp that proves nothing leaves the claimed time; it does not make the
            // signature itself worse (ETSI EN 319 102-1 §5.6.2.4 ignores unusable tokens).
            out.push(TimestampReport::unproven("signature", e.to_string()));
            p.push(
                CheckId::SignatureTimestamp,
                Outcome::Warning,
                format!("the signature timestamp proves no time: {e}"),
            );
            None
        }
    }
}

/// The revocation status of a TSA's chain at the token's genTime, and why the token proves
/// nothing if it does not: a TSA certificate revoked at or before genTime, or no usable data
/// where the mode demands it. A revocation after genTime is reported and harmless.
pub(super) fn check_tsa_revocation(
    proof: &ProvenTime,
    sources: &[&RevocationData],
    ctx: &Context,
    now: OffsetDateTime,
) -> (Vec<CertificateRevocation>, Option<String>) {
    let lookups = revocation_statuses(&proof.chain, proof.gen_time, sources, &[], ctx, now);
    let mut problem = None;
    let mut out = Vec::new();
    for l in lookups {
        let subject = display_subject(l.cert);
        match &l.status {
            Status::Revoked { at, evidence, .. } if *at <= proof.gen_time => {
                problem.get_or_insert(format!(
                    "the TSA's certificate {subject} was revoked at {}, before the time it stamped, per {}",
                    rfc3339(*at),
                    describe(evidence)
                ));
            }
            Status::Unknown(problems) if unknown_fails(ctx.revocation, l.asked) => {
                problem.get_or_insert(format!(
                    "the revocation status of the TSA's certificate {subject} is unknown ({}) and mode {} requires it",
                    unknown_why(problems, ctx),
                    ctx.revocation.name()
                ));
            }
            _ => {}
        }
        out.push(CertificateRevocation::new(l.cert, l.status));
    }
    (out, problem)
}

/// A content timestamp (signed attribute id-aa-ets-contentTimestamp, ETSI EN 319 122-1
/// §5.2.8): a proof that the signed bytes existed before the signature. Reported, not used
/// as the signing time.
pub(super) fn check_content_timestamp(
    p: &mut Prepared<'_>,
    sd: &SignedData,
    bytes: &[u8],
    ctx: &Context,
    out: &mut Vec<TimestampReport>,
) {
    let Some(token) = sd
        .signer
        .signed_attr(&cms::oid::CONTENT_TIMESTAMP)
        .and_then(|a| a.values.first())
    else {
        return;
    };
    let Ok(range) = p.dict.check_byte_range(bytes) else {
        return;
    };
    let parts = [
        &bytes[..range.first_len],
        &bytes[range.second_start..range.second_start + range.second_len],
    ];
    match timestamp::verify_token(token, &parts, &ctx.trust, &ctx.cache) {
        Ok(proof) => {
            p.push(
                CheckId::ContentTimestamp,
                Outcome::Info,
                format!(
                    "a content timestamp by {} proves the signed content existed at {}",
                    display_subject(&proof.tsa),
                    rfc3339(proof.gen_time)
                ),
            );
            out.push(TimestampReport::proven("content", &proof, Vec::new(), None));
        }
        Err(e) => {
            p.push(
                CheckId::ContentTimestamp,
                Outcome::Warning,
                format!("the content timestamp proves no time: {e}"),
            );
            out.push(TimestampReport::unproven("content", e.to_string()));
        }
    }
}
