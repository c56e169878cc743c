//! Revocation data and missing intermediates from the network: the certificate's CRL
//! distribution points and OCSP responders, and authorityInfoAccess caIssuers (RFC 5280
//! §4.2.1.13, §4.2.2.1; RFC 6960).
//!
//! The core stays free of I/O: it asks an [`Online`] it was given in its `Context`, and
//! `Online` asks a [`Fetch`] — [`HttpFetcher`] in the binaries, a loopback server or a stub
//! in tests. Every fetch has a timeout and a size limit. Answers are cached in memory (a
//! bounded LRU: CRLs by bytes, the rest by count) until their `nextUpdate`, and optionally in
//! a directory, so that the same CRL is neither fetched nor parsed twice; a source that did
//! not answer is not asked again for [`FAILURE_TTL`], so a dead responder costs one timeout,
//! not one per document.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;
use time::OffsetDateTime;

use super::crl::Crl;
use super::ocsp::{self, OcspResponse};
use super::source::Source;
use crate::trust::Certificate;

/// Largest CRL fetched: 64 MiB (the BCY's largest CRLs are a few MB).
pub const MAX_CRL_BYTES: usize = 64 << 20;
/// Largest OCSP response or caIssuers file fetched: 1 MiB.
pub const MAX_SMALL_BYTES: usize = 1 << 20;
/// Memory the cached CRLs may take (by DER size): 256 MiB.
pub const CRL_CACHE_BYTES: usize = 256 << 20;
/// Cached OCSP responses and caIssuers answers: 10,000 each.
pub const CACHE_ENTRIES: usize = 10_000;
/// How long a source that did not answer is left alone: 60 s.
pub const FAILURE_TTL: Duration = Duration::from_secs(60);
/// How long an answer without `nextUpdate` (a certificate, a CRL without one) is kept: 1 h.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Default timeout of one fetch: 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The source did not answer: connection refused, timeout, DNS, HTTP error status.
    #[error("{url} did not answer: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The source answered with something unusable.
    #[error("{url} answered with {reason}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
}

impl FetchError {
    /// The source at `url` did not answer, for `reason`.
    pub fn unreachable(url: &str, reason: impl ToString) -> Self {
        FetchError::Unreachable {
            url: url.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// The source at `url` answered with something unusable, `reason`.
    pub fn bad_answer(url: &str, reason: impl ToString) -> Self {
        FetchError::BadAnswer {
            url: url.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Something that can fetch a URL: GET, or POST with a body. At most `limit` bytes.
pub trait Fetch: Send + Sync {
    /// GETs `url`, at most `limit` bytes.
    fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, FetchError>;
    /// POSTs `body` of `content_type` to `url`, at most `limit` bytes of answer.
    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, FetchError>;
}

/// Plain-HTTP fetching with a whole-request timeout, no redirects to other schemes and
/// the proxy of the environment (`http_proxy`), if any.
pub struct HttpFetcher {
    agent: ureq::Agent,
}

impl HttpFetcher {
    /// A fetcher whose every request times out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(3)
            .user_agent(concat!("kyso/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpFetcher {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn read(
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let mut response = response.map_err(|e| FetchError::unreachable(url, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::unreachable(
                url,
                format!("HTTP status {status}"),
            ));
        }
        response
            .body_mut()
            .with_config()
            .limit(limit as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    FetchError::bad_answer(url, format!("more than {limit} bytes"))
                }
                e => FetchError::unreachable(url, e),
            })
    }
}

impl std::fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpFetcher")
    }
}

impl Fetch for HttpFetcher {
    fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, FetchError> {
        Self::read(url, self.agent.get(url).call(), limit)
    }

    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let response = self
            .agent
            .post(url)
            .header("Content-Type", content_type)
            .send(body);
        Self::read(url, response, limit)
    }
}

struct Cached<T> {
    value: T,
    until: OffsetDateTime,
}

struct Cache {
    crls: LruCache<String, Cached<Crl>>,
    crl_bytes: usize,
    ocsp: LruCache<(String, [u8; 32]), Cached<OcspResponse>>,
    certs: LruCache<String, Cached<Vec<Certificate>>>,
    failures: LruCache<String, Cached<FetchError>>,
}

/// Online revocation and certificate sources with their cache; shared by every
/// verification of a process.
pub struct Online {
    fetcher: Arc<dyn Fetch>,
    cache: Mutex<Cache>,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Online {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Online").field("dir", &self.dir).finish()
    }
}

impl Online {
    /// Online sources fetched with `fetcher`, cached in memory and, when `dir` is given, in
    /// that directory (created if missing).
    pub fn new(fetcher: Arc<dyn Fetch>, dir: Option<PathBuf>) -> Self {
        let n = NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        if let Some(d) = &dir {
            // A cache that cannot be written is only slower; fetches still work.
            let _ = std::fs::create_dir_all(d);
        }
        Online {
            fetcher,
            cache: Mutex::new(Cache {
                crls: LruCache::unbounded(),
                crl_bytes: 0,
                ocsp: LruCache::new(n),
                certs: LruCache::new(n),
                failures: LruCache::new(n),
            }),
            dir,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds only finished values: after a panic elsewhere it is still sound.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The CRL at `url`, from the cache while it is current at `now`, else fetched.
    pub fn crl(&self, url: &str, now: OffsetDateTime) -> Result<Crl, FetchError> {
        if let Some(c) = self.cache().crls.get(url) {
            if c.until > now {
                return Ok(c.value.clone());
            }
        }
        let parse = |der: &[u8]| {
            Crl::from_der(der, Source::Online(url.to_owned()))
                .map_err(|e| FetchError::bad_answer(url, format!("not a CRL: {e}")))
        };
        let crl = match self.read_disk("crl", url).map(|d| parse(&d)) {
            Some(Ok(crl)) if crl.next_update.is_some_and(|n| n > now) => crl,
            _ => {
                let der = self.fetch(url, || self.fetcher.get(url, MAX_CRL_BYTES), now)?;
                let crl = parse(&der).inspect_err(|e| self.failed(url, e, now))?;
                self.write_disk("crl", url, &der);
                crl
            }
        };
        let until = crl.next_update.unwrap_or(now + DEFAULT_TTL);
        let mut cache = self.cache();
        cache.crl_bytes += crl.size;
        if let Some(old) = cache.crls.put(
            url.to_owned(),
            Cached {
                value: crl.clone(),
                until,
            },
        ) {
            cache.crl_bytes -= old.value.size;
        }
        while cache.crl_bytes > CRL_CACHE_BYTES && cache.crls.len() > 1 {
            if let Some((_, old)) = cache.crls.pop_lru() {
                cache.crl_bytes -= old.value.size;
            }
        }
        Ok(crl)
    }

    /// An OCSP response about `cert` from the responder at `url`, asked with a fresh nonce
    /// that the answer must echo if it carries one; cached until its `nextUpdate`.
    pub fn ocsp(
        &self,
        url: &str,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> Result<OcspResponse, FetchError> {
        let key = (url.to_owned(), cert.sha256);
        if let Some(c) = self.cache().ocsp.get(&key) {
            if c.until > now {
                return Ok(c.value.clone());
            }
        }
        let mut nonce = [0u8; 16];
        openssl::rand::rand_bytes(&mut nonce)
            .map_err(|e| FetchError::bad_answer(url, format!("no random nonce: {e}")))?;
        let request =
            ocsp::request(cert, issuer, &nonce).map_err(|e| FetchError::bad_answer(url, e))?;
        let der = self.fetch(
            url,
            || {
                self.fetcher
                    .post(url, "application/ocsp-request", &request, MAX_SMALL_BYTES)
            },
            now,
        )?;
        let checked = OcspResponse::from_der(&der, Source::Online(url.to_owned()))
            .map_err(|e| FetchError::bad_answer(url, e))
            .and_then(|r| match &r.nonce {
                Some(n) if n[..] != nonce[..] => Err(FetchError::bad_answer(
                    url,
                    "a response whose nonce is not the one sent (a replayed answer)",
                )),
                _ => Ok(r),
            });
        let response = checked.inspect_err(|e| self.failed(url, e, now))?;
        let until = response
            .single_for(cert, issuer)
            .and_then(|s| s.next_update)
            .unwrap_or(now + Duration::from_secs(300));
        self.cache().ocsp.put(
            key,
            Cached {
                value: response.clone(),
                until,
            },
        );
        Ok(response)
    }

    /// The certificates at a caIssuers `url`: one DER certificate, or a certs-only PKCS#7
    /// (`.p7c`, RFC 5280 §4.2.2.1).
    pub fn ca_issuers(
        &self,
        url: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Certificate>, FetchError> {
        if let Some(c) = self.cache().certs.get(url) {
            if c.until > now {
                return Ok(c.value.clone());
            }
        }
        let der = match self.read_disk("cert", url) {
            Some(d) => d,
            None => {
                let d = self.fetch(url, || self.fetcher.get(url, MAX_SMALL_BYTES), now)?;
                self.write_disk("cert", url, &d);
                d
            }
        };
        let certs = parse_certificates(&der)
            .map_err(|e| FetchError::bad_answer(url, e))
            .inspect_err(|e| self.failed(url, e, now))?;
        self.cache().certs.put(
            url.to_owned(),
            Cached {
                value: certs.clone(),
                until: now + DEFAULT_TTL,
            },
        );
        Ok(certs)
    }

    /// Runs `fetch` unless `url` failed less than [`FAILURE_TTL`] ago; remembers a failure.
    fn fetch(
        &self,
        url: &str,
        fetch: impl FnOnce() -> Result<Vec<u8>, FetchError>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, FetchError> {
        if let Some(f) = self.cache().failures.get(url) {
            if f.until > now {
                return Err(f.value.clone());
            }
        }
        fetch().inspect_err(|e| self.failed(url, e, now))
    }

    fn failed(&self, url: &str, e: &FetchError, now: OffsetDateTime) {
        self.cache().failures.put(
            url.to_owned(),
            Cached {
                value: e.clone(),
                until: now + FAILURE_TTL,
            },
        );
    }

    fn disk_path(&self, kind: &str, url: &str) -> Option<PathBuf> {
        let name = format!(
            "{kind}-{}.der",
            hex::encode(openssl::sha::sha256(url.as_bytes()))
        );
        self.dir.as_ref().map(|d| d.join(name))
    }

    fn read_disk(&self, kind: &str, url: &str) -> Option<Vec<u8>> {
        let path = self.disk_path(kind, url)?;
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > MAX_CRL_BYTES as u64 {
            return None;
        }
        std::fs::read(path).ok()
    }

    fn write_disk(&self, kind: &str, url: &str, der: &[u8]) {
        let Some(path) = self.disk_path(kind, url) else {
            return;
        };
        // Written beside and renamed, so a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, der).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Certificates from a caIssuers answer: DER or PEM certificate, or a certs-only PKCS#7.
fn parse_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, &'static str> {
    if let Ok(c) = Certificate::from_der(bytes) {
        return Ok(vec![c]);
    }
    if let Some(c) = openssl::x509::X509::from_pem(bytes)
        .ok()
        .and_then(|x| x.to_der().ok())
        .and_then(|der| Certificate::from_der(&der).ok())
    {
        return Ok(vec![c]);
    }
    let p7 = openssl::pkcs7::Pkcs7::from_der(bytes)
        .map_err(|_| "neither a certificate nor a certs-only PKCS#7")?;
    let certs = p7
        .signed()
        .and_then(|s| s.certificates())
        .map(|stack| {
            stack
                .iter()
                .take(16)
                .filter_map(|c| c.to_der().ok())
                .filter_map(|d| Certificate::from_der(&d).ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if certs.is_empty() {
        return Err("a PKCS#7 without certificates");
    }
    Ok(certs)
}
