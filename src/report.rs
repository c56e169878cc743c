//! The result of a verification: per-signature indications in ETSI EN 319 102-1 terms with
//! every check that led to them, the document verdict with its reasons, and their rendering
//! as JSON and as text for a clerk, in Vietnamese or English.
//!
//! These types are the contract with every layer above the core (the command line, the gRPC
//! service and its audit log); field names are the JSON names documented in the README.

use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use crate::integrity::ChangeClass;
use crate::pdf::{Coverage, SignatureKind, UnsignedField, Widget};
use crate::policy::outcome::{PolicyReport, Role};

/// ETSI EN 319 102-1 §5.1.3 main indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indication {
    /// Every check that decides passed.
    Passed,
    /// A check shows the signature is not what it claims (ETSI: FAILED).
    Failed,
    /// The checks cannot conclude either way (ETSI: INDETERMINATE).
    Indeterminate,
}

crate::names::names!(Indication, "indication", {
    Passed = "PASSED",
    Failed = "FAILED",
    Indeterminate = "INDETERMINATE",
});

/// ETSI EN 319 102-1 §5.1.3 sub-indications kyso reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubIndication {
    /// FAILED: the signature is not conformant to a supported format (ByteRange, CMS).
    FormatFailure,
    /// FAILED: the signed bytes do not hash to the signed digest.
    HashFailure,
    /// FAILED: the signature value does not verify.
    SigCryptoFailure,
    /// INDETERMINATE: no path to a trust anchor.
    NoCertificateChainFound,
    /// INDETERMINATE: the signer's certificate is not in the signature nor the configuration.
    NoSigningCertificateFound,
    /// INDETERMINATE: a certificate of the path is expired at the validation time, and no
    /// proof of existence of the signature before that exists.
    OutOfBoundsNoPoe,
    /// INDETERMINATE: the validation time is before the signer's certificate was issued.
    NotYetValid,
    /// INDETERMINATE: a constraint on the path failed (CA flags, path length, key usage).
    ChainConstraintsFailure,
    /// INDETERMINATE: the path could not be processed (unknown critical extension, budget).
    CertificateChainGeneralFailure,
    /// INDETERMINATE: an algorithm is below what the algorithm policy accepts.
    CryptoConstraintsFailure,
    /// INDETERMINATE: a signed attribute required by the format is wrong or missing.
    SigConstraintsFailure,
    /// FAILED: the signer's certificate was revoked before the proven signing time.
    Revoked,
    /// INDETERMINATE: the signer's certificate is revoked and no proof of existence of the
    /// signature before the revocation exists.
    RevokedNoPoe,
    /// INDETERMINATE: as above, for a CA certificate of the path.
    RevokedCaNoPoe,
    /// INDETERMINATE: the revocation status could not be established now (`--revocation
    /// require` without usable data).
    TryLater,
    /// FAILED (kyso's own, beyond ETSI EN 319 102-1's list, which has no PDF-specific code):
    /// a later revision changed the document in a way the signature does not allow.
    DisallowedModification,
    /// INDETERMINATE (kyso's own): the changes after the signature could not be analysed.
    ModificationsNotAnalysed,
}

crate::names::names!(SubIndication, "sub-indication", {
    FormatFailure = "FORMAT_FAILURE",
    HashFailure = "HASH_FAILURE",
    SigCryptoFailure = "SIG_CRYPTO_FAILURE",
    NoCertificateChainFound = "NO_CERTIFICATE_CHAIN_FOUND",
    NoSigningCertificateFound = "NO_SIGNING_CERTIFICATE_FOUND",
    OutOfBoundsNoPoe = "OUT_OF_BOUNDS_NO_POE",
    NotYetValid = "NOT_YET_VALID",
    ChainConstraintsFailure = "CHAIN_CONSTRAINTS_FAILURE",
    CertificateChainGeneralFailure = "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    CryptoConstraintsFailure = "CRYPTO_CONSTRAINTS_FAILURE",
    SigConstraintsFailure = "SIG_CONSTRAINTS_FAILURE",
    Revoked = "REVOKED",
    RevokedNoPoe = "REVOKED_NO_POE",
    RevokedCaNoPoe = "REVOKED_CA_NO_POE",
    TryLater = "TRY_LATER",
    DisallowedModification = "DISALLOWED_MODIFICATION",
    ModificationsNotAnalysed = "MODIFICATIONS_NOT_ANALYSED",
});

/// The document verdict (DESIGN.md, "Verdicts").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every signature passed.
    Valid,
    /// A signature failed.
    Invalid,
    /// No signature failed, and one is indeterminate.
    Indeterminate,
    /// The document has no signature.
    Unsigned,
}

crate::names::names!(Verdict, "verdict", {
    Valid = "VALID",
    Invalid = "INVALID",
    Indeterminate = "INDETERMINATE",
    Unsigned = "UNSIGNED",
});

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The check holds.
    Passed,
    /// The check does not hold.
    Failed,
    /// Acceptable, but a reader should know (a weak algorithm under a permissive policy).
    Warning,
    /// Not run, because an earlier check made it meaningless or it does not apply.
    Skipped,
    /// A fact reported for the reader, not a judgement.
    Info,
}

crate::names::names!(Outcome, "outcome", {
    Passed = "passed",
    Failed = "failed",
    Warning = "warning",
    Skipped = "skipped",
    Info = "info",
});

/// The checks kyso runs on a signature, in the order it runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckId {
    /// The signature dictionary can be read at all (a damaged one fails here).
    SignatureDictionary,
    /// The signature is still part of the final revision (not overwritten or removed).
    FinalRevision,
    /// The `/ByteRange` is well formed and its gap is exactly the `/Contents`.
    ByteRange,
    /// What the signed bytes cover: the whole file, a whole revision, or less.
    Coverage,
    /// The `/SubFilter` is one kyso verifies.
    SubFilter,
    /// The `/Contents` is a CMS SignedData with one signer.
    CmsStructure,
    /// The encapsulated content is what the `/SubFilter` requires.
    EncapsulatedContent,
    /// The signer's certificate is found.
    SignerCertificate,
    /// The `messageDigest` attribute is the digest of the signed bytes.
    MessageDigest,
    /// The `content-type` attribute is `id-data`.
    ContentType,
    /// The signature value verifies with the signer's key.
    SignatureValue,
    /// The ESS signing-certificate attribute names the signer's certificate.
    SigningCertificateAttribute,
    /// The algorithms are ones the algorithm policy accepts.
    AlgorithmPolicy,
    /// A document timestamp's imprint is the digest of the signed bytes.
    TimestampImprint,
    /// The signature timestamp proves a time.
    SignatureTimestamp,
    /// The content timestamp proves a time.
    ContentTimestamp,
    /// What later revisions changed, and whether it was allowed.
    Modifications,
    /// The signer's certificate chains to a trust anchor at the validation time.
    CertificateChain,
    /// The revocation status of each certificate of the path at the validation time.
    Revocation,
    /// The time the signature is validated at, and where it came from.
    ValidationTime,
}

crate::names::names!(CheckId, "check", {
    SignatureDictionary = "signature_dictionary",
    FinalRevision = "final_revision",
    ByteRange = "byte_range",
    Coverage = "coverage",
    SubFilter = "sub_filter",
    CmsStructure = "cms_structure",
    EncapsulatedContent = "encapsulated_content",
    SignerCertificate = "signer_certificate",
    MessageDigest = "message_digest",
    ContentType = "content_type",
    SignatureValue = "signature_value",
    SigningCertificateAttribute = "signing_certificate_attribute",
    AlgorithmPolicy = "algorithm_policy",
    TimestampImprint = "timestamp_imprint",
    SignatureTimestamp = "signature_timestamp",
    ContentTimestamp = "content_timestamp",
    Modifications = "modifications",
    CertificateChain = "certificate_chain",
    Revocation = "revocation",
    ValidationTime = "validation_time",
});

/// One check of a signature: what it looked at and what it concluded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// Which check.
    pub id: CheckId,
    /// What it concluded.
    pub outcome: Outcome,
    /// What it found, in English.
    pub detail: String,
    /// The detail for a clerk, in Vietnamese: the facts of `detail` (names, times) in
    /// words a clerk reads, never English ([`check_vi`] when nothing more specific is said).
    pub detail_vi: String,
}

/// What a check of `id` with `outcome` says in Vietnamese when its site says nothing more
/// specific: the phrases of the BCY's verifier where one fits (VN-PKI.md).
pub fn check_vi(id: CheckId, outcome: Outcome) -> &'static str {
    use CheckId as C;
    use Outcome as O;
    match (id, outcome) {
        (_, O::Passed) => "đạt",
        (_, O::Skipped) => "chưa kiểm tra được (bước trước không cho phép)",
        (C::SignatureDictionary, _) => "chữ ký bị hỏng: không đọc được từ điển chữ ký nên không kiểm tra được",
        (C::FinalRevision, _) => "chữ ký này đã bị ghi đè hoặc gỡ bỏ trong một lần cập nhật sau: văn bản hiển thị hiện nay không còn chữ ký này",
        (C::ByteRange, _) => "vùng dữ liệu được ký (ByteRange) không đúng quy định: chữ ký không bao phủ đúng văn bản",
        (C::Coverage, O::Info) => "chữ ký bao phủ một phiên bản trước của văn bản; các lần cập nhật sau được xét riêng",
        (C::Coverage, _) => "chữ ký không bao phủ toàn bộ văn bản như quy định",
        (C::SubFilter, _) => "định dạng chữ ký chưa được hỗ trợ nên chưa kiểm tra được",
        (C::CmsStructure, _) => "cấu trúc dữ liệu chữ ký (CMS) bị lỗi, không đọc được",
        (C::EncapsulatedContent, _) => "nội dung được ký trong chữ ký không khớp với tài liệu",
        (C::SignerCertificate, _) => "không tìm thấy chứng thư số của người ký",
        (C::MessageDigest, _) => "Tài liệu đã bị thay đổi (giá trị băm không khớp với giá trị đã ký)",
        (C::ContentType, _) => "thuộc tính loại nội dung của chữ ký không đúng",
        (C::SignatureValue, _) => "giá trị chữ ký không đúng",
        (C::SigningCertificateAttribute, O::Warning) => "chữ ký không có thuộc tính gắn chứng thư ký (ESS), vẫn được chấp nhận",
        (C::SigningCertificateAttribute, _) => "thuộc tính gắn chứng thư ký (ESS) không khớp với chứng thư số",
        (C::AlgorithmPolicy, O::Warning) => "thuật toán đã cũ, kém an toàn, nhưng vẫn được chấp nhận",
        (C::AlgorithmPolicy, _) => "thuật toán không đạt yêu cầu an toàn",
        (C::TimestampImprint, _) => "Dấu thời gian không hợp lệ: không khớp với nội dung được đóng dấu",
        (C::SignatureTimestamp, _) => "Dấu thời gian không hợp lệ; thời gian ký chưa được chứng thực",
        (C::ContentTimestamp, _) => "dấu thời gian nội dung không hợp lệ",
        (C::Modifications, O::Warning) => "có thay đổi sau khi ký (ghi chú, hoặc thay đổi không ảnh hưởng nội dung hiển thị): được chấp nhận, cần lưu ý",
        (C::Modifications, O::Info) => "danh sách thay đổi quá dài, chỉ liệt kê một phần",
        (C::Modifications, _) => "Tài liệu đã bị thay đổi sau khi ký, vượt quá phạm vi cho phép",
        (C::CertificateChain, _) => "Chứng thư số không tin cậy",
        (C::Revocation, O::Info) => "thông tin về tình trạng thu hồi của chứng thư số",
        (C::Revocation, O::Warning) => "Không kiểm tra tình trạng thu hồi của chứng thư số: chưa kiểm tra được",
        (C::Revocation, _) => "Chứng thư số đã bị thu hồi hoặc chưa kiểm tra được tình trạng thu hồi",
        (C::ValidationTime, _) => "thời điểm dùng để kiểm tra chữ ký",
    }
}

/// Who signed, from the signer's certificate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Signer {
    /// The subject's commonName.
    pub common_name: Option<String>,
    /// The subject's organizationName.
    pub organization: Option<String>,
    /// The subject's organizationalUnitName attributes, in order.
    pub organizational_units: Vec<String>,
    /// The subject's e-mail address (emailAddress or a subjectAltName rfc822Name).
    pub email: Option<String>,
    /// The whole subject, as kyso prints it (`C=VN, O=…, CN=…`).
    pub subject: String,
    /// The issuer's subject, printed the same way.
    pub issuer: String,
    /// The serial number, upper-case hex.
    pub serial: String,
    /// Hex SHA-256 of the certificate's DER.
    pub certificate_sha256: String,
    /// The key's kind and size, e.g. `RSA 2048`.
    pub key: String,
    /// Subject `UID` attributes (citizen-ID, tax code…).
    pub identifiers: Vec<String>,
    /// Certificate policy OIDs.
    pub certificate_policies: Vec<String>,
}

/// Where the time a signature was judged at came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The CMS `signingTime` attribute: claimed by the signer's software, not proven.
    CmsSigningTime,
    /// The signature dictionary's `/M`: claimed, not proven.
    PdfM,
    /// The `genTime` of the document timestamp's own token.
    TimestampToken,
    /// Fixed by the caller (`--at`).
    Caller,
    /// No time in the signature: the time of the verification, given by the caller.
    VerificationTime,
}

crate::names::names!(TimeSource, "time source", {
    CmsSigningTime = "cms_signing_time",
    PdfM = "pdf_m",
    TimestampToken = "timestamp_token",
    Caller = "caller",
    VerificationTime = "verification_time",
});

/// The time a signature was judged at.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ValidationTime {
    /// The time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub time: OffsetDateTime,
    /// Where it came from.
    pub source: TimeSource,
    /// Whether a validated timestamp proves the time. Claimed times never are.
    pub proven: bool,
}

/// The revocation status of one certificate of the path, and the data that decided it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateRevocation {
    /// The certificate's subject.
    pub subject: String,
    /// Hex SHA-256 of the certificate.
    pub sha256: String,
    /// `good`, `revoked` or `unknown`.
    pub status: &'static str,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    /// The CRL reason code or OCSP revocation reason, if given.
    pub reason: Option<String>,
    /// The CRL or OCSP response that decided (`null` when nothing did).
    pub evidence: Option<crate::revocation::Evidence>,
}

impl CertificateRevocation {
    /// The entry for `cert` with the status revocation checking found.
    pub fn new(cert: &crate::trust::Certificate, status: crate::revocation::Status) -> Self {
        use crate::revocation::Status;
        let (status, revoked_at, reason, evidence) = match status {
            Status::Good(e) => ("good", None, None, Some(e)),
            Status::Revoked {
                at,
                reason,
                evidence,
            } => ("revoked", Some(at), reason, Some(evidence)),
            Status::Unknown(_) => ("unknown", None, None, None),
        };
        CertificateRevocation {
            subject: cert.names.subject.clone(),
            sha256: hex::encode(cert.sha256),
            status,
            revoked_at,
            reason,
            evidence,
        }
    }
}

/// A timestamp token of a signature: what it proves, by whom, and the state of its TSA.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimestampReport {
    /// `signature` (over the signature value: proves when it was signed) or `content` (a
    /// signed attribute: proves the content existed before the signature).
    pub kind: &'static str,
    /// The token's genTime, when the token could be read and verified.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub time: Option<OffsetDateTime>,
    /// The TSA's certificate subject, when it was found.
    pub tsa: Option<String>,
    /// Whether the token proves its time: imprint, signature, the TSA's chain at genTime and
    /// its revocation status.
    pub proves: bool,
    /// Why it does not, when it does not.
    pub problem: Option<String>,
    /// The TSA's certificate path.
    pub chain: Vec<ChainEntry>,
    /// The revocation status of the TSA's path at genTime.
    pub revocation: Vec<CertificateRevocation>,
}

impl TimestampReport {
    /// A timestamp that proves its time.
    pub fn proven(
        kind: &'static str,
        proof: &crate::timestamp::ProvenTime,
        revocation: Vec<CertificateRevocation>,
        problem: Option<String>,
    ) -> Self {
        TimestampReport {
            kind,
            time: Some(proof.gen_time),
            tsa: Some(proof.tsa.names.subject.clone()),
            proves: problem.is_none(),
            problem,
            chain: proof
                .chain
                .certificates
                .iter()
                .map(|c| ChainEntry {
                    subject: c.names.subject.clone(),
                    sha256: hex::encode(c.sha256),
                })
                .collect(),
            revocation,
        }
    }

    /// A timestamp of `kind` (`signature` or `content`) that proves nothing, and why.
    pub fn unproven(kind: &'static str, problem: String) -> Self {
        TimestampReport {
            kind,
            time: None,
            tsa: None,
            proves: false,
            problem: Some(problem),
            chain: Vec::new(),
            revocation: Vec::new(),
        }
    }
}

/// One certificate of the validated path.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChainEntry {
    /// The certificate's subject.
    pub subject: String,
    /// Hex SHA-256 of the certificate.
    pub sha256: String,
}

/// Everything kyso found about one signature (README, "JSON").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignatureReport {
    /// The signature field's fully qualified name.
    pub field: Option<String>,
    /// A signature or a document timestamp.
    pub kind: SignatureKind,
    /// The `/SubFilter`, e.g. `ETSI.CAdES.detached`.
    pub sub_filter: Option<String>,
    /// The revision whose update holds the signature dictionary.
    pub revision: usize,
    /// `Some(P)` for a certification signature with DocMDP permissions P.
    pub certification: Option<u8>,
    /// What the signed bytes cover; `None` when the `/ByteRange` is unusable.
    pub coverage: Option<Coverage>,
    /// The `/ByteRange` as written.
    pub byte_range: Vec<i64>,
    /// The ETSI indication.
    pub indication: Indication,
    /// The ETSI sub-indication, for FAILED and INDETERMINATE.
    pub sub_indication: Option<SubIndication>,
    /// The signer, when its certificate was found.
    pub signer: Option<Signer>,
    /// The claimed signing time (CMS signingTime, else /M), or a document timestamp's time.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub signing_time: Option<OffsetDateTime>,
    /// The time the signature was validated at.
    pub validation_time: ValidationTime,
    /// The `/Reason`.
    pub reason: Option<String>,
    /// The `/Location`.
    pub location: Option<String>,
    /// The `/ContactInfo`.
    pub contact_info: Option<String>,
    /// The `/Name`.
    pub name: Option<String>,
    /// Where the signature's widget sits, and the text it shows.
    pub widget: Option<Widget>,
    /// The signer's certificate path, from the signer to the trust anchor.
    pub chain: Vec<ChainEntry>,
    /// The revocation status of each certificate of `chain` but the anchor.
    pub revocation: Vec<CertificateRevocation>,
    /// The signature's timestamp tokens (signature and content timestamps).
    pub timestamps: Vec<TimestampReport>,
    /// Every change later revisions made to the signed revision, with the rule that judged it.
    pub modifications: Vec<crate::integrity::Change>,
    /// Every check, in the order kyso ran them.
    pub checks: Vec<Check>,
    /// Whose signature this is in a Vietnamese official document (`policy::roles`).
    pub role: Role,
    /// The rule that decided the role, in words.
    pub role_evidence: String,
    /// The same, in Vietnamese.
    pub role_evidence_vi: String,
}

/// A reason for the document verdict, in both languages a reader may ask for.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// A stable code, e.g. `SIGNATURE_FAILED`.
    pub code: &'static str,
    /// The reason in English.
    pub en: String,
    /// The reason in Vietnamese.
    pub vi: String,
}

/// The verification report of one document (README, "JSON").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Hex SHA-256 of the whole file.
    pub sha256: String,
    /// The file's size in bytes.
    pub size: usize,
    /// The document verdict.
    pub verdict: Verdict,
    /// Why the verdict is what it is.
    pub reasons: Vec<Reason>,
    /// How many revisions the file has (1 plus its incremental updates).
    pub revisions: usize,
    /// Whether a trailer uses hybrid references (`/XRefStm`): readers that do not know
    /// cross-reference streams then see another document than those that do.
    pub hybrid_reference: bool,
    /// `Some` with the method when the file was encrypted and opened with the empty password.
    pub decrypted: Option<String>,
    /// Every signature and document timestamp, in file order.
    pub signatures: Vec<SignatureReport>,
    /// Signature fields that hold no signature.
    pub unsigned_fields: Vec<UnsignedField>,
    /// The fingerprint of the trust the document was verified with.
    pub trust_fingerprint: String,
    /// The kyso that made the report.
    pub kyso_version: &'static str,
    /// The document rules' judgement (`null` under policy `none`), beside the verdict.
    pub policy: Option<PolicyReport>,
}

impl Report {
    /// Derives the document verdict and its reasons from the signatures (DESIGN.md): VALID
    /// only when every signature passed; INVALID when any failed; INDETERMINATE otherwise;
    /// UNSIGNED with none.
    pub fn conclude(&mut self) {
        self.reasons.clear();
        if self.signatures.is_empty() {
            self.verdict = Verdict::Unsigned;
            self.reasons.push(Reason {
                code: "NO_SIGNATURE",
                en: "The document carries no digital signature.".into(),
                vi: "Văn bản không có chữ ký số.".into(),
            });
            return;
        }
        for (i, s) in self.signatures.iter().enumerate() {
            let who = s
                .signer
                .as_ref()
                .and_then(|x| x.common_name.clone())
                .unwrap_or_else(|| s.field.clone().unwrap_or_else(|| format!("#{}", i + 1)));
            let sub = s.sub_indication.map(SubIndication::name).unwrap_or("");
            match s.indication {
                Indication::Passed => {}
                Indication::Failed => self.reasons.push(Reason {
                    code: "SIGNATURE_FAILED",
                    en: format!(
                        "Signature {} ({who}) is invalid: {}.",
                        i + 1,
                        sub_text(s.sub_indication, Lang::En)
                    ),
                    vi: format!(
                        "Chữ ký {} ({who}) không hợp lệ: {}.",
                        i + 1,
                        sub_text(s.sub_indication, Lang::Vi)
                    ),
                }),
                Indication::Indeterminate => self.reasons.push(Reason {
                    code: if sub.is_empty() {
                        "SIGNATURE_INDETERMINATE"
                    } else {
                        sub
                    },
                    en: format!(
                        "Signature {} ({who}) cannot be confirmed: {}.",
                        i + 1,
                        sub_text(s.sub_indication, Lang::En)
                    ),
                    vi: format!(
                        "Chữ ký {} ({who}) chưa thể khẳng định: {}.",
                        i + 1,
                        sub_text(s.sub_indication, Lang::Vi)
                    ),
                }),
            }
        }
        if self.hybrid_reference {
            self.reasons.push(Reason {
                code: "HYBRID_REFERENCE",
                en: "The file uses hybrid cross-references: readers that ignore cross-reference streams may display other content.".into(),
                vi: "Tệp dùng bảng tham chiếu chéo lai: phần mềm đọc không hỗ trợ luồng tham chiếu chéo có thể hiển thị nội dung khác.".into(),
            });
        }
        self.verdict = if self
            .signatures
            .iter()
            .any(|s| s.indication == Indication::Failed)
        {
            Verdict::Invalid
        } else if self
            .signatures
            .iter()
            .any(|s| s.indication == Indication::Indeterminate)
        {
            Verdict::Indeterminate
        } else {
            self.reasons.push(Reason {
                code: "ALL_SIGNATURES_VALID",
                en: "Every signature is valid and the signed content is unchanged.".into(),
                vi: "Tất cả chữ ký hợp lệ, nội dung đã ký không bị thay đổi.".into(),
            });
            Verdict::Valid
        };
    }

    /// The report as the JSON object `kyso verify --format json` prints, for `file`.
    pub fn to_json(&self, file: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = v.as_object_mut() {
            map.insert("file".into(), serde_json::Value::String(file.to_owned()));
        }
        v
    }
}

/// The language of text output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// Vietnamese, the default.
    #[default]
    Vi,
    /// English.
    En,
}

crate::names::names!(Lang, "language", { Vi = "vi", En = "en" });

fn sub_text(s: Option<SubIndication>, lang: Lang) -> &'static str {
    use SubIndication as S;
    match (s, lang) {
        (None, Lang::En) => "no further detail",
        (None, Lang::Vi) => "không có thêm thông tin",
        (Some(S::FormatFailure), Lang::En) => {
            "the signature is malformed or does not cover the document as required"
        }
        (Some(S::FormatFailure), Lang::Vi) => {
            "chữ ký sai định dạng hoặc không bao phủ văn bản đúng quy định"
        }
        (Some(S::HashFailure), Lang::En) => "the document was changed after signing",
        (Some(S::HashFailure), Lang::Vi) => "tài liệu đã bị thay đổi sau khi ký",
        (Some(S::SigCryptoFailure), Lang::En) => "the signature value does not verify",
        (Some(S::SigCryptoFailure), Lang::Vi) => "giá trị chữ ký không đúng",
        (Some(S::NoCertificateChainFound), Lang::En) => {
            "the certificate is not trusted (no chain to a trusted root)"
        }
        (Some(S::NoCertificateChainFound), Lang::Vi) => "chứng thư số không tin cậy",
        (Some(S::NoSigningCertificateFound), Lang::En) => "the signer's certificate was not found",
        (Some(S::NoSigningCertificateFound), Lang::Vi) => {
            "không tìm thấy chứng thư số của người ký"
        }
        (Some(S::OutOfBoundsNoPoe), Lang::En) => "the certificate had expired at the signing time",
        (Some(S::OutOfBoundsNoPoe), Lang::Vi) => "chứng thư số đã hết hạn sử dụng tại thời điểm ký",
        (Some(S::NotYetValid), Lang::En) => "the certificate was not yet valid at the signing time",
        (Some(S::NotYetValid), Lang::Vi) => "chứng thư số chưa có hiệu lực tại thời điểm ký",
        (Some(S::ChainConstraintsFailure), Lang::En) => {
            "a certificate in the chain is not allowed for this use"
        }
        (Some(S::ChainConstraintsFailure), Lang::Vi) => {
            "chứng thư số trong chuỗi không được phép dùng cho mục đích này"
        }
        (Some(S::CertificateChainGeneralFailure), Lang::En) => {
            "the certificate chain could not be processed"
        }
        (Some(S::CertificateChainGeneralFailure), Lang::Vi) => {
            "không xử lý được chuỗi chứng thư số"
        }
        (Some(S::CryptoConstraintsFailure), Lang::En) => {
            "an algorithm is too weak for the algorithm policy"
        }
        (Some(S::CryptoConstraintsFailure), Lang::Vi) => "thuật toán không đạt yêu cầu an toàn",
        (Some(S::SigConstraintsFailure), Lang::En) => "a signed attribute is wrong or missing",
        (Some(S::SigConstraintsFailure), Lang::Vi) => "thuộc tính được ký không đúng hoặc bị thiếu",
        (Some(S::Revoked), Lang::En) => "the certificate had been revoked when it signed",
        (Some(S::Revoked), Lang::Vi) => "chứng thư số đã bị thu hồi trước thời điểm ký",
        (Some(S::RevokedNoPoe | S::RevokedCaNoPoe), Lang::En) => {
            "the certificate is revoked and no timestamp proves the signature came before that"
        }
        (Some(S::RevokedNoPoe | S::RevokedCaNoPoe), Lang::Vi) => {
            "chứng thư số đã bị thu hồi và không có dấu thời gian chứng minh chữ ký có trước đó"
        }
        (Some(S::TryLater), Lang::En) => "the revocation status could not be checked",
        (Some(S::TryLater), Lang::Vi) => "không kiểm tra được tình trạng thu hồi của chứng thư số",
        (Some(S::DisallowedModification), Lang::En) => {
            "the document was changed after signing in a way the signature does not allow"
        }
        (Some(S::DisallowedModification), Lang::Vi) => {
            "tài liệu đã bị thay đổi sau khi ký, vượt quá phạm vi cho phép"
        }
        (Some(S::ModificationsNotAnalysed), Lang::En) => {
            "the changes made after signing could not be analysed"
        }
        (Some(S::ModificationsNotAnalysed), Lang::Vi) => {
            "không phân tích được các thay đổi sau khi ký"
        }
    }
}

/// A change's class as a clerk reads it.
pub fn change_class_vi(c: ChangeClass) -> &'static str {
    match c {
        ChangeClass::Bookkeeping => "dữ liệu quản lý tệp",
        ChangeClass::Dss => "dữ liệu kiểm tra chữ ký (DSS)",
        ChangeClass::Metadata => "thông tin mô tả văn bản",
        ChangeClass::Signing => "thêm chữ ký",
        ChangeClass::DocumentTimestamp => "thêm dấu thời gian văn bản",
        ChangeClass::FormFilling => "điền biểu mẫu",
        ChangeClass::Annotation => "ghi chú (thêm, sửa hoặc xóa)",
        ChangeClass::Cosmetic => "thay đổi không ảnh hưởng nội dung hiển thị",
        ChangeClass::Disallowed => "thay đổi nội dung văn bản",
    }
}

/// A change as a clerk reads it: what was done, of which kind, and whether it was allowed.
fn change_vi(c: &crate::integrity::Change) -> String {
    use crate::integrity::{ChangeKind, Verdict as V};
    let kind = match c.kind {
        ChangeKind::Added => "thêm mới",
        ChangeKind::Changed => "sửa đổi",
        ChangeKind::Deleted => "xóa",
    };
    let verdict = match c.verdict {
        V::Allowed => "được phép",
        V::AllowedWithWarning => "được phép, cần lưu ý",
        V::Disallowed => "không được phép",
    };
    format!("{kind} — {} ({verdict})", change_class_vi(c.class))
}

/// Most changes listed per signature in text output; JSON lists them all.
const TEXT_CHANGES_SHOWN: usize = 20;

/// The changes after a signature, for a clerk: the disallowed and warned ones first.
fn render_modifications(out: &mut String, s: &SignatureReport, lang: Lang) {
    use crate::integrity::Verdict as V;
    if s.modifications.is_empty() {
        return;
    }
    let heading = match lang {
        Lang::Vi => "Thay đổi sau khi ký",
        Lang::En => "Changes after this signature",
    };
    // The signed bytes themselves must be intact for "unchanged" to be true: a report never
    // says both that the document was changed and that the signed content is unchanged.
    let intact = !s.checks.iter().any(|c| {
        c.outcome == Outcome::Failed
            && matches!(
                c.id,
                CheckId::MessageDigest
                    | CheckId::EncapsulatedContent
                    | CheckId::TimestampImprint
                    | CheckId::ByteRange
                    | CheckId::Coverage
                    | CheckId::FinalRevision
            )
    });
    if intact && !s.modifications.iter().any(|c| c.verdict == V::Disallowed) {
        // The wording of VN-PKI.md for a document changed within what its signer allowed.
        let _ = writeln!(out, "  {}", match lang {
            Lang::Vi => "Nội dung đã ký không thay đổi; các thay đổi sau đó nằm trong phạm vi cho phép.",
            Lang::En => "The signed content is unchanged; later changes stay within the permitted limits.",
        });
    }
    let _ = writeln!(out, "  {heading} ({}):", s.modifications.len());
    let mut shown: Vec<&crate::integrity::Change> = s.modifications.iter().collect();
    shown.sort_by_key(|c| match c.verdict {
        V::Disallowed => 0,
        V::AllowedWithWarning => 1,
        V::Allowed => 2,
    });
    for c in shown.iter().take(TEXT_CHANGES_SHOWN) {
        let mark = match c.verdict {
            V::Disallowed => "✗",
            V::AllowedWithWarning => "!",
            V::Allowed => "·",
        };
        let rev = match lang {
            Lang::Vi => format!("lần cập nhật {}, đối tượng {}", c.revision, c.object),
            Lang::En => format!("revision {}, object {}", c.revision, c.object),
        };
        let what = match lang {
            Lang::Vi => change_vi(c),
            Lang::En => c.rule.clone(),
        };
        let _ = writeln!(out, "    {mark} {rev}: {what}");
    }
    if shown.len() > TEXT_CHANGES_SHOWN {
        let more = shown.len() - TEXT_CHANGES_SHOWN;
        let _ = writeln!(out, "    … +{more}");
    }
}

/// A check's line in text output: its Vietnamese detail, or the technical one in English.
fn check_text(c: &Check, lang: Lang) -> &str {
    match lang {
        Lang::Vi => &c.detail_vi,
        Lang::En => &c.detail,
    }
}

/// A time as a clerk reads it, in Vietnam time: `00:00 ngày 01/01/2022`.
pub fn vi_time(t: OffsetDateTime) -> String {
    let local = t.to_offset(time::macros::offset!(+7));
    local
        .format(time::macros::format_description!(
            "[hour]:[minute] ngày [day]/[month]/[year]"
        ))
        .unwrap_or_else(|_| t.to_string())
}

fn fmt_time(t: OffsetDateTime, lang: Lang) -> String {
    // Clerks read Vietnam time; the offset is printed so the value is unambiguous.
    let local = t.to_offset(time::macros::offset!(+7));
    let f = match lang {
        Lang::Vi => time::macros::format_description!(
            "[hour]:[minute]:[second] ngày [day]/[month]/[year] (UTC+7)"
        ),
        Lang::En => time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] (UTC+7)"
        ),
    };
    local.format(f).unwrap_or_else(|_| t.to_string())
}

/// Renders `report` for a clerk: who signed, as which organisation, when, and a plain verdict.
pub fn render_text(report: &Report, file: &str, lang: Lang) -> String {
    let mut out = String::new();
    let (l_file, l_verdict) = match lang {
        Lang::Vi => ("Tệp", "Kết luận"),
        Lang::En => ("File", "Verdict"),
    };
    let _ = writeln!(out, "{l_file}: {file}");
    let _ = writeln!(out, "SHA-256: {}", report.sha256);
    let verdict = match (report.verdict, lang) {
        (Verdict::Valid, Lang::Vi) => "HỢP LỆ — các chữ ký hợp lệ, văn bản không bị thay đổi",
        (Verdict::Valid, Lang::En) => {
            "VALID — the signatures are valid and the document is unchanged"
        }
        (Verdict::Invalid, Lang::Vi) => "KHÔNG HỢP LỆ",
        (Verdict::Invalid, Lang::En) => "INVALID",
        (Verdict::Indeterminate, Lang::Vi) => {
            "CHƯA XÁC ĐỊNH — chưa đủ căn cứ để khẳng định chữ ký hợp lệ"
        }
        (Verdict::Indeterminate, Lang::En) => "INDETERMINATE — the signatures cannot be confirmed",
        (Verdict::Unsigned, Lang::Vi) => "KHÔNG CÓ CHỮ KÝ SỐ",
        (Verdict::Unsigned, Lang::En) => "NOT SIGNED",
    };
    for (i, s) in report.signatures.iter().enumerate() {
        let _ = writeln!(out);
        let kind = match (s.kind, lang) {
            (SignatureKind::Signature, Lang::Vi) => "Chữ ký",
            (SignatureKind::Signature, Lang::En) => "Signature",
            (SignatureKind::DocumentTimestamp, Lang::Vi) => "Dấu thời gian văn bản",
            (SignatureKind::DocumentTimestamp, Lang::En) => "Document timestamp",
        };
        let field = s.field.as_deref().unwrap_or("-");
        let _ = writeln!(out, "{kind} {} [{field}]", i + 1);
        let status = match (s.indication, lang) {
            (Indication::Passed, Lang::Vi) => "Chữ ký hợp lệ".to_owned(),
            (Indication::Passed, Lang::En) => "Valid signature".to_owned(),
            (Indication::Failed, Lang::Vi) => {
                format!("Chữ ký không hợp lệ: {}", sub_text(s.sub_indication, lang))
            }
            (Indication::Failed, Lang::En) => {
                format!("Invalid signature: {}", sub_text(s.sub_indication, lang))
            }
            (Indication::Indeterminate, Lang::Vi) => {
                format!("Chưa xác định: {}", sub_text(s.sub_indication, lang))
            }
            (Indication::Indeterminate, Lang::En) => {
                format!("Indeterminate: {}", sub_text(s.sub_indication, lang))
            }
        };
        let labels = match lang {
            Lang::Vi => [
                "Người ký",
                "Cơ quan",
                "Email",
                "Thời gian ký",
                "Tình trạng",
                "Lý do",
                "Địa điểm",
                "Cấp bởi",
            ],
            Lang::En => [
                "Signed by",
                "Organisation",
                "Email",
                "Signing time",
                "Status",
                "Reason",
                "Location",
                "Issued by",
            ],
        };
        if let Some(signer) = &s.signer {
            let _ = writeln!(
                out,
                "  {}: {}",
                labels[0],
                signer.common_name.as_deref().unwrap_or(&signer.subject)
            );
            if let Some(o) = &signer.organization {
                let _ = writeln!(out, "  {}: {o}", labels[1]);
            }
            if let Some(e) = &signer.email {
                let _ = writeln!(out, "  {}: {e}", labels[2]);
            }
            let _ = writeln!(out, "  {}: {}", labels[7], signer.issuer);
        }
        if let Some(t) = s.signing_time {
            let proven =
                s.validation_time.proven && s.validation_time.source == TimeSource::TimestampToken;
            let proof = match (s.kind, proven, lang) {
                (SignatureKind::DocumentTimestamp, true, Lang::Vi) => {
                    " — đã được chứng thực".to_owned()
                }
                (SignatureKind::DocumentTimestamp, true, Lang::En) => " — proven".to_owned(),
                (SignatureKind::DocumentTimestamp, false, _) => String::new(),
                (_, true, Lang::Vi) => format!(
                    " — dấu thời gian chứng thực chữ ký đã có lúc {}",
                    fmt_time(s.validation_time.time, lang)
                ),
                (_, true, Lang::En) => format!(
                    " — a timestamp proves the signature existed at {}",
                    fmt_time(s.validation_time.time, lang)
                ),
                (_, false, Lang::Vi) => {
                    " — thời gian do phần mềm ký khai báo, chưa được chứng thực".to_owned()
                }
                (_, false, Lang::En) => " — claimed by the signing software, not proven".to_owned(),
            };
            let _ = writeln!(out, "  {}: {}{proof}", labels[3], fmt_time(t, lang));
        }
        if let Some(r) = &s.reason {
            let _ = writeln!(out, "  {}: {r}", labels[5]);
        }
        if let Some(l) = &s.location {
            let _ = writeln!(out, "  {}: {l}", labels[6]);
        }
        let _ = writeln!(out, "  {}: {status}", labels[4]);
        if s.kind == SignatureKind::Signature {
            let (label, role, evidence) = match lang {
                Lang::Vi => ("Vai trò", s.role.vi(), &s.role_evidence_vi),
                Lang::En => ("Role", s.role.en(), &s.role_evidence),
            };
            let _ = writeln!(out, "  {label}: {role} ({evidence})");
        }
        for c in s.checks.iter().filter(|c| {
            matches!(c.outcome, Outcome::Failed | Outcome::Warning)
                    // A revocation after a proven signing time is a fact the clerk must read.
                    || (c.id == CheckId::Revocation && c.outcome == Outcome::Info)
        }) {
            let mark = match c.outcome {
                Outcome::Failed => "✗",
                Outcome::Warning => "!",
                _ => "·",
            };
            let _ = writeln!(out, "    {mark} {}", check_text(c, lang));
        }
        render_modifications(&mut out, s, lang);
    }
    for f in &report.unsigned_fields {
        let label = match lang {
            Lang::Vi => "Ô chữ ký chưa ký",
            Lang::En => "Empty signature field",
        };
        let _ = writeln!(out, "\n{label}: {}", f.field);
    }
    // A VALID verdict reached without any revocation check says so in the line itself.
    let unchecked = report.verdict == Verdict::Valid
        && report.signatures.iter().any(|s| {
            s.checks
                .iter()
                .any(|c| c.id == CheckId::Revocation && c.outcome == Outcome::Warning)
        });
    let caveat = match (unchecked, lang) {
        (false, _) => "",
        (true, Lang::Vi) => "; tình trạng thu hồi của chứng thư số chưa kiểm tra được",
        (true, Lang::En) => "; the certificates' revocation status could not be checked",
    };
    let _ = writeln!(out, "\n{l_verdict}: {verdict}{caveat}");
    for r in &report.reasons {
        if report.verdict != Verdict::Valid && report.verdict != Verdict::Unsigned {
            let _ = writeln!(out, "  - {}", if lang == Lang::Vi { &r.vi } else { &r.en });
        }
    }
    if let Some(p) = &report.policy {
        render_policy(&mut out, p, report.verdict, lang);
    }
    out
}

/// The document rules' conclusion: whether the file is a properly issued document of the
/// expected profile, and if not, what is missing.
fn render_policy(out: &mut String, p: &PolicyReport, verdict: Verdict, lang: Lang) {
    use crate::policy::outcome::{Expect, RuleOutcome};
    let what = match (p.expected, lang) {
        (Expect::Issued | Expect::Any, Lang::Vi) => "văn bản điện tử đã được ban hành hợp lệ",
        (Expect::Attachment, Lang::Vi) => "phụ lục gửi kèm hợp lệ",
        (Expect::Copy, Lang::Vi) => "bản sao điện tử hợp lệ",
        (Expect::Issued | Expect::Any, Lang::En) => "a properly issued electronic document",
        (Expect::Attachment, Lang::En) => "a proper attachment",
        (Expect::Copy, Lang::En) => "a proper electronic copy",
    };
    let label = match lang {
        Lang::Vi => "Thể thức (Nghị định 30/2020/NĐ-CP)",
        Lang::En => "Form (Decree 30/2020/NĐ-CP)",
    };
    let line = match (p.conforms, verdict == Verdict::Valid, lang) {
        (true, true, Lang::Vi) => format!("ĐÚNG — {what}: {}", p.profile.vi()),
        (true, true, Lang::En) => format!("CONFORMS — {what}: {}", p.profile.en()),
        (true, false, Lang::Vi) => format!(
            "đúng dạng {}, nhưng các chữ ký chưa được khẳng định hợp lệ",
            p.profile.vi()
        ),
        (true, false, Lang::En) => format!(
            "the shape of {}, but the signatures do not hold",
            p.profile.en()
        ),
        (false, _, Lang::Vi) => format!("KHÔNG ĐÚNG — chưa phải {what}"),
        (false, _, Lang::En) => format!("DOES NOT CONFORM — not {what}"),
    };
    let _ = writeln!(out, "{label}: {line}");
    for r in &p.rules {
        let mark = match r.outcome {
            RuleOutcome::Failed => "✗",
            RuleOutcome::Warning => "!",
            RuleOutcome::Passed | RuleOutcome::Skipped => continue,
        };
        let _ = writeln!(
            out,
            "  {mark} {}",
            if lang == Lang::Vi { &r.vi } else { &r.en }
        );
    }
}
