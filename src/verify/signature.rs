//! The checks of one signature once its digest is known: the signer's material (its CMS,
//! certificates and revocation data), the validation time, the chain and revocation
//! ([`super::chain`]), the timestamps ([`super::timestamps`]), and the report.

use time::OffsetDateTime;

use super::chain::{
    chain_sub_indication, chain_vi, decide_revocation, fetch_missing_issuers, revocation_statuses,
    rfc3339,
};
use super::context::{AlgorithmPolicy, Context, Inputs, WeakAlgorithmAction};
use super::prepare::Prepared;
use super::timestamps::{
    check_content_timestamp, check_document_timestamp, check_signature_timestamp,
};
use crate::cms::{self, DigestAlgorithm, EssBinding, SignatureScheme, SignedData};
use crate::pdf::SignatureKind;
use crate::report::{
    CertificateRevocation, ChainEntry, CheckId, Indication, Outcome, SignatureReport, Signer,
    SubIndication, TimeSource, TimestampReport, ValidationTime,
};
use crate::revocation::{self, RevocationData};
use crate::timestamp::{self, ClaimedVsProven, ProvenTime};
use crate::trust::{self, Certificate, ChainError, PathOptions};

/// What the document's `/DSS` holds for every signature.
pub(super) struct DocumentData {
    pub(super) revocation: RevocationData,
    pub(super) certs: Vec<Certificate>,
}

/// What a signature brings with it: its signer's certificate, the certificates and the
/// revocation data it embeds (then the document's), the time it claims, the time a
/// timestamp proves, and the timestamps it holds.
struct Material {
    signer: Option<Certificate>,
    certificates: Vec<Certificate>,
    revocation: RevocationData,
    claimed: Option<(OffsetDateTime, TimeSource)>,
    proven: Option<ProvenTime>,
    timestamps: Vec<TimestampReport>,
}

/// Runs the remaining checks on a prepared signature and builds its report: the signer's
/// material, the validation time, the chain and its revocation, then the report.
pub(super) fn evaluate(
    mut p: Prepared<'_>,
    bytes: &[u8],
    ctx: &Context,
    dss: &DocumentData,
    inputs: Inputs,
) -> SignatureReport {
    let mut material = signer_material(&mut p, bytes, ctx, dss, inputs.now);
    let mut validation_time = validation_time(&mut p, &material, inputs);
    let (chain, revocation) = chain_and_revocation(
        &mut p,
        &mut material,
        &validation_time,
        ctx,
        dss,
        inputs.now,
    );
    // A document timestamp proves its own time once its imprint, signature and TSA chain
    // (checked above with the timestamping purpose, at genTime) all hold.
    if p.dict.kind == SignatureKind::DocumentTimestamp
        && validation_time.source == TimeSource::TimestampToken
        && p.verdict.is_none()
    {
        validation_time.proven = true;
    }
    assemble(p, material, validation_time, chain, revocation)
}

/// The signer's certificate and what the signature embeds, with the checks of its CMS, its
/// signature value and its timestamps.
fn signer_material(
    p: &mut Prepared<'_>,
    bytes: &[u8],
    ctx: &Context,
    dss: &DocumentData,
    now: OffsetDateTime,
) -> Material {
    let dict = p.dict;
    let mut m = Material {
        signer: None,
        certificates: Vec::new(),
        revocation: RevocationData::default(),
        claimed: None,
        proven: None,
        timestamps: Vec::new(),
    };
    if dict.sub_filter.as_deref() == Some("adbe.x509.rsa_sha1") {
        evaluate_x509_rsa_sha1(p, bytes, &mut m.signer, ctx);
    } else if let Some(sd) = p.cms.take() {
        for (i, der) in sd.certificates.iter().enumerate() {
            match ctx.cache.certificate(der) {
                Ok(c) => m.certificates.push(c),
                // A certificate that does not parse is a malformed SignedData, not a
                // certificate to skip: the signer may well be the one that is unreadable.
                Err(e) => p.fail(
                    CheckId::CmsStructure,
                    Indication::Failed,
                    SubIndication::FormatFailure,
                    format!("embedded certificate {} cannot be parsed: {e}", i + 1),
                ),
            }
        }
        let (adbe_crls, adbe_ocsp) = sd.signer.adbe_revocation();
        m.revocation = RevocationData::from_ders(
            sd.crls.iter().chain(&adbe_crls).map(Vec::as_slice),
            sd.ocsp.iter().chain(&adbe_ocsp).map(Vec::as_slice),
            &revocation::Source::Signature,
        );
        m.signer = trust::find_certificate(&sd.signer.sid, &m.certificates, &ctx.trust);
        match &m.signer {
            Some(c) => p.pass(CheckId::SignerCertificate, format!("signer certificate {} found", c.names.subject)),
            None => p.fail(CheckId::SignerCertificate, Indication::Indeterminate, SubIndication::NoSigningCertificateFound,
                "the signer's certificate is neither in the signature nor in the configured certificates".into()),
        }
        if dict.kind == SignatureKind::DocumentTimestamp {
            m.claimed = check_document_timestamp(p, &sd);
        } else {
            check_content(p, &sd);
        }
        check_signed_attributes_and_value(p, &sd, m.signer.as_ref(), bytes, ctx);
        if dict.kind == SignatureKind::Signature {
            m.claimed = sd
                .signer
                .signing_time()
                .map(|t| (t, TimeSource::CmsSigningTime));
            let sources = [&m.revocation, &dss.revocation, &ctx.crls];
            m.proven = check_signature_timestamp(p, &sd, ctx, now, &sources, &mut m.timestamps);
            check_content_timestamp(p, &sd, bytes, ctx, &mut m.timestamps);
        }
    }
    // Certificates of the document's /DSS help build paths (a B-LT document keeps the
    // intermediates there), after the signature's own.
    m.certificates.extend(dss.certs.iter().cloned());
    if m.claimed.is_none() {
        m.claimed = dict.m_time.map(|t| (t, TimeSource::PdfM));
    }
    m
}

/// The time the signature is validated at: the caller's, the time a timestamp proves, the
/// time the signature claims, or else the time of the verification; and what the claimed
/// time says beside a proven one.
fn validation_time(p: &mut Prepared<'_>, m: &Material, inputs: Inputs) -> ValidationTime {
    let validation_time = match (inputs.at, &m.proven, m.claimed) {
        (Some(at), _, _) => ValidationTime {
            time: at,
            source: TimeSource::Caller,
            proven: false,
        },
        (None, Some(proof), _) => ValidationTime {
            time: proof.gen_time,
            source: TimeSource::TimestampToken,
            proven: true,
        },
        (None, None, Some((t, source))) => ValidationTime {
            time: t,
            source,
            proven: false,
        },
        (None, None, None) => ValidationTime {
            time: inputs.now,
            source: TimeSource::VerificationTime,
            proven: false,
        },
    };
    p.push(CheckId::ValidationTime, Outcome::Info, match validation_time.source {
        TimeSource::Caller => format!("validated at {} as the caller asked", rfc3339(validation_time.time)),
        TimeSource::VerificationTime => format!("no signing time in the signature; validated at the time of verification {}", rfc3339(validation_time.time)),
        TimeSource::TimestampToken if validation_time.proven => format!("validated at {}, the time its timestamp proves", rfc3339(validation_time.time)),
        TimeSource::TimestampToken => format!("validated at the timestamp's genTime {}, proven once the token and its TSA validate", rfc3339(validation_time.time)),
        _ => format!("validated at the claimed signing time {}; claimed by the signer, not proven by a timestamp", rfc3339(validation_time.time)),
    });
    if let (Some(proof), Some((claim, TimeSource::CmsSigningTime))) = (&m.proven, m.claimed) {
        match timestamp::compare_claimed(claim, proof.gen_time) {
            ClaimedVsProven::Consistent => {}
            ClaimedVsProven::LocalTimeLabelledUtc => p.push(CheckId::ValidationTime, Outcome::Info, format!(
                "the claimed signingTime {claim} is 7 hours after the timestamp: Vietnam time written as UTC by the signing tool, tolerated"
            )),
            ClaimedVsProven::Inconsistent(delta) => {
                p.push(CheckId::ValidationTime, Outcome::Warning, format!(
                    "the claimed signingTime {claim} is {delta} s away from the timestamp's {}; the timestamp's time is used", proof.gen_time
                ));
                p.vi(format!(
                    "thời gian ký do phần mềm khai báo ({}) lệch {delta} giây so với dấu thời gian ({}); dùng thời gian của dấu thời gian",
                    crate::report::vi_time(claim),
                    crate::report::vi_time(proof.gen_time)
                ));
            }
        }
    }
    validation_time
}

/// The signer's path at the validation time (with the issuers the mode lets kyso fetch)
/// and the revocation status of each certificate on it.
fn chain_and_revocation(
    p: &mut Prepared<'_>,
    m: &mut Material,
    validation_time: &ValidationTime,
    ctx: &Context,
    dss: &DocumentData,
    now: OffsetDateTime,
) -> (Vec<ChainEntry>, Vec<CertificateRevocation>) {
    let Some(cert) = &m.signer else {
        return (Vec::new(), Vec::new());
    };
    let options = PathOptions {
        at: validation_time.time,
        purpose: match p.dict.kind {
            SignatureKind::Signature => trust::Purpose::DocumentSigning,
            SignatureKind::DocumentTimestamp => trust::Purpose::TimeStamping,
        },
    };
    let mut built = trust::build_path_with(cert, &m.certificates, &ctx.trust, options, &ctx.cache);
    if matches!(built, Err(ChainError::NoPathToAnchor { .. })) {
        if let Some(online) = ctx.online.as_deref().filter(|_| ctx.revocation.fetches()) {
            if fetch_missing_issuers(p, online, cert, &mut m.certificates, ctx, now) {
                built =
                    trust::build_path_with(cert, &m.certificates, &ctx.trust, options, &ctx.cache);
            }
        }
    }
    match built {
        Ok(path) => {
            let chain: Vec<ChainEntry> = path
                .certificates
                .iter()
                .map(|c| ChainEntry {
                    subject: c.names.subject.clone(),
                    sha256: hex::encode(c.sha256),
                })
                .collect();
            p.pass(
                CheckId::CertificateChain,
                format!(
                    "the certificate chains to the trust anchor {} and is valid at {}",
                    chain.last().map_or("", |c| c.subject.as_str()),
                    validation_time.time
                ),
            );
            let sources = [&m.revocation, &dss.revocation, &ctx.crls];
            let statuses = revocation_statuses(
                &path,
                validation_time.time,
                &sources,
                &m.certificates,
                ctx,
                now,
            );
            let revocation = decide_revocation(p, statuses, validation_time, ctx);
            (chain, revocation)
        }
        Err(e) => {
            let sub = chain_sub_indication(&e);
            p.fail(
                CheckId::CertificateChain,
                Indication::Indeterminate,
                sub,
                e.to_string(),
            );
            p.vi(chain_vi(&e));
            (Vec::new(), Vec::new())
        }
    }
}

/// The signature's report, from its checks and what they found.
fn assemble(
    p: Prepared<'_>,
    m: Material,
    validation_time: ValidationTime,
    chain: Vec<ChainEntry>,
    revocation: Vec<CertificateRevocation>,
) -> SignatureReport {
    let dict = p.dict;
    let (indication, sub_indication) = match p.verdict {
        Some((i, s)) => (i, Some(s)),
        None => (Indication::Passed, None),
    };
    let signer = m.signer.as_ref().map(|c| Signer {
        common_name: c.names.common_name.clone(),
        organization: c.names.organization.clone(),
        organizational_units: c.names.organizational_units.clone(),
        email: c.names.email.clone(),
        subject: c.names.subject.clone(),
        issuer: c.names.issuer.clone(),
        serial: c.serial_hex(),
        certificate_sha256: hex::encode(c.sha256),
        key: format!("{} {}", c.public_key_kind, c.public_key_bits),
        identifiers: c.names.uids.clone(),
        certificate_policies: c.policies.clone(),
    });
    SignatureReport {
        field: dict.field.clone(),
        kind: dict.kind,
        sub_filter: dict.sub_filter.clone(),
        revision: dict.revision,
        certification: dict.certification.map(|d| d.permissions),
        coverage: p.coverage,
        byte_range: dict.byte_range_raw.clone(),
        indication,
        sub_indication,
        signer,
        signing_time: m.claimed.map(|(t, _)| t),
        validation_time,
        reason: dict.reason.clone(),
        location: dict.location.clone(),
        contact_info: dict.contact_info.clone(),
        name: dict.name.clone(),
        widget: dict.widget.clone(),
        chain,
        revocation,
        timestamps: m.timestamps,
        modifications: p.modifications,
        checks: p.checks,
        role: crate::policy::Role::Unknown,
        role_evidence: String::new(),
        role_evidence_vi: String::new(),
    }
}

/// The encapsulated content of a PDF signature: absent for the detached SubFilters (ISO
/// 32000-2 §12.8.3.3), the SHA-1 of the ranges for `adbe.pkcs7.sha1` (§12.8.3.3.1).
pub(super) fn check_content(p: &mut Prepared<'_>, sd: &SignedData) {
    let sub_filter = p.dict.sub_filter.as_deref().unwrap_or("");
    if sub_filter == "adbe.pkcs7.sha1" {
        match (&sd.econtent, &p.digest) {
            (Some(content), Some(digest)) if content == digest => {
                p.pass(CheckId::EncapsulatedContent, "the encapsulated SHA-1 equals the SHA-1 of the signed ranges".into());
            }
            (Some(_), Some(_)) => p.fail(CheckId::EncapsulatedContent, Indication::Failed, SubIndication::HashFailure,
                "the encapsulated SHA-1 differs from the SHA-1 of the signed ranges: the document was changed".into()),
            (None, _) => p.fail(CheckId::EncapsulatedContent, Indication::Failed, SubIndication::FormatFailure,
                "adbe.pkcs7.sha1 requires the SHA-1 digest as encapsulated content; there is none".into()),
            (Some(_), None) => p.push(CheckId::EncapsulatedContent, Outcome::Skipped, "the ranges could not be hashed".into()),
        }
    } else if sd.econtent.is_some() {
        p.fail(
            CheckId::EncapsulatedContent,
            Indication::Failed,
            SubIndication::FormatFailure,
            format!("{sub_filter} signatures must be detached, but this CMS encapsulates content"),
        );
    } else {
        p.pass(
            CheckId::EncapsulatedContent,
            "detached: no encapsulated content".into(),
        );
    }
}

/// `messageDigest`, `content-type`, the signature value, the ESS binding and the algorithm
/// policy (RFC 5652 §5.4, §5.6; ETSI EN 319 122-1 §5.2).
pub(super) fn check_signed_attributes_and_value(
    p: &mut Prepared<'_>,
    sd: &SignedData,
    cert: Option<&Certificate>,
    bytes: &[u8],
    ctx: &Context,
) {
    let si = &sd.signer;
    let Some(digest_alg) = DigestAlgorithm::from_oid(&si.digest_algorithm.oid) else {
        p.fail(
            CheckId::MessageDigest,
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
            format!(
                "the digest algorithm {} is not one kyso supports; the digest was not checked",
                si.digest_algorithm.oid
            ),
        );
        p.vi(format!(
            "thuật toán băm {} chưa được hỗ trợ nên chưa kiểm tra được",
            si.digest_algorithm.oid
        ));
        return;
    };
    // What the signed attributes' messageDigest must equal: the digest of the ranges, or of
    // the encapsulated content when there is one (adbe.pkcs7.sha1, timestamp tokens).
    let content_digest = match &sd.econtent {
        Some(content) => digest_alg.digest(content).ok(),
        None if Some(digest_alg) == p.digest_alg => p.digest.clone(),
        None => p.range.and_then(|r| {
            let mut h = digest_alg.hasher().ok()?;
            for s in r.slices(bytes) {
                h.update(s).ok()?;
            }
            digest_alg.finish(&mut h).ok()
        }),
    };
    if si.signed_attrs_der.is_some() {
        match (si.message_digest(), &content_digest) {
            (Some(md), Some(d)) if md == *d => p.pass(CheckId::MessageDigest,
                format!("messageDigest equals the {} of the signed content", digest_alg.name())),
            (Some(_), Some(_)) => p.fail(CheckId::MessageDigest, Indication::Failed, SubIndication::HashFailure,
                "messageDigest differs from the digest of the signed content: the document was changed after signing".into()),
            (None, _) => p.fail(CheckId::MessageDigest, Indication::Failed, SubIndication::FormatFailure,
                "the signed attributes have no messageDigest".into()),
            (Some(_), None) => p.push(CheckId::MessageDigest, Outcome::Skipped, "the signed content could not be hashed".into()),
        }
        match si.content_type() {
            Some(ct) if ct == sd.econtent_type => {
                p.pass(CheckId::ContentType, format!("content-type {ct}"))
            }
            Some(ct) => p.fail(
                CheckId::ContentType,
                Indication::Failed,
                SubIndication::FormatFailure,
                format!(
                    "content-type attribute {ct} differs from the encapsulated content type {}",
                    sd.econtent_type
                ),
            ),
            None => p.fail(
                CheckId::ContentType,
                Indication::Indeterminate,
                SubIndication::SigConstraintsFailure,
                "the signed attributes have no content-type (RFC 5652 §11.1 requires it)".into(),
            ),
        }
    } else {
        p.push(
            CheckId::MessageDigest,
            Outcome::Info,
            "no signed attributes: the signature is over the content itself".into(),
        );
    }

    let Some(scheme) = SignatureScheme::resolve(&si.signature_algorithm, digest_alg) else {
        let oid = si.signature_algorithm.oid.to_string();
        if let Some(what) = cms::not_a_signature_algorithm(&oid) {
            // An identifier of something else in the signature algorithm's place is a
            // malformed signature, not an algorithm kyso happens not to know.
            p.fail(
                CheckId::SignatureValue,
                Indication::Failed,
                SubIndication::FormatFailure,
                format!(
                    "the signature algorithm {oid} is not a signature algorithm: it names {what}"
                ),
            );
            p.vi(format!(
                "thuật toán chữ ký {oid} không phải là thuật toán chữ ký: chữ ký sai định dạng"
            ));
            return;
        }
        // Not knowing an algorithm says nothing about the signature: INDETERMINATE, never
        // FAILED (ETSI EN 319 102-1 §5.2.7, cryptographic constraints).
        p.fail(
            CheckId::SignatureValue,
            Indication::Indeterminate,
            SubIndication::CryptoConstraintsFailure,
            format!(
                "the signature algorithm {} is not one kyso supports; the signature value was not checked",
                si.signature_algorithm.oid
            ),
        );
        p.vi(format!(
            "thuật toán chữ ký {} chưa được hỗ trợ nên chưa kiểm tra được giá trị chữ ký",
            si.signature_algorithm.oid
        ));
        return;
    };
    if let Some(cert) = cert {
        // What the signature covers: the signed attributes, else the content itself — the
        // encapsulated content, or the two byte ranges, given as they lie in the file.
        let signed: Option<Vec<&[u8]>> = match (&si.signed_attrs_der, &sd.econtent) {
            (Some(attrs), _) => Some(vec![attrs.as_slice()]),
            (None, Some(c)) => Some(vec![c.as_slice()]),
            (None, None) => p.range.map(|r| r.slices(bytes).to_vec()),
        };
        match (cert.public_key(), signed) {
            (Some(key), Some(parts)) => {
                match cms::verify_signature(scheme, &key, &parts, &si.signature) {
                    Ok(()) => p.pass(
                        CheckId::SignatureValue,
                        format!(
                            "the {} signature verifies with the signer's key",
                            scheme.name()
                        ),
                    ),
                    Err(e) => p.fail(
                        CheckId::SignatureValue,
                        Indication::Failed,
                        SubIndication::SigCryptoFailure,
                        e.to_string(),
                    ),
                }
            }
            _ => p.push(
                CheckId::SignatureValue,
                Outcome::Skipped,
                "no signed data to check the signature over".into(),
            ),
        }
        match cms::ess_binding(si, &cert.der) {
            EssBinding::Matches => p.pass(CheckId::SigningCertificateAttribute, "the ESS signing-certificate attribute names the signer's certificate".into()),
            EssBinding::Absent => p.push(CheckId::SigningCertificateAttribute, Outcome::Warning,
                "no ESS signing-certificate attribute binds the certificate to the signature (required by PAdES, not by adbe.pkcs7)".into()),
            EssBinding::Mismatch => p.fail(CheckId::SigningCertificateAttribute, Indication::Indeterminate, SubIndication::NoSigningCertificateFound,
                "the ESS signing-certificate attribute names another certificate than the signer's".into()),
            EssBinding::Unreadable => p.fail(CheckId::SigningCertificateAttribute, Indication::Indeterminate, SubIndication::SigConstraintsFailure,
                "the ESS signing-certificate attribute cannot be read".into()),
        }
        check_algorithms(p, scheme, digest_alg, cert, ctx.algorithms);
    } else {
        p.push(
            CheckId::SignatureValue,
            Outcome::Skipped,
            "the signer's certificate is missing".into(),
        );
    }
}

/// Applies the algorithm policy to the signer's algorithms.
pub(super) fn check_algorithms(
    p: &mut Prepared<'_>,
    scheme: SignatureScheme,
    digest: DigestAlgorithm,
    cert: &Certificate,
    policy: AlgorithmPolicy,
) {
    let mut findings: Vec<(WeakAlgorithmAction, String)> = Vec::new();
    for d in [Some(digest), scheme.digest(), p.digest_alg]
        .into_iter()
        .flatten()
    {
        let (action, name) = match d {
            DigestAlgorithm::Md5 => (policy.md5, "MD5"),
            DigestAlgorithm::Sha1 => (policy.sha1, "SHA-1"),
            _ => continue,
        };
        let text = format!("the signature uses {name}");
        if !findings.iter().any(|(_, t)| *t == text) {
            findings.push((action, text));
        }
    }
    if cert.public_key_kind == "RSA" && cert.public_key_bits < policy.min_rsa_bits {
        findings.push((
            policy.small_rsa,
            format!(
                "the signer's RSA key has {} bits, under {}",
                cert.public_key_bits, policy.min_rsa_bits
            ),
        ));
    }
    // RFC 8419 §3: Ed448 signatures in CMS use SHAKE256 (and Ed25519 SHA-512) as digest.
    let eddsa_pair = match scheme {
        SignatureScheme::Ed448 => Some(DigestAlgorithm::Shake256),
        SignatureScheme::Ed25519 => Some(DigestAlgorithm::Sha512),
        _ => None,
    };
    if let Some(want) = eddsa_pair {
        if digest != want {
            findings.push((
                WeakAlgorithmAction::Reject,
                format!(
                    "{} requires {} as digest algorithm (RFC 8419), not {}",
                    scheme.name(),
                    want.name(),
                    digest.name()
                ),
            ));
        }
    }
    if findings.is_empty() {
        p.pass(
            CheckId::AlgorithmPolicy,
            format!(
                "{} with a {} {} key",
                scheme.name(),
                cert.public_key_kind,
                cert.public_key_bits
            ),
        );
    }
    for (action, text) in findings {
        match action {
            WeakAlgorithmAction::Accept => p.push(CheckId::AlgorithmPolicy, Outcome::Info, text),
            WeakAlgorithmAction::Warn => p.push(
                CheckId::AlgorithmPolicy,
                Outcome::Warning,
                format!("{text}, a weak algorithm"),
            ),
            WeakAlgorithmAction::Reject => p.fail(
                CheckId::AlgorithmPolicy,
                Indication::Indeterminate,
                SubIndication::CryptoConstraintsFailure,
                format!("{text}, which the algorithm policy rejects"),
            ),
        }
    }
}

/// `adbe.x509.rsa_sha1` (ISO 32000-1 §12.8.3.2): a bare PKCS#1 signature, certificates in
/// `/Cert`. kyso reads the signer certificate from the configured store by matching the key.
pub(super) fn evaluate_x509_rsa_sha1(
    p: &mut Prepared<'_>,
    bytes: &[u8],
    signer: &mut Option<Certificate>,
    ctx: &Context,
) {
    use der::Decode;
    let contents = &p.dict.contents;
    let value = der_len(contents)
        .and_then(|end| der::asn1::OctetStringRef::from_der(contents.get(..end)?).ok())
        .map(|o| o.as_bytes().to_vec());
    let Some(value) = value else {
        p.fail(
            CheckId::CmsStructure,
            Indication::Failed,
            SubIndication::FormatFailure,
            "adbe.x509.rsa_sha1 /Contents is not a DER OCTET STRING".into(),
        );
        return;
    };
    p.pass(
        CheckId::CmsStructure,
        "PKCS#1 signature value in a DER OCTET STRING".into(),
    );
    let Some(range) = p.range else { return };
    let parts = range.slices(bytes);
    let mut candidates = ctx.cache.certificates(&p.dict.certs);
    candidates.extend(ctx.trust.anchors().iter().cloned());
    let found = candidates.into_iter().find(|c| {
        c.public_key().is_some_and(|k| {
            cms::verify_signature(
                SignatureScheme::RsaPkcs1(DigestAlgorithm::Sha1),
                &k,
                &parts,
                &value,
            )
            .is_ok()
        })
    });
    match found {
        Some(c) => {
            p.pass(
                CheckId::SignatureValue,
                "the RSA PKCS#1 v1.5 with SHA-1 signature verifies with the certificate in /Cert"
                    .into(),
            );
            p.push(CheckId::AlgorithmPolicy, Outcome::Warning, "the signature uses SHA-1, a weak algorithm (adbe.x509.rsa_sha1 is deprecated in PDF 2.0)".into());
            *signer = Some(c);
        }
        None => p.fail(
            CheckId::SignatureValue,
            Indication::Failed,
            SubIndication::SigCryptoFailure,
            "the signature does not verify with any certificate in /Cert".into(),
        ),
    }
}

/// Length of the DER TLV at the start of `bytes`.
pub(super) fn der_len(bytes: &[u8]) -> Option<usize> {
    use der::{Decode, Reader};
    let mut r = der::SliceReader::new(bytes).ok()?;
    let header = der::Header::decode(&mut r).ok()?;
    usize::try_from(r.position())
        .ok()?
        .checked_add(usize::try_from(header.length).ok()?)
}
