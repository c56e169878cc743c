//! The core: `verify(bytes, &Context) -> Result<Report, VerifyError>`, pure and synchronous.
//!
//! It reads the PDF (`pdf`), checks each signature's ByteRange, parses its CMS (`cms`),
//! hashes the signed bytes, checks the signature value, builds the signer's certificate path
//! (`trust`), and assembles the report (`report`). It never reads the clock nor the network:
//! the validation time and "now" are in the [`Context`].
//!
//! `Err` means kyso could not evaluate the file at all (not a PDF, encrypted with a
//! password). A signature that fails is a successful call whose report says FAILED.

use openssl::hash::Hasher;
use time::OffsetDateTime;

use crate::cms::{self, DigestAlgorithm, EssBinding, SignatureScheme, SignedData};
use crate::pdf::{ByteRange, Coverage, PdfError, PdfFile, SignatureDict, SignatureKind};
use crate::report::{
    CertificateRevocation, ChainEntry, Check, CheckId, Indication, Outcome, Report,
    SignatureReport, Signer, SubIndication, TimeSource, TimestampReport, ValidationTime, Verdict,
};
use crate::revocation::fetch::Online;
use crate::revocation::{self, RevocationData, Status};
use crate::timestamp::{self, ClaimedVsProven, ProvenTime};
use crate::trust::{self, Certificate, ChainError, PathOptions, TrustStore};

/// Why a file could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("hashing failed in OpenSSL: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// What to do when an algorithm is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeakAlgorithmAction {
    Accept,
    /// Pass, with a warning on the signature.
    Warn,
    /// INDETERMINATE / CRYPTO_CONSTRAINTS_FAILURE.
    Reject,
}

/// The algorithm policy for *signers* (certificates of CAs are exempt: the first-generation
/// BCY CAs sign with SHA-1 and must keep working; see VN-PKI.md).
///
/// Default: MD5 rejected (collisions are practical), SHA-1 document digests and RSA keys
/// under 2048 bits warned about — SHA-1 second preimages are not practical, and rejecting
/// would fail legitimate older documents that a clerk must still be able to read.
#[derive(Debug, Clone, Copy)]
pub struct AlgorithmPolicy {
    pub md5: WeakAlgorithmAction,
    pub sha1: WeakAlgorithmAction,
    pub min_rsa_bits: u32,
    pub small_rsa: WeakAlgorithmAction,
}

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        AlgorithmPolicy {
            md5: WeakAlgorithmAction::Reject,
            sha1: WeakAlgorithmAction::Warn,
            min_rsa_bits: 2048,
            small_rsa: WeakAlgorithmAction::Warn,
        }
    }
}

/// Everything `verify` needs besides the bytes.
#[derive(Debug, Clone)]
pub struct Context {
    pub trust: TrustStore,
    /// Validate every signature at this time instead of its claimed signing time.
    pub at: Option<OffsetDateTime>,
    /// The time the verification runs at: the validation time of a signature that names no
    /// time at all, and the clock by which fetched revocation data and cached answers are
    /// still fresh.
    pub now: OffsetDateTime,
    pub algorithms: AlgorithmPolicy,
    /// CRLs the operator gave (`--crl`), beside those found in the document.
    pub crls: RevocationData,
    pub revocation: RevocationMode,
    /// Where revocation data and missing intermediates are fetched from, in the modes that
    /// fetch; `None` fetches nothing.
    pub online: Option<std::sync::Arc<Online>>,
    /// Parsed certificates and signature checks, shared by every verification made with this
    /// context and its clones ([`trust::Cache`]: bounded, and changing no outcome).
    pub cache: std::sync::Arc<trust::Cache>,
    /// The document rules judged beside the signatures, and the role rules.
    pub policy: crate::policy::PolicySettings,
}

/// Where revocation data may come from, and what to do when none decides a certificate's
/// status (README, "Revocation").
///
/// The library's default is `Offline`: a `Context` without an [`Online`] fetches nothing.
/// The CLI and the service default to `SoftFail` (README says why).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RevocationMode {
    /// Use the data in the signature, the document's `/DSS` and the operator's files; a
    /// certificate without any is reported as not checked.
    #[default]
    Offline,
    /// Also fetch (OCSP, CRL distribution points, caIssuers); a certificate nothing answers
    /// for is reported as not checked and the signature still passes.
    SoftFail,
    /// Also fetch; when a certificate names a source and no source gives a usable answer,
    /// the signature is INDETERMINATE (TRY_LATER). A certificate that names no source is
    /// reported as not checked.
    HardFail,
    /// Also fetch; every certificate of the path needs revocation data, else the signature
    /// is INDETERMINATE (TRY_LATER).
    Require,
}

impl RevocationMode {
    fn fetches(self) -> bool {
        self != Self::Offline
    }
}

crate::names::names!(RevocationMode, "revocation mode", {
    Offline = "offline",
    SoftFail = "soft-fail",
    HardFail = "hard-fail",
    Require = "require",
});

impl Context {
    pub fn new(trust: TrustStore, now: OffsetDateTime) -> Self {
        Context {
            trust,
            at: None,
            now,
            algorithms: AlgorithmPolicy::default(),
            crls: RevocationData::default(),
            revocation: RevocationMode::default(),
            online: None,
            cache: std::sync::Arc::default(),
            policy: crate::policy::PolicySettings::default(),
        }
    }
}

/// What a [`Context`] is built from: the operator's trust, revocation and policy settings,
/// as `kyso verify`'s flags and the service's configuration give them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Trust anchor files or folders (PEM or DER).
    pub trust: Vec<std::path::PathBuf>,
    /// Intermediate CA files or folders.
    pub intermediates: Vec<std::path::PathBuf>,
    /// Profiles of [`Settings::trust_store`] whose certificates are trusted too.
    pub trust_profiles: Vec<String>,
    /// Where the trust profiles are kept.
    pub trust_store: trust::profiles::Store,
    /// CRL files or folders, beside the revocation data in documents.
    pub crl: Vec<std::path::PathBuf>,
    /// Where revocation data may come from.
    pub revocation: RevocationMode,
    /// Timeout of each online fetch (in the modes that fetch).
    pub fetch_timeout: std::time::Duration,
    /// Where fetched CRLs and caIssuers certificates are kept across runs.
    pub cache_dir: Option<std::path::PathBuf>,
    /// The document rules judged beside the signatures.
    pub policy: crate::policy::PolicyChoice,
    /// The profile documents must be.
    pub expect: crate::policy::Expect,
    /// The operator's roles file (TOML).
    pub roles: Option<std::path::PathBuf>,
}

/// Why a [`Context`] cannot be built from its [`Settings`].
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("trust configuration")]
    Trust(#[source] trust::TrustError),
    #[error("trust profile {name}")]
    Profile {
        name: String,
        #[source]
        source: trust::profiles::ProfileError,
    },
    #[error("revocation data")]
    Revocation(#[source] revocation::RevocationError),
    #[error("roles")]
    Roles(#[source] crate::policy::roles::RolesError),
}

impl Context {
    /// The context `settings` describe: their certificates, profiles, CRLs and roles read
    /// from disk, and a fetcher when the revocation mode fetches.
    pub fn from_settings(settings: &Settings, now: OffsetDateTime) -> Result<Self, ContextError> {
        let mut trust = TrustStore::from_paths(&settings.trust, &settings.intermediates)
            .map_err(ContextError::Trust)?;
        for name in &settings.trust_profiles {
            let profile =
                settings
                    .trust_store
                    .load(name)
                    .map_err(|source| ContextError::Profile {
                        name: name.clone(),
                        source,
                    })?;
            trust.extend(profile);
        }
        let mut ctx = Context::new(trust, now);
        ctx.crls = RevocationData::from_paths(&settings.crl).map_err(ContextError::Revocation)?;
        ctx.revocation = settings.revocation;
        if settings.revocation.fetches() {
            let fetcher = crate::revocation::fetch::HttpFetcher::new(
                settings
                    .fetch_timeout
                    .max(std::time::Duration::from_secs(1)),
            );
            ctx.online = Some(std::sync::Arc::new(Online::new(
                std::sync::Arc::new(fetcher),
                settings.cache_dir.clone(),
            )));
        }
        ctx.policy.choice = settings.policy;
        ctx.policy.expect = settings.expect;
        if let Some(path) = &settings.roles {
            ctx.policy.roles =
                crate::policy::RoleRules::with_operator(path).map_err(ContextError::Roles)?;
        }
        Ok(ctx)
    }
}

/// Why the signed version of a signature cannot be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("there is no signature {number}: the file has {count}")]
    NoSuchSignature { number: usize, count: usize },
    #[error("signature {number} does not say which bytes it covers: {source}")]
    ByteRange {
        number: usize,
        #[source]
        source: crate::pdf::ByteRangeError,
    },
}

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

/// Verifies every signature of the PDF in `bytes`.
pub fn verify(bytes: &[u8], ctx: &Context) -> Result<Report, VerifyError> {
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
        .map(|p| evaluate(p, bytes, ctx, &dss))
        .collect::<Result<Vec<_>, _>>()?;
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
    ctx.policy.apply(&mut report);
    Ok(report)
}

/// What the document's `/DSS` holds for every signature.
struct DocumentData {
    revocation: RevocationData,
    certs: Vec<Certificate>,
}

/// A signature after the checks that need no digest, waiting for its digest.
struct Prepared<'a> {
    dict: &'a SignatureDict,
    checks: Vec<Check>,
    /// The first decisive failure, if any (indication, sub-indication).
    verdict: Option<(Indication, SubIndication)>,
    range: Option<ByteRange>,
    coverage: Option<Coverage>,
    cms: Option<SignedData>,
    /// The digest the signature needs over its ranges, and (once computed) the value.
    digest_alg: Option<DigestAlgorithm>,
    digest: Option<Vec<u8>>,
    modifications: Vec<crate::integrity::Change>,
}

impl<'a> Prepared<'a> {
    fn new(dict: &'a SignatureDict, bytes: &[u8], pdf: &PdfFile) -> Self {
        let mut p = Prepared {
            dict,
            checks: Vec::new(),
            verdict: None,
            range: None,
            coverage: None,
            cms: None,
            digest_alg: None,
            digest: None,
            modifications: Vec::new(),
        };
        if let Some(why) = &dict.unreadable {
            p.fail(
                CheckId::SignatureDictionary,
                Indication::Failed,
                SubIndication::FormatFailure,
                why.clone(),
            );
            return p;
        }
        if dict.superseded {
            p.fail(
                CheckId::FinalRevision,
                Indication::Failed,
                SubIndication::FormatFailure,
                format!(
                    "this signature of revision {} was overwritten or removed by a later revision: the document as displayed no longer shows it",
                    dict.revision
                ),
            );
        }
        match dict.check_byte_range(bytes) {
            Ok(range) => {
                match dict.gap_in_own_object(&range) {
                    Err(e) => p.fail(
                        CheckId::ByteRange,
                        Indication::Failed,
                        SubIndication::FormatFailure,
                        e.to_string(),
                    ),
                    Ok(()) => p.pass(
                        CheckId::ByteRange,
                        format!(
                            "ByteRange {:?} is well formed and its gap is exactly /Contents",
                            dict.byte_range_raw
                        ),
                    ),
                }
                p.range = Some(range);
                let coverage = coverage(range.end(), bytes, pdf);
                p.coverage = Some(coverage);
                match coverage {
                    Coverage::EntireFile => p.pass(CheckId::Coverage, "the signature covers the entire file".into()),
                    Coverage::EntireRevision(n) => match incomplete_tail(bytes, pdf) {
                        // Bytes after the last complete revision are no incremental update a
                        // verifier can account for, yet lenient readers display what they hold.
                        Some(len) => p.fail(CheckId::Coverage, Indication::Failed, SubIndication::FormatFailure,
                            format!("the signature covers revision {n}, but the file ends with {len} bytes that are not a complete revision")),
                        None => p.push(CheckId::Coverage, Outcome::Info, format!("the signature covers revision {n} of {}; later revisions follow", pdf.revisions.len())),
                    },
                    Coverage::Partial => p.fail(CheckId::Coverage, Indication::Failed, SubIndication::FormatFailure,
                        format!("the signed bytes end at offset {}, which is neither the end of the file nor the end of a revision", range.end())),
                }
            }
            Err(e) => p.fail(
                CheckId::ByteRange,
                Indication::Failed,
                SubIndication::FormatFailure,
                e.to_string(),
            ),
        }
        if dict.blanked {
            p.fail(
                CheckId::CmsStructure,
                Indication::Failed,
                SubIndication::FormatFailure,
                "the signature value was removed after signing: /Contents is all zero, yet its /ByteRange is filled in and its appearance is drawn".into(),
            );
            p.vi("chữ ký đã bị gỡ bỏ sau khi ký: giá trị chữ ký bị xóa trắng, trong khi vùng ký và hình chữ ký vẫn còn".into());
            return p;
        }
        let sub_filter = dict.sub_filter.as_deref().unwrap_or("");
        let supported = match dict.kind {
            SignatureKind::DocumentTimestamp => sub_filter == "ETSI.RFC3161",
            SignatureKind::Signature => matches!(
                sub_filter,
                "adbe.pkcs7.detached"
                    | "ETSI.CAdES.detached"
                    | "adbe.pkcs7.sha1"
                    | "adbe.x509.rsa_sha1"
            ),
        };
        if !supported {
            p.fail(
                CheckId::SubFilter,
                Indication::Indeterminate,
                SubIndication::FormatFailure,
                format!(
                    "SubFilter '{sub_filter}' is not supported; the signature was not evaluated"
                ),
            );
            return p;
        }
        p.pass(CheckId::SubFilter, format!("SubFilter {sub_filter}"));
        if sub_filter == "adbe.x509.rsa_sha1" {
            // ISO 32000-1 §12.8.3.2: /Contents is a DER OCTET STRING holding the PKCS#1
            // signature over the SHA-1 of the ranges; the certificates sit in /Cert.
            p.digest_alg = Some(DigestAlgorithm::Sha1);
            return p;
        }
        match cms::parse_signed_data(&dict.contents) {
            Ok(sd) => {
                p.pass(
                    CheckId::CmsStructure,
                    "CMS SignedData with one SignerInfo".into(),
                );
                p.digest_alg = match (dict.kind, sub_filter) {
                    (SignatureKind::DocumentTimestamp, _) => {
                        cms::parse_tst_info(sd.econtent.as_deref().unwrap_or(&[]))
                            .ok()
                            .and_then(|t| DigestAlgorithm::from_oid(&t.imprint_algorithm.oid))
                    }
                    (_, "adbe.pkcs7.sha1") => Some(DigestAlgorithm::Sha1),
                    _ => DigestAlgorithm::from_oid(&sd.signer.digest_algorithm.oid),
                };
                p.cms = Some(sd);
            }
            Err(e) => p.fail(
                CheckId::CmsStructure,
                Indication::Failed,
                SubIndication::FormatFailure,
                e.to_string(),
            ),
        }
        p
    }

    fn push(&mut self, id: CheckId, outcome: Outcome, detail: String) {
        self.checks.push(Check {
            id,
            outcome,
            detail,
            detail_vi: crate::report::check_vi(id, outcome).to_owned(),
        });
    }

    /// Says the last check's detail for a clerk, in Vietnamese, with its facts.
    fn vi(&mut self, text: String) {
        if let Some(c) = self.checks.last_mut() {
            c.detail_vi = text;
        }
    }

    fn pass(&mut self, id: CheckId, detail: String) {
        self.push(id, Outcome::Passed, detail);
    }

    fn fail(&mut self, id: CheckId, indication: Indication, sub: SubIndication, detail: String) {
        self.push(id, Outcome::Failed, detail);
        // The first FAILED wins over any INDETERMINATE; among equals, the first found.
        match self.verdict {
            None => self.verdict = Some((indication, sub)),
            Some((Indication::Indeterminate, _)) if indication == Indication::Failed => {
                self.verdict = Some((indication, sub));
            }
            _ => {}
        }
    }
}

/// Where the signed bytes end, relative to the file and its revisions. Trailing whitespace
/// or NUL padding after the last `%%EOF` does not count as content.
fn coverage(end: usize, bytes: &[u8], pdf: &PdfFile) -> Coverage {
    if is_blank(&bytes[end.min(bytes.len())..]) {
        return Coverage::EntireFile;
    }
    // The end of a revision is its %%EOF plus an optional end-of-line: accept either.
    pdf.revisions
        .iter()
        .find(|r| {
            let eof_end = r.end
                - bytes[..r.end]
                    .iter()
                    .rev()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
            (eof_end..=r.end).contains(&end)
        })
        .map_or(Coverage::Partial, |r| Coverage::EntireRevision(r.number))
}

/// What the change analysis found for one signature.
enum ChangeOutcome {
    /// The signature does not cover a revision boundary (no ranges, or a partial range).
    NotApplicable,
    /// The signature covers the whole file: nothing came after it.
    NothingAfter,
    Analysed(crate::integrity::Analysis),
    NotAnalysed(String),
}

/// Analyses what later revisions changed after each signature that covers an earlier
/// revision (`integrity`). Each signed revision is loaded once, however many signatures
/// cover it, and at most [`crate::pdf::MAX_EARLIER_REVISION_LOADS`] of them. It needs only
/// the parsed file and the coverages, so a large file has it run beside the hashing of the
/// signed ranges ([`PARALLEL_ANALYSIS_FROM`]).
fn analyse_changes(
    bytes: &[u8],
    pdf: &PdfFile,
    coverages: &[Option<Coverage>],
) -> Vec<ChangeOutcome> {
    use crate::integrity::{self, Permissions};
    use crate::pdf::MAX_EARLIER_REVISION_LOADS;
    // The certification signature's DocMDP governs every later change (ISO 32000-1
    // §12.8.2.2); with several, the strictest.
    let docmdp = pdf
        .signatures
        .iter()
        .filter_map(|s| s.certification)
        .map(|d| d.permissions)
        .min();
    let mut loaded: std::collections::BTreeMap<usize, Option<lopdf::Document>> = Default::default();
    coverages
        .iter()
        .map(|coverage| {
            let k = match coverage {
                Some(Coverage::EntireRevision(k)) => *k,
                Some(Coverage::EntireFile) => return ChangeOutcome::NothingAfter,
                _ => return ChangeOutcome::NotApplicable,
            };
            if !loaded.contains_key(&k) && loaded.len() >= MAX_EARLIER_REVISION_LOADS {
                return ChangeOutcome::NotAnalysed(format!(
                    "more than {MAX_EARLIER_REVISION_LOADS} signed revisions: the changes after revision {k} were not analysed"
                ));
            }
            let Some(old) = loaded.entry(k).or_insert_with(|| pdf.load_revision(bytes, k).ok()) else {
                return ChangeOutcome::NotAnalysed(format!(
                    "revision {k} cannot be read on its own, so the changes after it were not analysed"
                ));
            };
            // A lock's /P (PDF 2.0) restricts every change after its signature as DocMDP does;
            // the strictest of what the certification and the signatures up to k say.
            let earlier = || pdf.signatures.iter().filter(|s| s.revision <= k);
            let lock_p = earlier().filter_map(|s| s.lock_permissions).min();
            let perms = Permissions {
                docmdp: match (docmdp, lock_p) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                locks: earlier().filter_map(|s| s.lock.clone()).collect(),
                p_from_lock: lock_p.is_some_and(|l| docmdp.is_none_or(|d| l < d)),
            };
            ChangeOutcome::Analysed(integrity::analyse(old, &pdf.document, &pdf.revisions, k, &perms))
        })
        .collect()
}

/// Turns each signature's change analysis into its `modifications` check and list.
fn apply_changes(prepared: &mut [Prepared<'_>], outcomes: Vec<ChangeOutcome>) {
    use crate::integrity::{Change, Verdict as Allowed};
    let describe = |c: &Change| format!("revision {}, object {}: {}", c.revision, c.object, c.rule);
    for (p, outcome) in prepared.iter_mut().zip(outcomes) {
        match outcome {
            ChangeOutcome::NotApplicable => {}
            ChangeOutcome::NothingAfter => {
                p.pass(
                    CheckId::Modifications,
                    "no revision follows the signature: nothing was changed after it".into(),
                );
            }
            ChangeOutcome::NotAnalysed(why) => {
                p.fail(
                    CheckId::Modifications,
                    Indication::Indeterminate,
                    SubIndication::ModificationsNotAnalysed,
                    why,
                );
            }
            ChangeOutcome::Analysed(analysis) => {
                let disallowed: Vec<&Change> = analysis
                    .changes
                    .iter()
                    .filter(|c| c.verdict == Allowed::Disallowed)
                    .collect();
                let warned: Vec<String> = analysis
                    .changes
                    .iter()
                    .filter(|c| c.verdict == Allowed::AllowedWithWarning)
                    .map(describe)
                    .collect();
                if let Some(first) = disallowed.first() {
                    p.fail(
                        CheckId::Modifications,
                        Indication::Failed,
                        SubIndication::DisallowedModification,
                        format!(
                            "{} disallowed change(s) after the signature; first: {}",
                            disallowed.len(),
                            describe(first)
                        ),
                    );
                    p.vi(format!(
                        "Tài liệu đã bị thay đổi sau khi ký, vượt quá phạm vi cho phép: {} thay đổi không được phép, đầu tiên ở lần cập nhật {}, đối tượng {} ({})",
                        disallowed.len(),
                        first.revision,
                        first.object,
                        crate::report::change_class_vi(first.class)
                    ));
                } else if !warned.is_empty() {
                    p.push(
                        CheckId::Modifications,
                        Outcome::Warning,
                        format!(
                            "changes to report after the signature (allowed): {}",
                            warned.join("; ")
                        ),
                    );
                } else {
                    p.pass(
                        CheckId::Modifications,
                        format!(
                            "the signed content is unchanged; the {} later change(s) stay within the permitted limits",
                            analysis.changes.len()
                        ),
                    );
                }
                if analysis.truncated {
                    p.push(
                        CheckId::Modifications,
                        Outcome::Info,
                        format!(
                            "more than {} changes: the list stops there",
                            crate::integrity::MAX_CHANGES_LISTED
                        ),
                    );
                }
                p.modifications = analysis.changes;
            }
        }
    }
}

/// The length of what follows the last complete revision, when it is more than whitespace.
fn incomplete_tail(bytes: &[u8], pdf: &PdfFile) -> Option<usize> {
    let last_end = pdf.revisions.last().map_or(0, |r| r.end);
    let tail = &bytes[last_end.min(bytes.len())..];
    (!is_blank(tail)).then_some(tail.len())
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | b'\0'))
}

/// Hashes every signature's ranges and the whole file in about one pass. The ranges of the
/// signatures of one file share a prefix — each later revision starts with all of the
/// earlier ones — and so does the whole file: with the requests sorted by where their first
/// range ends, one running hasher per algorithm over `[0, pos)` is advanced to each first
/// range's end and cloned, and the clone takes the rest. The file's SHA-256 is the last
/// SHA-256 request, a "first range" covering all of it. Returns the file's SHA-256.
fn hash_ranges_and_file(
    bytes: &[u8],
    prepared: &mut [Prepared<'_>],
) -> Result<[u8; 32], VerifyError> {
    /// One digest to compute: `alg` over `[0, first_len)` then `second`; `index` is the
    /// signature it is for, `None` for the whole file.
    struct Request {
        alg: DigestAlgorithm,
        first_len: usize,
        second: std::ops::Range<usize>,
        index: Option<usize>,
    }
    let mut requests: Vec<Request> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let (alg, r) = (p.digest_alg?, p.range?);
            Some(Request {
                alg,
                first_len: r.first_len,
                second: r.second_start..r.end(),
                index: Some(i),
            })
        })
        .collect();
    requests.push(Request {
        alg: DigestAlgorithm::Sha256,
        first_len: bytes.len(),
        second: bytes.len()..bytes.len(),
        index: None,
    });
    requests.sort_by_key(|r| (r.alg as u8, r.first_len, r.index.is_none()));
    let mut file = [0u8; 32];
    let mut running: Option<(DigestAlgorithm, Hasher, usize)> = None;
    for r in requests {
        let (_, hasher, pos) = match running.take() {
            Some((a, h, pos)) if a == r.alg && pos <= r.first_len => running.insert((a, h, pos)),
            _ => running.insert((r.alg, r.alg.hasher()?, 0)),
        };
        hasher.update(&bytes[*pos..r.first_len])?;
        *pos = r.first_len;
        let mut branch = hasher.clone();
        branch.update(&bytes[r.second])?;
        let digest = r.alg.finish(&mut branch)?;
        match r.index {
            Some(i) => prepared[i].digest = Some(digest),
            None => file.copy_from_slice(&digest),
        }
    }
    Ok(file)
}

/// Runs the remaining checks on a prepared signature and builds its report.
fn evaluate(
    mut p: Prepared<'_>,
    bytes: &[u8],
    ctx: &Context,
    dss: &DocumentData,
) -> Result<SignatureReport, VerifyError> {
    let dict = p.dict;
    let mut signer_cert: Option<Certificate> = None;
    let mut embedded: Vec<Certificate> = Vec::new();
    let mut claimed: Option<(OffsetDateTime, TimeSource)> = None;
    let mut proven: Option<ProvenTime> = None;
    let mut embedded_data = RevocationData::default();
    let mut timestamps = Vec::new();

    if dict.sub_filter.as_deref() == Some("adbe.x509.rsa_sha1") {
        evaluate_x509_rsa_sha1(&mut p, bytes, &mut signer_cert, ctx);
    } else if let Some(sd) = p.cms.take() {
        for (i, der) in sd.certificates.iter().enumerate() {
            match ctx.cache.certificate(der) {
                Ok(c) => embedded.push(c),
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
        embedded_data = RevocationData::from_ders(
            sd.crls.iter().chain(&adbe_crls).map(Vec::as_slice),
            sd.ocsp.iter().chain(&adbe_ocsp).map(Vec::as_slice),
            &revocation::Source::Signature,
        );
        signer_cert = trust::find_certificate(&sd.signer.sid, &embedded, &ctx.trust);
        match &signer_cert {
            Some(c) => p.pass(CheckId::SignerCertificate, format!("signer certificate {} found", c.names.subject)),
            None => p.fail(CheckId::SignerCertificate, Indication::Indeterminate, SubIndication::NoSigningCertificateFound,
                "the signer's certificate is neither in the signature nor in the configured certificates".into()),
        }
        if dict.kind == SignatureKind::DocumentTimestamp {
            claimed = check_document_timestamp(&mut p, &sd);
        } else {
            check_content(&mut p, &sd);
        }
        check_signed_attributes_and_value(&mut p, &sd, signer_cert.as_ref(), bytes, ctx);
        if dict.kind == SignatureKind::Signature {
            claimed = sd
                .signer
                .signing_time()
                .map(|t| (t, TimeSource::CmsSigningTime));
            let sources = [&embedded_data, &dss.revocation, &ctx.crls];
            proven = check_signature_timestamp(&mut p, &sd, ctx, &sources, &mut timestamps);
            check_content_timestamp(&mut p, &sd, bytes, ctx, &mut timestamps);
        }
    }
    // Certificates of the document's /DSS help build paths (a B-LT document keeps the
    // intermediates there), after the signature's own.
    embedded.extend(dss.certs.iter().cloned());
    if claimed.is_none() {
        claimed = dict.m_time.map(|t| (t, TimeSource::PdfM));
    }
    let mut validation_time = match (ctx.at, &proven, claimed) {
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
            time: ctx.now,
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
    if let (Some(proof), Some((claim, TimeSource::CmsSigningTime))) = (&proven, claimed) {
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

    let mut chain = Vec::new();
    let mut revocation = Vec::new();
    if let Some(cert) = &signer_cert {
        let options = PathOptions {
            at: validation_time.time,
            purpose: match dict.kind {
                SignatureKind::Signature => trust::Purpose::DocumentSigning,
                SignatureKind::DocumentTimestamp => trust::Purpose::TimeStamping,
            },
        };
        let mut built = trust::build_path_with(cert, &embedded, &ctx.trust, options, &ctx.cache);
        if matches!(built, Err(ChainError::NoPathToAnchor { .. })) {
            if let Some(online) = ctx.online.as_deref().filter(|_| ctx.revocation.fetches()) {
                if fetch_missing_issuers(&mut p, online, cert, &mut embedded, ctx) {
                    built =
                        trust::build_path_with(cert, &embedded, &ctx.trust, options, &ctx.cache);
                }
            }
        }
        match built {
            Ok(path) => {
                chain = path
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
                let sources = [&embedded_data, &dss.revocation, &ctx.crls];
                let statuses =
                    revocation_statuses(&path, validation_time.time, &sources, &embedded, ctx);
                revocation = decide_revocation(&mut p, statuses, &validation_time, ctx);
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
            }
        }
    }

    // A document timestamp proves its own time once its imprint, signature and TSA chain
    // (checked above with the timestamping purpose, at genTime) all hold.
    if dict.kind == SignatureKind::DocumentTimestamp
        && validation_time.source == TimeSource::TimestampToken
        && p.verdict.is_none()
    {
        validation_time.proven = true;
    }
    let (indication, sub_indication) = match p.verdict {
        Some((i, s)) => (i, Some(s)),
        None => (Indication::Passed, None),
    };
    let signer = signer_cert.as_ref().map(|c| Signer {
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
    Ok(SignatureReport {
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
        signing_time: claimed.map(|(t, _)| t),
        validation_time,
        reason: dict.reason.clone(),
        location: dict.location.clone(),
        contact_info: dict.contact_info.clone(),
        name: dict.name.clone(),
        widget: dict.widget.clone(),
        chain,
        revocation,
        timestamps,
        modifications: p.modifications,
        checks: p.checks,
        role: crate::policy::Role::Unknown,
        role_evidence: String::new(),
        role_evidence_vi: String::new(),
    })
}

/// The revocation status of one certificate of a path, with what was tried.
struct Lookup<'a> {
    cert: &'a Certificate,
    status: Status,
    /// Online sources the certificate names that were asked (none when not fetching).
    asked: usize,
    /// Of those, the ones that did not answer at all.
    unreachable: usize,
}

/// The revocation status of every certificate of `path` but its anchor at `at`: from the
/// data at hand (`sources`), then, in the modes that fetch, from the certificate's OCSP
/// responders and CRL distribution points (at most two of each). Only validated paths get
/// here, so every URL fetched was written by a CA the operator trusts.
fn revocation_statuses<'a>(
    path: &'a trust::ValidPath,
    at: OffsetDateTime,
    sources: &[&RevocationData],
    extra: &[Certificate],
    ctx: &Context,
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
                            .ocsp(url, cert, issuer, ctx.now)
                            .map(|r| RevocationData::new(Vec::new(), vec![r]))
                    } else {
                        online
                            .crl(url, ctx.now)
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
fn decide_revocation(
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
fn unknown_fails(mode: RevocationMode, asked: usize) -> bool {
    match mode {
        RevocationMode::Offline | RevocationMode::SoftFail => false,
        RevocationMode::HardFail => asked > 0,
        RevocationMode::Require => true,
    }
}

fn unknown_why(problems: &[String], ctx: &Context) -> String {
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

fn display_subject(cert: &Certificate) -> String {
    cert.names
        .common_name
        .clone()
        .unwrap_or_else(|| cert.names.subject.clone())
}

/// Why a certificate path failed, for a clerk.
fn chain_vi(e: &ChainError) -> String {
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
fn fetch_vi(e: &crate::revocation::fetch::FetchError) -> &'static str {
    match e {
        crate::revocation::fetch::FetchError::Unreachable { .. } => "không kết nối được máy chủ",
        crate::revocation::fetch::FetchError::BadAnswer { .. } => {
            "máy chủ trả về dữ liệu không dùng được"
        }
    }
}

/// The data that decided a revocation status, for a clerk.
fn evidence_vi(e: &revocation::Evidence) -> String {
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
fn describe(e: &revocation::Evidence) -> String {
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
fn fetch_missing_issuers(
    p: &mut Prepared<'_>,
    online: &Online,
    start: &Certificate,
    pool: &mut Vec<Certificate>,
    ctx: &Context,
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
        match online.ca_issuers(url, ctx.now) {
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
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn source_name(s: &revocation::Source) -> String {
    match s {
        revocation::Source::Signature => "in the signature".into(),
        revocation::Source::Dss => "in the document's DSS".into(),
        revocation::Source::File(path) => format!("file {path}"),
        revocation::Source::Online(url) => format!("fetched from {url}"),
    }
}

fn chain_sub_indication(e: &ChainError) -> SubIndication {
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

/// The encapsulated content of a PDF signature: absent for the detached SubFilters (ISO
/// 32000-2 §12.8.3.3), the SHA-1 of the ranges for `adbe.pkcs7.sha1` (§12.8.3.3.1).
fn check_content(p: &mut Prepared<'_>, sd: &SignedData) {
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

/// For a document timestamp: the token's TSTInfo and its imprint over the ranges (RFC 3161
/// §2.4.2, ISO 32000-2 §12.8.5). Returns the token's genTime.
fn check_document_timestamp(
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

/// `messageDigest`, `content-type`, the signature value, the ESS binding and the algorithm
/// policy (RFC 5652 §5.4, §5.6; ETSI EN 319 122-1 §5.2).
fn check_signed_attributes_and_value(
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
fn check_algorithms(
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

/// The signature timestamp (RFC 3161 token in the unsigned attribute
/// id-aa-signatureTimeStampToken, over the signature value): returns the proven time when the
/// token, its TSA's chain and that chain's revocation status all hold.
fn check_signature_timestamp(
    p: &mut Prepared<'_>,
    sd: &SignedData,
    ctx: &Context,
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
            let (revocation, problem) = check_tsa_revocation(&proof, sources, ctx);
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
fn check_tsa_revocation(
    proof: &ProvenTime,
    sources: &[&RevocationData],
    ctx: &Context,
) -> (Vec<CertificateRevocation>, Option<String>) {
    let lookups = revocation_statuses(&proof.chain, proof.gen_time, sources, &[], ctx);
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
fn check_content_timestamp(
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

/// `adbe.x509.rsa_sha1` (ISO 32000-1 §12.8.3.2): a bare PKCS#1 signature, certificates in
/// `/Cert`. kyso reads the signer certificate from the configured store by matching the key.
fn evaluate_x509_rsa_sha1(
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
fn der_len(bytes: &[u8]) -> Option<usize> {
    use der::{Decode, Reader};
    let mut r = der::SliceReader::new(bytes).ok()?;
    let header = der::Header::decode(&mut r).ok()?;
    usize::try_from(r.position())
        .ok()?
        .checked_add(usize::try_from(header.length).ok()?)
}
