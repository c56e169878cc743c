//! The signer's certificate path and the revocation status of each certificate on it, with
//! the fetches the revocation mode allows.

use time::OffsetDateTime;

use super::context::{Context, RevocationMode};
use super::prepare::Prepared;
use crate::report::{
    CertificateRevocation, CheckId, Indication, Outcome, SubIndication, ValidationTime,
};
use crate::revocation::fetch::Online;
use crate::revocation::{self, RevocationData, Status};
use crate::trust::{self, Certificate, ChainError};

/// The revocation status of one certificate of a path, with what was tried.
pub(super) struct Lookup<'a> {
    pub(super) cert: &'a Certificate,
    pub(super) status: Status,
    /// Online sources the certificate names that were asked (none when not fetching).
    pub(super) asked: usize,
    /// Of those, the ones that did not answer at all.
    pub(super) unreachable: usize,
}

/// The revocation status of every certificate of `path` but its anchor at `at`: from the
/// data at hand (`sources`), then, in the modes that fetch, from the certificate's OCSP
/// responders and CRL distribution points (at most two of each). Only validated paths get
/// here, so every URL fetched was written by a CA the operator trusts.
pub(super) fn revocation_statuses<'a>(
    path: &'a trust::ValidPath,
    at: OffsetDateTime,
    sources: &[&RevocationData],
    extra: &[Certificate],
    ctx: &Context,
    now: OffsetDateTime,
) -> Vec<Lookup<'a>> {
    let online = ctx.online.as_deref().filter(|_| ctx.revocation.fetches());
    path.certificates
        .windows(2)
        .map(|pair| {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let mut status = revocation::status(cert, issuer, at, sources, extra);
            let mut asked = 0;
            let mut unreachable = 0;
            let undecided = match &status {
                Status::Unknown(problems) => Some(problems.clone()),
                _ => None,
            };
            if let (Some(mut problems), Some(online)) = (undecided, online) {
                let ocsp = cert.ocsp_urls.iter().take(2).map(|u| (u, true));
                let crls = cert.crl_urls.iter().take(2).map(|u| (u, false));
                let mut found = None;
                for (url, is_ocsp) in ocsp.chain(crls) {
                    asked += 1;
                    let fetched = if is_ocsp {
                        online
                            .ocsp(url, cert, issuer, now)
                            .map(|r| RevocationData::new(Vec::new(), vec![r]))
                    } else {
                        online
                            .crl(url, now)
                            .map(|c| RevocationData::new(vec![c], Vec::new()))
                    };
                    match fetched {
                        Ok(data) => match revocation::status(cert, issuer, at, &[&data], extra) {
                            Status::Unknown(p) if p.is_empty() => problems.push(format!(
                                "{url} answered without a word about this certificate"
                            )),
                            Status::Unknown(p) => problems.extend(p),
                            decided => {
                                found = Some(decided);
                                break;
                            }
                        },
                        Err(e) => {
                            if matches!(e, crate::revocation::fetch::FetchError::Unreachable { .. })
                            {
                                unreachable += 1;
                            }
                            problems.push(e.to_string());
                        }
                    }
                }
                status = found.unwrap_or(Status::Unknown(problems));
            }
            Lookup {
                cert,
                status,
                asked,
                unreachable,
            }
        })
        .collect()
}

/// The decision the statuses of the signer's path lead to (ETSI EN 319 102-1 §5.2.6,
/// §5.6.2.1): revoked before a proven signing time FAILS; revoked after it still PASSES and
/// is reported; revoked without a proven time is INDETERMINATE (REVOKED_NO_POE, or
/// REVOKED_CA_NO_POE for a CA); no usable data is decided by the mode.
pub(super) fn decide_revocation(
    p: &mut Prepared<'_>,
    lookups: Vec<Lookup<'_>>,
    at: &ValidationTime,
    ctx: &Context,
) -> Vec<CertificateRevocation> {
    let mut out = Vec::new();
    for Lookup {
        cert,
        status,
        asked,
        unreachable,
    } in lookups
    {
        let subject = display_subject(cert);
        match &status {
            Status::Good(e) => {
                p.pass(
                    CheckId::Revocation,
                    format!("{subject}: not revoked per {}", describe(e)),
                );
                p.vi(format!(
                    "{subject}: chứng thư số chưa bị thu hồi theo {}",
                    evidence_vi(e)
                ));
            }
            Status::Revoked {
                at: when,
                reason,
                evidence,
            } => {
                let why = reason
                    .as_deref()
                    .map(|r| format!(", reason {r}"))
                    .unwrap_or_default();
                let what = format!(
                    "{subject} was revoked at {}{why} per {}",
                    rfc3339(*when),
                    describe(evidence)
                );
                let revoked_vi = format!(
                    "Chứng thư số {subject} đã bị thu hồi lúc {} theo {}",
                    crate::report::vi_time(*when),
                    evidence_vi(evidence)
                );
                if at.proven && *when > at.time {
                    p.push(
                        CheckId::Revocation,
                        Outcome::Info,
                        format!(
                            "{what}, after the proven signing time {}: the signature stays valid",
                            rfc3339(at.time)
                        ),
                    );
                    p.vi(format!(
                        "{revoked_vi}, sau thời điểm ký đã được dấu thời gian chứng thực ({}): chữ ký vẫn hợp lệ",
                        crate::report::vi_time(at.time)
                    ));
                } else if at.proven {
                    p.fail(
                        CheckId::Revocation,
                        Indication::Failed,
                        SubIndication::Revoked,
                        format!(
                            "{what}, before the proven signing time {}",
                            rfc3339(at.time)
                        ),
                    );
                    p.vi(format!(
                        "{revoked_vi}, trước thời điểm ký đã được chứng thực ({})",
                        crate::report::vi_time(at.time)
                    ));
                } else {
                    let sub = if cert.ca.is_some() {
                        SubIndication::RevokedCaNoPoe
                    } else {
                        SubIndication::RevokedNoPoe
                    };
                    p.fail(
                        CheckId::Revocation,
                        Indication::Indeterminate,
                        sub,
                        format!("{what}; no timestamp proves the signature existed before that"),
                    );
                    p.vi(format!(
                        "{revoked_vi}; không có dấu thời gian chứng minh chữ ký có trước thời điểm đó"
                    ));
                }
            }
            Status::Unknown(problems) => {
                let text = format!(
                    "{subject}: revocation status not checked: {}",
                    unknown_why(problems, ctx)
                );
                if unknown_fails(ctx.revocation, asked) {
                    p.fail(
                        CheckId::Revocation,
                        Indication::Indeterminate,
                        SubIndication::TryLater,
                        text,
                    );
                } else {
                    p.push(CheckId::Revocation, Outcome::Warning, text);
                }
                let why = if unreachable > 0 {
                    "không kết nối được máy chủ thu hồi chứng thư"
                } else if asked > 0 {
                    "máy chủ thu hồi chứng thư không trả lời được về chứng thư này"
                } else if !problems.is_empty() {
                    "dữ liệu thu hồi có trong tệp không dùng được cho chứng thư này"
                } else if ctx.revocation.fetches() && ctx.online.is_some() {
                    "chứng thư số không ghi máy chủ thu hồi nào và tệp không kèm dữ liệu thu hồi"
                } else {
                    "tệp không kèm dữ liệu thu hồi và chế độ kiểm tra ngoại tuyến không tra cứu trực tuyến"
                };
                p.vi(format!(
                    "Không kiểm tra tình trạng thu hồi của chứng thư số {subject}: chưa kiểm tra được ({why})"
                ));
            }
        }
        out.push(CertificateRevocation::new(cert, status));
    }
    out
}

/// Whether a certificate without usable revocation data fails in `mode`, after `asked`
/// online sources.
pub(super) fn unknown_fails(mode: RevocationMode, asked: usize) -> bool {
    match mode {
        RevocationMode::Offline | RevocationMode::SoftFail => false,
        RevocationMode::HardFail => asked > 0,
        RevocationMode::Require => true,
    }
}

pub(super) fn unknown_why(problems: &[String], ctx: &Context) -> String {
    if !problems.is_empty() {
        return problems.join("; ");
    }
    if ctx.revocation.fetches() && ctx.online.is_some() {
        "no revocation data for it was found, and it names no OCSP responder or CRL distribution point".to_owned()
    } else {
        format!(
            "no revocation data for it was found (mode {}: nothing is fetched)",
            ctx.revocation.name()
        )
    }
}

pub(super) fn display_subject(cert: &Certificate) -> String {
    cert.names
        .common_name
        .clone()
        .unwrap_or_else(|| cert.names.subject.clone())
}

/// Why a certificate path failed, for a clerk.
pub(super) fn chain_vi(e: &ChainError) -> String {
    use crate::report::vi_time;
    match e {
        ChainError::NoPathToAnchor { .. } => {
            "Chứng thư số không tin cậy: không tìm được chuỗi chứng thư đến chứng thư gốc được tin cậy".into()
        }
        ChainError::BadSignature { subject } => {
            format!("Chứng thư số không tin cậy: chữ ký trên chứng thư {subject} không đúng")
        }
        ChainError::NotYetValid { subject, not_before, .. } => format!(
            "Chứng thư số {subject} chưa có hiệu lực tại thời điểm ký (có hiệu lực từ {})",
            vi_time(*not_before)
        ),
        ChainError::Expired { subject, not_after, .. } => format!(
            "Chứng thư số đã hết hạn sử dụng: {subject} hết hạn lúc {}, trước thời điểm ký",
            vi_time(*not_after)
        ),
        ChainError::NotCa { subject } | ChainError::CaWithoutKeyCertSign { subject } => format!(
            "Chứng thư số không tin cậy: {subject} không được phép cấp chứng thư"
        ),
        ChainError::PathLenExceeded { subject, .. } => format!(
            "Chứng thư số không tin cậy: chuỗi chứng thư dưới {subject} dài hơn mức cho phép"
        ),
        ChainError::SignerKeyUsage => {
            "chứng thư số của người ký không được phép dùng để ký số (thiếu mục đích chữ ký số)".into()
        }
        ChainError::NotTimeStamping => {
            "chứng thư của dấu thời gian không phải của đơn vị cấp dấu thời gian".into()
        }
        ChainError::UnknownCriticalExtension { subject, .. } => format!(
            "không xử lý được chứng thư {subject}: có phần mở rộng bắt buộc chưa được hỗ trợ"
        ),
        ChainError::BudgetExhausted => {
            "không xử lý được chuỗi chứng thư số: vượt quá giới hạn kiểm tra".into()
        }
    }
}

/// A fetch failure, for a clerk.
pub(super) fn fetch_vi(e: &crate::revocation::fetch::FetchError) -> &'static str {
    match e {
        crate::revocation::fetch::FetchError::Unreachable { .. } => "không kết nối được máy chủ",
        crate::revocation::fetch::FetchError::BadAnswer { .. } => {
            "máy chủ trả về dữ liệu không dùng được"
        }
    }
}

/// The data that decided a revocation status, for a clerk.
pub(super) fn evidence_vi(e: &revocation::Evidence) -> String {
    let what = match e.kind {
        revocation::EvidenceKind::Ocsp => "phản hồi OCSP",
        revocation::EvidenceKind::Crl => "danh sách thu hồi (CRL)",
    };
    let source = match &e.source {
        revocation::Source::Signature => "kèm trong chữ ký".to_owned(),
        revocation::Source::Dss => "kèm trong tệp (DSS)".to_owned(),
        revocation::Source::File(p) => format!("tệp {p}"),
        revocation::Source::Online(u) => format!("tra cứu trực tuyến {u}"),
    };
    format!(
        "{what} của {} lúc {}, {source}",
        e.issuer,
        crate::report::vi_time(e.this_update)
    )
}

/// "the CRL of X issued T (source)" or "the OCSP response of R of T (source)".
pub(super) fn describe(e: &revocation::Evidence) -> String {
    let (what, when) = match e.kind {
        revocation::EvidenceKind::Ocsp => ("the OCSP response of", "for"),
        revocation::EvidenceKind::Crl => ("the CRL of", "issued"),
    };
    format!(
        "{what} {} {when} {} ({})",
        e.issuer,
        rfc3339(e.this_update),
        source_name(&e.source)
    )
}

/// Fetches, through authorityInfoAccess caIssuers, the issuers missing above `start` (at
/// most four steps, the first URL of each certificate) into `pool`. Returns whether any
/// certificate was added.
pub(super) fn fetch_missing_issuers(
    p: &mut Prepared<'_>,
    online: &Online,
    start: &Certificate,
    pool: &mut Vec<Certificate>,
    ctx: &Context,
    now: OffsetDateTime,
) -> bool {
    let known = |subject: &[u8], pool: &[Certificate]| {
        ctx.trust
            .anchors()
            .iter()
            .chain(ctx.trust.intermediates())
            .chain(pool)
            .any(|c| c.subject_raw == subject)
    };
    let mut added = false;
    let mut current = start.clone();
    for _ in 0..4 {
        if current.is_self_issued() || known(&current.issuer_raw, pool) {
            break;
        }
        let Some(url) = current.ca_issuers.first() else {
            break;
        };
        match online.ca_issuers(url, now) {
            Ok(certs) => {
                let next = certs
                    .iter()
                    .find(|c| c.subject_raw == current.issuer_raw)
                    .cloned();
                p.push(
                    CheckId::CertificateChain,
                    Outcome::Info,
                    format!(
                        "the issuer of {} was fetched from {url} (caIssuers)",
                        display_subject(&current)
                    ),
                );
                pool.extend(certs);
                added = true;
                match next {
                    Some(n) => current = n,
                    None => break,
                }
            }
            Err(e) => {
                p.push(
                    CheckId::CertificateChain,
                    Outcome::Warning,
                    format!(
                        "the missing issuer of {} could not be fetched: {e}",
                        display_subject(&current)
                    ),
                );
                p.vi(format!(
                    "không tải được chứng thư của đơn vị cấp cho {}: {}",
                    display_subject(&current),
                    fetch_vi(&e)
                ));
                break;
            }
        }
    }
    added
}

/// A time as RFC 3339, for check details.
pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

pub(super) fn source_name(s: &revocation::Source) -> String {
    match s {
        revocation::Source::Signature => "in the signature".into(),
        revocation::Source::Dss => "in the document's DSS".into(),
        revocation::Source::File(path) => format!("file {path}"),
        revocation::Source::Online(url) => format!("fetched from {url}"),
    }
}

pub(super) fn chain_sub_indication(e: &ChainError) -> SubIndication {
    match e {
        ChainError::NoPathToAnchor { .. } | ChainError::BadSignature { .. } => {
            SubIndication::NoCertificateChainFound
        }
        ChainError::Expired { .. } => SubIndication::OutOfBoundsNoPoe,
        ChainError::NotYetValid {
            end_entity: true, ..
        } => SubIndication::NotYetValid,
        ChainError::NotYetValid { .. } => SubIndication::OutOfBoundsNoPoe,
        ChainError::NotCa { .. }
        | ChainError::PathLenExceeded { .. }
        | ChainError::CaWithoutKeyCertSign { .. }
        | ChainError::SignerKeyUsage
        | ChainError::NotTimeStamping => SubIndication::ChainConstraintsFailure,
        ChainError::UnknownCriticalExtension { .. } | ChainError::BudgetExhausted => {
            SubIndication::CertificateChainGeneralFailure
        }
    }
}
