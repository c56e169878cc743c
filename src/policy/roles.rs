//! Who a signature stands for: the competent person (`personal`) or the body, whose
//! signature stands for its seal (`organisation`), read from the signer's certificate.
//!
//! The certificates do not say it in so many words (VN-PKI.md: "telling the two apart is an
//! inference from the subject"), so the decision is a list of rules, data rather than code
//! paths, tried in order until one decides: the operator's own list of certificates first
//! (it wins), then Vietnamese identifier attributes (`UID=CCCD:…` for a citizen, `UID=MST:…`
//! for a tax-paying body), certificate-policy OIDs where a CA publishes them, and last the
//! shape of the subject the BCY hierarchies use. Each decision names the rule that made it.

use serde::{Deserialize, Serialize};

use super::outcome::Role;
use crate::report::Signer;

/// One rule of the role decision. Serialised as it is hashed into the policy's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum RoleRule {
    /// The operator's certificate, by the SHA-256 of its DER (hex, any case).
    Certificate {
        /// Hex SHA-256 of the certificate's DER, any case.
        sha256: String,
        /// The role it decides.
        role: Role,
        /// Why, for the evidence.
        #[serde(default)]
        note: String,
    },
    /// The operator's certificate, by its subject as kyso prints it (`C=VN, O=…, CN=…`),
    /// compared without regard to case or diacritics.
    Subject {
        /// The subject, as kyso prints it.
        subject: String,
        /// The role it decides.
        role: Role,
        /// Why, for the evidence.
        #[serde(default)]
        note: String,
    },
    /// A subject `UID` attribute (0.9.2342.19200300.100.1.1) that starts with `prefix`, the
    /// way Vietnamese CAs write identifiers (`CCCD:`, `MST:`…).
    Identifier {
        /// The prefix of the subject's UID, e.g. `CCCD:`.
        prefix: String,
        /// The role it decides.
        role: Role,
        /// What the prefix means.
        meaning: String,
    },
    /// A certificate-policy OID the issuing CA publishes for one kind of certificate.
    CertificatePolicy {
        /// The certificate policy's OID.
        oid: String,
        /// The role it decides.
        role: Role,
        /// What the policy means.
        meaning: String,
    },
    /// The BCY shape of a body's certificate: the CN is the body's name, equal to its O or
    /// one of its OUs, and the certificate carries no personal mail address.
    BodyName,
    /// The BCY shape of a person's certificate: a name in CN that is not the O or an OU, and
    /// a personal mail address (`local@domain.tld`; a body's pseudo-address such as
    /// `TUHauGiangQTB1@TUHauGiang` is not one).
    PersonName,
}

/// The ordered rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRules {
    /// The rules, tried in order until one decides.
    pub rules: Vec<RoleRule>,
}

impl Default for RoleRules {
    /// The rules for the BCY hierarchies and the public CAs under the national root.
    ///
    /// Identifier prefixes are those the Vietnamese CAs write in `UID` (a citizen-ID card,
    /// the older ID card, a passport, for a person; a tax code or budget-unit code for a
    /// body). A person who runs a business also has a tax code, so the personal prefixes
    /// come first. No BCY CA publishes separate policy OIDs for personal and organisation
    /// certificates (the G2 hierarchy has one, 2.16.704.1.1.1.1.1, for both), so no policy
    /// rule is in the default set; an operator adds them with [`RoleRules::with_operator`].
    fn default() -> Self {
        let id = |prefix: &str, role, meaning: &str| RoleRule::Identifier {
            prefix: prefix.into(),
            role,
            meaning: meaning.into(),
        };
        RoleRules {
            rules: vec![
                id("CCCD:", Role::Personal, "citizen identity card number"),
                id("CMND:", Role::Personal, "identity card number"),
                id("HC:", Role::Personal, "passport number"),
                id("MST:", Role::Organisation, "tax code"),
                id("MNS:", Role::Organisation, "budget-unit code"),
                RoleRule::BodyName,
                RoleRule::PersonName,
            ],
        }
    }
}

/// An operator's roles file (README, "Roles"): known certificates and extra rules, tried
/// before the default ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorRoles {
    /// Certificates of bodies (`[[organisation]]`).
    #[serde(default)]
    pub organisation: Vec<Known>,
    /// Certificates of people (`[[personal]]`).
    #[serde(default)]
    pub personal: Vec<Known>,
    /// Certificate policies that decide a role (`[[certificate_policy]]`).
    #[serde(default)]
    pub certificate_policy: Vec<PolicyOid>,
}

/// A certificate the operator knows, by fingerprint or subject.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Known {
    /// Hex SHA-256 of the certificate.
    pub sha256: Option<String>,
    /// The certificate's subject, as kyso prints it.
    pub subject: Option<String>,
    /// Why, for the evidence.
    #[serde(default)]
    pub note: String,
}

/// A certificate policy of the roles file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOid {
    /// Its OID.
    pub oid: String,
    /// The role it decides.
    pub role: Role,
    /// What the policy means.
    #[serde(default)]
    pub meaning: String,
}

/// Why an operator's roles file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    /// The roles file cannot be read.
    #[error("roles file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The roles file is not valid TOML for kyso.
    #[error("roles file {path}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with its line.
        #[source]
        source: toml::de::Error,
    },
    /// An entry names neither `sha256` nor `subject`.
    #[error("roles file {path}: an entry names neither sha256 nor subject")]
    EmptyEntry {
        /// The file.
        path: String,
    },
    /// An entry's `sha256` is not 64 hex digits.
    #[error("roles file {path}: {value:?} is not a SHA-256 in hex")]
    BadFingerprint {
        /// The file.
        path: String,
        /// The value.
        value: String,
    },
}

impl RoleRules {
    /// The default rules behind the operator's file at `path`.
    pub fn with_operator(path: &std::path::Path) -> Result<RoleRules, RolesError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RolesError::Read {
            path: name.clone(),
            source,
        })?;
        let file: OperatorRoles = toml::from_str(&text).map_err(|source| RolesError::Parse {
            path: name.clone(),
            source,
        })?;
        let mut rules = Vec::new();
        for (entries, role) in [
            (&file.organisation, Role::Organisation),
            (&file.personal, Role::Personal),
        ] {
            for k in entries {
                match (&k.sha256, &k.subject) {
                    (Some(h), _) => {
                        let h = h.trim().to_ascii_lowercase().replace(':', "");
                        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(RolesError::BadFingerprint {
                                path: name,
                                value: h,
                            });
                        }
                        rules.push(RoleRule::Certificate {
                            sha256: h,
                            role,
                            note: k.note.clone(),
                        });
                    }
                    (None, Some(s)) => rules.push(RoleRule::Subject {
                        subject: s.clone(),
                        role,
                        note: k.note.clone(),
                    }),
                    (None, None) => return Err(RolesError::EmptyEntry { path: name }),
                }
            }
        }
        for p in &file.certificate_policy {
            rules.push(RoleRule::CertificatePolicy {
                oid: p.oid.clone(),
                role: p.role,
                meaning: p.meaning.clone(),
            });
        }
        rules.extend(RoleRules::default().rules);
        Ok(RoleRules { rules })
    }

    /// The role of the signature whose signer is `signer`, and the evidence in words.
    pub fn assign(&self, signer: Option<&Signer>) -> RoleDecision {
        let Some(signer) = signer else {
            return RoleDecision::unknown(
                "the signer's certificate was not found, so nothing tells the role".into(),
                "không tìm thấy chứng thư số của người ký nên không xác định được vai trò".into(),
            );
        };
        for rule in &self.rules {
            if let Some(d) = decide(rule, signer) {
                return d;
            }
        }
        RoleDecision::unknown(
            "no rule decided: the certificate names neither a person with a personal mail address nor a body whose name is its O or an OU".into(),
            "không quy tắc nào xác định được: chứng thư số không mang tên cá nhân kèm thư điện tử cá nhân, cũng không mang tên cơ quan trùng với O hoặc OU".into(),
        )
    }
}

/// A role and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleDecision {
    /// The role.
    pub role: Role,
    /// The rule that decided, in words.
    pub evidence: String,
    /// The rule that decided it, in Vietnamese.
    pub evidence_vi: String,
}

impl RoleDecision {
    fn unknown(evidence: String, evidence_vi: String) -> Self {
        RoleDecision {
            role: Role::Unknown,
            evidence,
            evidence_vi,
        }
    }
}

fn decide(rule: &RoleRule, s: &Signer) -> Option<RoleDecision> {
    let found = |role, evidence: String, evidence_vi: String| {
        Some(RoleDecision {
            role,
            evidence,
            evidence_vi,
        })
    };
    match rule {
        RoleRule::Certificate { sha256, role, note } => {
            (s.certificate_sha256.eq_ignore_ascii_case(sha256)).then_some(())?;
            found(
                *role,
                format!(
                    "listed by the operator by its SHA-256 {sha256}{}",
                    note_en(note)
                ),
                format!(
                    "có trong danh sách của đơn vị vận hành (SHA-256 {sha256}){}",
                    note_en(note)
                ),
            )
        }
        RoleRule::Subject {
            subject,
            role,
            note,
        } => {
            (fold(&s.subject) == fold(subject)).then_some(())?;
            found(
                *role,
                format!(
                    "listed by the operator by its subject {subject}{}",
                    note_en(note)
                ),
                format!(
                    "có trong danh sách của đơn vị vận hành (chủ thể {subject}){}",
                    note_en(note)
                ),
            )
        }
        RoleRule::Identifier {
            prefix,
            role,
            meaning,
        } => {
            let uid = s.identifiers.iter().find(|u| {
                u.len() >= prefix.len()
                    && u.is_char_boundary(prefix.len())
                    && u[..prefix.len()].eq_ignore_ascii_case(prefix)
            })?;
            found(
                *role,
                format!("its UID {uid} is a {meaning}"),
                format!("thuộc tính UID {uid} ({meaning})"),
            )
        }
        RoleRule::CertificatePolicy { oid, role, meaning } => {
            s.certificate_policies
                .iter()
                .any(|p| p == oid)
                .then_some(())?;
            found(
                *role,
                format!("its certificate policy {oid}{}", note_en(meaning)),
                format!("chính sách chứng thư {oid}{}", note_en(meaning)),
            )
        }
        RoleRule::BodyName => {
            let cn = s.common_name.as_deref()?;
            let body = s
                .organization
                .iter()
                .chain(&s.organizational_units)
                .find(|n| same_name(n, cn))?;
            if s.email.as_deref().is_some_and(is_mail_address) {
                return None;
            }
            found(
                Role::Organisation,
                format!("its CN {cn} is the name of the body {body} (O/OU) and it carries no personal mail address"),
                format!("tên chủ thể (CN) {cn} là tên cơ quan {body} (O/OU), không có thư điện tử cá nhân"),
            )
        }
        RoleRule::PersonName => {
            let cn = s.common_name.as_deref()?;
            let email = s.email.as_deref().filter(|e| is_mail_address(e))?;
            let is_body = s
                .organization
                .iter()
                .chain(&s.organizational_units)
                .any(|n| same_name(n, cn));
            (!is_body).then_some(())?;
            found(
                Role::Personal,
                format!("its CN {cn} is not the name of a body of the certificate and it carries the personal address {email}"),
                format!("tên chủ thể (CN) {cn} không phải tên cơ quan, có thư điện tử cá nhân {email}"),
            )
        }
    }
}

fn note_en(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    }
}

/// A mailbox address as people have them: `local@domain.tld`, with a dot in the domain.
pub fn is_mail_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.contains(char::is_whitespace)
}

/// Whether two names are the same name, regardless of case, diacritics and spacing.
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (fold(a), fold(b));
    !a.is_empty() && a == b
}

/// A name folded for comparison: decomposed (NFD) with the combining marks dropped, `đ`
/// as `d` (it is a letter of its own, not a `d` with a mark), lower case, spaces collapsed.
pub fn fold(s: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(s.len());
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        let c = match c {
            'đ' | 'Đ' => 'd',
            other => other,
        };
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(cn: &str, o: &str, ous: &[&str], email: Option<&str>) -> Signer {
        Signer {
            common_name: Some(cn.into()),
            organization: Some(o.into()),
            organizational_units: ous.iter().map(|s| (*s).to_owned()).collect(),
            email: email.map(str::to_owned),
            subject: format!("C=VN, O={o}, CN={cn}"),
            issuer: "C=VN, CN=CA".into(),
            serial: "01".into(),
            certificate_sha256: "ab".repeat(32),
            key: "RSA 2048".into(),
            identifiers: Vec::new(),
            certificate_policies: Vec::new(),
        }
    }

    #[test]
    fn names_fold_without_case_or_diacritics() {
        assert!(same_name("TỈNH ỦY HẬU GIANG", "Tinh uy Hau Giang"));
        assert!(same_name("Đảng ủy  Khối", "dang uy khoi"));
        assert!(!same_name("Tỉnh ủy Hậu Giang", "Tỉnh ủy Cần Thơ"));
        assert!(!same_name("", ""));
    }

    #[test]
    fn the_bcy_shapes_decide_person_and_body() {
        let rules = RoleRules::default();
        let person = signer(
            "Trần Văn Huyến",
            "TỈNH ỦY HẬU GIANG",
            &["VĂN PHÒNG TỈNH ỦY"],
            Some("huyentv@haugiang.gov.vn"),
        );
        let d = rules.assign(Some(&person));
        assert_eq!(d.role, Role::Personal, "{d:?}");
        assert!(d.evidence.contains("huyentv@haugiang.gov.vn"), "{d:?}");
        let body = signer(
            "Tỉnh ủy Hậu Giang",
            "Tỉnh ủy Hậu Giang",
            &[],
            Some("TUHauGiangQTB1@TUHauGiang"),
        );
        let d = rules.assign(Some(&body));
        assert_eq!(d.role, Role::Organisation, "{d:?}");
        // A body at the OU level is a body too.
        let unit = signer(
            "Văn phòng Tỉnh ủy",
            "TỈNH ỦY HẬU GIANG",
            &["VĂN PHÒNG TỈNH ỦY"],
            None,
        );
        assert_eq!(rules.assign(Some(&unit)).role, Role::Organisation);
        // A name without a personal address decides nothing.
        let tool = signer(
            "VGCA License Key Generator",
            "Ban Cơ yếu Chính phủ",
            &[],
            None,
        );
        assert_eq!(rules.assign(Some(&tool)).role, Role::Unknown);
        assert_eq!(rules.assign(None).role, Role::Unknown);
    }

    #[test]
    fn identifiers_and_the_operators_list_come_first() {
        let mut person = signer("Công ty A", "Công ty A", &[], None);
        person.identifiers = vec!["CCCD:079123456789".into()];
        let d = RoleRules::default().assign(Some(&person));
        assert_eq!(d.role, Role::Personal, "{d:?}");
        assert!(d.evidence.contains("CCCD:079123456789"));

        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("roles.toml");
        std::fs::write(
            &path,
            format!(
                "[[personal]]\nsha256 = \"{}\"\nnote = \"the director\"\n",
                "AB".repeat(32)
            ),
        )
        .expect("the roles file is written");
        let rules = RoleRules::with_operator(&path).expect("the roles file reads");
        let body = signer("Tỉnh ủy Hậu Giang", "Tỉnh ủy Hậu Giang", &[], None);
        let d = rules.assign(Some(&body));
        assert_eq!(d.role, Role::Personal, "the operator's list wins: {d:?}");
        assert!(d.evidence.contains("the director"));

        std::fs::write(&path, "[[organisation]]\nsha256 = \"xyz\"\n").expect("written");
        assert!(matches!(
            RoleRules::with_operator(&path),
            Err(RolesError::BadFingerprint { .. })
        ));
    }

    #[test]
    fn a_pseudo_address_is_no_mailbox() {
        assert!(is_mail_address("huyentv@haugiang.gov.vn"));
        assert!(!is_mail_address("TUHauGiangQTB1@TUHauGiang"));
        assert!(!is_mail_address("a@b."));
        assert!(!is_mail_address("no-at-sign"));
    }
}
