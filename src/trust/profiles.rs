//! Trust profiles: named, pinned sets of trust anchors and intermediates (`bcy` for the
//! Government Cipher Committee's hierarchies, `neac` for the national root, and any the
//! operator names), kept in a trust store folder, one subfolder per profile.
//!
//! A profile trusts only certificates whose SHA-256 is pinned for it: for `bcy` and `neac`
//! the fingerprints below, facts carried in the code with their sources; for a profile the
//! operator names, the fingerprints the operator gave when adding (`--pin`), kept in the
//! profile's `pins` file. A look-alike certificate with a real root's exact subject has
//! another fingerprint and is refused, when added and again when the profile is loaded.
//!
//! Store layout: `<store>/<profile>/<SHA-256>.pem` (the certificate) with
//! `<SHA-256>.source` (where it came from and when), and `<store>/<profile>/pins` for an
//! operator's profile. The core reads a loaded [`TrustStore`]; this module does the files.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{load_certificates, Certificate, TrustError, TrustStore};

/// Whether a pinned certificate is a root (a trust anchor) or an intermediate CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    /// A root: a trust anchor.
    Root,
    /// An intermediate CA.
    Intermediate,
}

crate::names::names!(PinKind, "pin kind", {
    Root = "root",
    Intermediate = "intermediate",
});

/// One pinned certificate of a built-in profile.
#[derive(Debug, Clone, Copy)]
pub struct Pin {
    /// SHA-256 of the DER, upper-case hex.
    pub sha256: &'static str,
    /// The certificate's subject, for people.
    pub subject: &'static str,
    /// Root or intermediate.
    pub kind: PinKind,
    /// The official download location (the caIssuers URL other certificates name), when
    /// one is known; `kyso trust fetch` asks it.
    pub url: Option<&'static str>,
}

/// A built-in profile.
#[derive(Debug)]
pub struct Builtin {
    /// The profile's name, e.g. `bcy`.
    pub name: &'static str,
    /// What it trusts, in words.
    pub description: &'static str,
    /// Where the fingerprints come from.
    pub source: &'static str,
    /// Its pinned certificates.
    pub pins: &'static [Pin],
}

const fn pin(sha256: &'static str, subject: &'static str, kind: PinKind) -> Pin {
    Pin {
        sha256,
        subject,
        kind,
        url: None,
    }
}

/// The Government Cipher Committee (Ban Cơ yếu Chính phủ): both generations, the
/// sub-CAs of State and Party bodies and the ministries. The fingerprints are those of
/// `shared/VN-PKI.md` and `shared/trust/vn/README.md` (certificates published by the BCY;
/// the G1 root, its Government sub-CA and the G2 root are pinned with the same values by
/// unrelated verifier projects). The G2 Party sub-CA is known by name and fingerprint only.
pub const BCY: Builtin = Builtin {
    name: "bcy",
    description: "Ban Cơ yếu Chính phủ (Government Cipher Committee), first and second generation",
    source: "fingerprints published for the BCY hierarchies (kyso's VN-PKI notes); URLs from the certificates' caIssuers",
    pins: &[
        pin(
            "F7BC89054CEC7F12730D7B8CD3EB7955B163835087E5EB873EDFB584763B3F90",
            "C=VN, O=Ban Co yeu Chinh phu, CN=Co quan chung thuc so chuyen dung Chinh phu (RootCA)",
            PinKind::Root,
        ),
        Pin {
            url: Some("http://ca.gov.vn/pki/pub/cert/cp.crt"),
            ..pin(
                "75E969C07BA35C29C72BBC1BFB880F20F3891A619B00B77EB02CA6160736A1FE",
                "C=VN, O=Ban Co yeu Chinh phu, CN=Co quan chung thuc so Chinh phu",
                PinKind::Intermediate,
            )
        },
        pin(
            "6E218B3EBC2F31B0D03205C64FD7E8920FB47187D37AFCDB4CB2BB4178BF4635",
            "C=VN, O=Ban Co yeu Chinh phu, CN=Co quan chung thuc so Dang Cong san",
            PinKind::Intermediate,
        ),
        pin(
            "ECBF8428266C549EB1BFDC2715270D5B9DFF3BBBE2D3F0C33E0FD91F70B2D943",
            "C=VN, O=Ban Co yeu Chinh phu, CN=Co quan chung thuc so Bo Cong an",
            PinKind::Intermediate,
        ),
        pin(
            "A262CFA489DBBE666F8B89FAB832547809874D5A06FA9F7A38FC227EBDF40514",
            "C=VN, O=Ban Co yeu Chinh phu, CN=Co quan chung thuc so Bo Tai chinh",
            PinKind::Intermediate,
        ),
        pin(
            "3C4281296F92D292CC952295FE41AD7D0B37438FF1D143B56C4642CC1B14BD93",
            "C=VN, O=Ban Cơ yếu Chính phủ, CN=Cơ quan chứng thực số Bộ Ngoại giao",
            PinKind::Intermediate,
        ),
        Pin {
            url: Some("http://ca.gov.vn/pki/pub/crt/rootcag2.crt"),
            ..pin(
                "F04BA4B459A7C9A1B971AD9B1CB833E695A80C79AEA63B174B66A70EDFE2FDB8",
                "C=VN, O=Ban Cơ yếu Chính phủ, CN=RootCA chuyên dùng Chính phủ G2",
                PinKind::Root,
            )
        },
        Pin {
            url: Some("http://ca.gov.vn/pki/pub/crt/cpcag2.crt"),
            ..pin(
                "D8CAB7A4AEF92E6BB2509D7C61CEE7B44F3731B2D21074963530277B366FAE4B",
                "C=VN, O=Ban Cơ yếu Chính phủ, CN=CA phục vụ các cơ quan Nhà nước G2",
                PinKind::Intermediate,
            )
        },
        pin(
            "E4B402E3CB4CACC0A20D21FA49BCE76BEB4EB47BA7FFB7A8F71C554DBE561A81",
            "C=VN, O=Ban Cơ yếu Chính phủ, CN=CA phục vụ các cơ quan Đảng G2",
            PinKind::Intermediate,
        ),
    ],
};

/// The National Electronic Authentication Centre's national roots (public CAs such as
/// VNPT-CA chain to them), and VNPT-CA's SHA-2 sub-CA. Fingerprints as for [`BCY`].
pub const NEAC: Builtin = Builtin {
    name: "neac",
    description: "Vietnam National Root CA (NEAC) and the public CAs under it",
    source: "fingerprints published for the national root hierarchy (kyso's VN-PKI notes)",
    pins: &[
        pin(
            "BAC8BF609AB420A8EE1780D74F4DE5C7F7184959D2A7375B0A75E4C29F0908E7",
            "C=VN, O=Ministry of Information and Communications, OU=National Centre of Digital Signature Authentication, CN=Vietnam National Root CA",
            PinKind::Root,
        ),
        pin(
            "CA918D635BB130BEC97639E6AABF7EDBC4EB1310F8058B9419F467AE0230AD8C",
            "C=VN, O=Ministry of Information and Communications, OU=National CA Center, CN=MIC National Root CA",
            PinKind::Root,
        ),
        pin(
            "7D6BA5245317F9ED5D8BC765A4634D26AC6340D36B9F584DF3B52D9C4A81A306",
            "CN=VNPT-CA SHA2, O=VIETNAM POSTS AND TELECOMMUNICATIONS GROUP, C=VN",
            PinKind::Intermediate,
        ),
    ],
};

/// The built-in profiles: `bcy` and `neac`.
pub const BUILTIN: [&Builtin; 2] = [&BCY, &NEAC];

/// The built-in profile `name`, if it is one.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().copied().find(|b| b.name == name)
}

/// Why a profile cannot be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A certificate of the store cannot be loaded.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A file or folder of the store cannot be read or written.
    #[error("{path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A profile name has characters other than letters, digits, `-` and `_`.
    #[error("{0:?} is not a profile name: letters, digits, '-' and '_' only")]
    BadName(String),
    /// No such profile in the store.
    #[error("trust profile {0:?} does not exist in the trust store (kyso trust add/fetch --profile {0})")]
    Unknown(String),
    /// A certificate is not pinned for the profile.
    #[error("{path}: certificate {subject} (SHA-256 {sha256}) is not pinned for profile {profile}; refused")]
    NotPinned {
        /// Where it came from.
        path: String,
        /// Its subject.
        subject: String,
        /// Its SHA-256.
        sha256: String,
        /// The profile.
        profile: String,
    },
    /// A `--pin` is not 64 hex digits.
    #[error("{0:?} is not a SHA-256 fingerprint (64 hex digits)")]
    BadPin(String),
    /// A certificate cannot be written as PEM.
    #[error("a certificate cannot be written as PEM: {0}")]
    Encode(String),
    /// A built-in profile is added to with `--pin`.
    #[error("profile {0} is built in: its pins are kyso's, --pin does not apply")]
    BuiltinPins(String),
}

/// A certificate a profile holds, as `kyso trust list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The profile.
    pub profile: String,
    /// The certificate's subject.
    pub subject: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Root or intermediate.
    pub kind: PinKind,
    /// Its notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// Its notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Where it came from and when it was added.
    pub source: String,
}

/// A trust store folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A certificate's fingerprint as the pins write it.
pub fn fingerprint(c: &Certificate) -> String {
    hex::encode_upper(c.sha256)
}

impl Store {
    /// The store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The trust store `dir` when one is named, else `trust/` under `data_dir`.
    pub fn at(dir: Option<&Path>, data_dir: &Path) -> Store {
        Store::new(dir.map_or_else(|| data_dir.join("trust"), Path::to_owned))
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn profile_dir(&self, profile: &str) -> Result<PathBuf, ProfileError> {
        let ok = !profile.is_empty()
            && profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(ProfileError::BadName(profile.to_owned()));
        }
        Ok(self.dir.join(profile))
    }

    /// The fingerprints pinned for `profile` and whether each is a root: kyso's for a
    /// built-in profile, the `pins` file's for an operator's.
    pub fn pins(&self, profile: &str) -> Result<Vec<(String, PinKind)>, ProfileError> {
        if let Some(b) = builtin(profile) {
            return Ok(b
                .pins
                .iter()
                .map(|p| (p.sha256.to_owned(), p.kind))
                .collect());
        }
        let path = self.profile_dir(profile)?.join("pins");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| {
                    let (sha, kind) = l.split_once(' ').unwrap_or((l, "intermediate"));
                    let kind = if kind.trim() == "root" {
                        PinKind::Root
                    } else {
                        PinKind::Intermediate
                    };
                    (!sha.trim().is_empty()).then(|| (sha.trim().to_ascii_uppercase(), kind))
                })
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(ProfileError::Io { path, source }),
        }
    }

    /// Checks `certs` (read from `origin`) against the pins of `profile` and the
    /// operator's `extra_pins`, and stores them all, or none: one certificate not pinned
    /// refuses the whole call, naming it. Returns what was stored.
    pub fn add(
        &self,
        profile: &str,
        certs: &[(String, Certificate)],
        extra_pins: &[String],
        now: OffsetDateTime,
    ) -> Result<Vec<Entry>, ProfileError> {
        let dir = self.profile_dir(profile)?;
        if builtin(profile).is_some() && !extra_pins.is_empty() {
            return Err(ProfileError::BuiltinPins(profile.to_owned()));
        }
        let mut extra = Vec::new();
        for p in extra_pins {
            let p = p.trim().replace(':', "").to_ascii_uppercase();
            if p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ProfileError::BadPin(p));
            }
            extra.push(p);
        }
        let pinned = self.pins(profile)?;
        for (origin, c) in certs {
            let sha = fingerprint(c);
            if !pinned.iter().any(|(p, _)| *p == sha) && !extra.contains(&sha) {
                return Err(ProfileError::NotPinned {
                    path: origin.clone(),
                    subject: c.names.subject.clone(),
                    sha256: sha,
                    profile: profile.to_owned(),
                });
            }
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ProfileError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        if !extra.is_empty() {
            let path = dir.join("pins");
            let mut text = std::fs::read_to_string(&path).unwrap_or_default();
            for (_, c) in certs {
                let sha = fingerprint(c);
                if extra.contains(&sha) && !text.lines().any(|l| l.starts_with(&sha)) {
                    let kind = if c.is_self_issued() {
                        "root"
                    } else {
                        "intermediate"
                    };
                    text.push_str(&format!("{sha} {kind}\n"));
                }
            }
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        let when = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut added = Vec::new();
        for (origin, c) in certs {
            let sha = fingerprint(c);
            let pem = dir.join(format!("{sha}.pem"));
            let bytes = c
                .x509
                .to_pem()
                .map_err(|e| ProfileError::Encode(crate::cms::first_openssl_reason(&e)))?;
            std::fs::write(&pem, bytes).map_err(io(&pem))?;
            let source = format!("{origin} (added {when})");
            let note = dir.join(format!("{sha}.source"));
            std::fs::write(&note, &source).map_err(io(&note))?;
            added.push(self.entry(profile, c, source, &pinned_with(&pinned, &extra, c))?);
        }
        Ok(added)
    }

    fn entry(
        &self,
        profile: &str,
        c: &Certificate,
        source: String,
        kind: &PinKind,
    ) -> Result<Entry, ProfileError> {
        let time =
            |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(Entry {
            profile: profile.to_owned(),
            subject: c.names.subject.clone(),
            sha256: fingerprint(c),
            kind: *kind,
            not_before: time(c.not_before),
            not_after: time(c.not_after),
            source,
        })
    }

    /// The profiles present in the store, sorted.
    pub fn profiles(&self) -> Result<Vec<String>, ProfileError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ProfileError::Io {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The certificates of `profile`, each checked against the pins again: a file someone
    /// dropped into the folder is refused, naming it.
    pub fn entries(&self, profile: &str) -> Result<Vec<(Entry, Certificate)>, ProfileError> {
        let dir = self.profile_dir(profile)?;
        if !dir.is_dir() {
            return Err(ProfileError::Unknown(profile.to_owned()));
        }
        let pinned = self.pins(profile)?;
        let mut out = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| ProfileError::Io {
                path: dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pem"))
            .collect();
        files.sort();
        for file in files {
            for c in load_certificates(&file)? {
                let sha = fingerprint(&c);
                let Some((_, kind)) = pinned.iter().find(|(p, _)| *p == sha) else {
                    return Err(ProfileError::NotPinned {
                        path: file.display().to_string(),
                        subject: c.names.subject.clone(),
                        sha256: sha,
                        profile: profile.to_owned(),
                    });
                };
                let source = std::fs::read_to_string(file.with_extension("source"))
                    .unwrap_or_else(|_| "unknown".into());
                let e = self.entry(profile, &c, source, kind)?;
                out.push((e, c));
            }
        }
        Ok(out)
    }

    /// The profile as trust for verification: its pinned roots are the anchors, its
    /// intermediates the path-building pool.
    pub fn load(&self, profile: &str) -> Result<TrustStore, ProfileError> {
        let mut anchors = Vec::new();
        let mut intermediates = Vec::new();
        for (e, c) in self.entries(profile)? {
            match e.kind {
                PinKind::Root => anchors.push(c),
                PinKind::Intermediate => intermediates.push(c),
            }
        }
        Ok(TrustStore::new(anchors, intermediates))
    }
}

fn pinned_with(pinned: &[(String, PinKind)], extra: &[String], c: &Certificate) -> PinKind {
    let sha = fingerprint(c);
    pinned
        .iter()
        .find(|(p, _)| *p == sha)
        .map(|(_, k)| *k)
        .unwrap_or(if extra.contains(&sha) && c.is_self_issued() {
            PinKind::Root
        } else {
            PinKind::Intermediate
        })
}
