//! What a verification runs in: the trust, the revocation data and mode, the algorithm
//! policy, the document policy ([`Context`]), how it is built from the operator's
//! [`Settings`], and the per-call inputs ([`Inputs`]).

use time::OffsetDateTime;

use crate::revocation::fetch::Online;
use crate::revocation::{self, RevocationData};
use crate::trust::{self, TrustStore};

/// What to do when an algorithm is weak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeakAlgorithmAction {
    /// Pass without a remark.
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
    /// What to do with MD5.
    pub md5: WeakAlgorithmAction,
    /// What to do with SHA-1.
    pub sha1: WeakAlgorithmAction,
    /// RSA keys shorter than this are small.
    pub min_rsa_bits: u32,
    /// What to do with a small RSA key.
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

/// What one verification is asked besides the bytes and its [`Context`]: the inputs of
/// that call, which a service sets per request without copying the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// The time the verification runs at: the validation time of a signature that names no
    /// time at all, and the clock by which fetched revocation data and cached answers are
    /// still fresh.
    pub now: OffsetDateTime,
    /// Validate every signature at this time instead of its claimed signing time.
    pub at: Option<OffsetDateTime>,
    /// The document rules for this call, instead of the context's.
    pub policy: Option<crate::policy::PolicyChoice>,
    /// The profile the document must be for this call, instead of the context's.
    pub expect: Option<crate::policy::Expect>,
}

impl Inputs {
    /// A verification at `now`, with the context's policy and every signature validated at
    /// its own time.
    pub fn at(now: OffsetDateTime) -> Inputs {
        Inputs {
            now,
            at: None,
            policy: None,
            expect: None,
        }
    }
}

/// Everything `verify` needs besides the bytes and the per-call [`Inputs`]: what stays the
/// same from one verification to the next.
#[derive(Debug, Clone)]
pub struct Context {
    /// Trust anchors and intermediates.
    pub trust: TrustStore,
    /// What to do with weak algorithms of signers.
    pub algorithms: AlgorithmPolicy,
    /// CRLs the operator gave (`--crl`), beside those found in the document.
    pub crls: RevocationData,
    /// Where revocation data may come from, and what to do when none decides.
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
    pub(crate) fn fetches(self) -> bool {
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
    /// A context trusting `trust`, with the default algorithm policy, no CRL files, offline revocation and the default document policy.
    pub fn new(trust: TrustStore) -> Self {
        Context {
            trust,
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
    /// The trust anchors or intermediates cannot be loaded.
    #[error("trust configuration")]
    Trust(#[source] trust::TrustError),
    /// A trust profile cannot be loaded.
    #[error("trust profile {name}")]
    Profile {
        /// The profile's name.
        name: String,
        /// Why.
        #[source]
        source: trust::profiles::ProfileError,
    },
    /// The CRL files cannot be loaded.
    #[error("revocation data")]
    Revocation(#[source] revocation::RevocationError),
    /// The roles file cannot be used.
    #[error("roles")]
    Roles(#[source] crate::policy::roles::RolesError),
}

impl Context {
    /// The context `settings` describe: their certificates, profiles, CRLs and roles read
    /// from disk, and a fetcher when the revocation mode fetches.
    pub fn from_settings(settings: &Settings) -> Result<Self, ContextError> {
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
        let mut ctx = Context::new(trust);
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
