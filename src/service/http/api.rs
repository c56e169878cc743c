//! The API's handlers: each reads what it needs off the request inside its [`Call`], so
//! that a request that does not read (a bad parameter, a body of the wrong type) is refused
//! and recorded like any other.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Peer;
use crate::policy::{Expect, PolicyChoice};
use crate::report::Lang;
use crate::service::call::{Body, Call, ClientSubject, Refused, Shared};
use crate::service::config::Role;
use crate::service::error::Refusal;
use crate::service::{convert, json, proto};
use crate::verify::Inputs;

/// A PDF, as a body.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(super) struct PdfBody(#[allow(dead_code)] Vec<u8>);

/// A form with the PDF as its field `file`.
#[derive(utoipa::ToSchema)]
pub(super) struct UploadForm {
    /// The PDF.
    #[schema(value_type = String, format = Binary)]
    #[allow(dead_code)]
    file: Vec<u8>,
}

/// Bytes a multipart body may carry beyond the document: its boundaries and part headers.
const MULTIPART_OVERHEAD: usize = 64 << 10;
/// Largest body of a log check (its kept checkpoints): 1 MiB.
const LOG_CHECK_BYTES: usize = 1 << 20;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/verify", post(verify))
        .route(
            "/api/v1/signatures/{n}/signed-version",
            post(signed_version),
        )
        .route("/api/v1/pages/{p}/rendering", post(rendering))
        .route("/api/v1/signatures/{n}/comparison", post(comparison))
        .route("/api/v1/records", get(records))
        .route("/api/v1/records/{id}", get(record))
        .route("/api/v1/records/{id}/proof", get(record_proof))
        .route("/api/v1/log/consistency", get(consistency))
        .route("/api/v1/log/verify", post(log_verify))
        .route("/api/v1/checkpoint", get(checkpoint))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(super::metrics::metrics))
        .route("/api/v1/openapi.json", get(super::openapi::document))
        .route("/", get(super::page::clerk))
        .route("/audit", get(super::page::auditor))
        .route("/assets/{name}", get(super::page::asset))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are bounded as they arrive, by `max_document_bytes` and the budget of
        // bytes in flight.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(shared)
}

/// What every API handler starts from: the service, and the caller's headers and address
/// as a gRPC call would carry them. An extractor that never refuses: what does not read is
/// refused inside the call, and recorded.
pub(super) struct Request {
    shared: Arc<Shared>,
    seen: tonic::Request<()>,
    /// The document limit of a route that takes one, a multipart body's overhead included.
    upload_limit: usize,
}

impl axum::extract::FromRequestParts<Arc<Shared>> for Request {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<Request, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map(|c| c.0.clone())
            .unwrap_or(Peer {
                addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                client_subject: None,
            });
        Ok(Request::new(shared.clone(), peer, parts.headers.clone()))
    }
}

impl Request {
    fn new(shared: Arc<Shared>, peer: Peer, headers: HeaderMap) -> Request {
        let mut extensions = tonic::Extensions::new();
        extensions.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(peer.addr),
        });
        if let Some(subject) = peer.client_subject {
            extensions.insert(ClientSubject(subject));
        }
        let seen = tonic::Request::from_parts(
            tonic::metadata::MetadataMap::from_headers(headers),
            extensions,
            (),
        );
        let upload_limit = shared
            .config
            .max_document_bytes
            .saturating_add(MULTIPART_OVERHEAD);
        Request {
            shared,
            seen,
            upload_limit,
        }
    }

    /// The request's headers.
    fn headers(&self) -> HeaderMap {
        self.seen.metadata().clone().into_headers()
    }

    /// Runs `body` as the call `route` needing `role` (any authenticated caller for
    /// `None`), recorded like a gRPC call.
    async fn call<T, R>(
        self,
        route: &str,
        role: Option<Role>,
        message: T,
        body: impl for<'a> FnOnce(&'a mut Call, T) -> Body<'a, R>,
    ) -> Result<R, ApiError> {
        Call::answer(&self.shared, &self.seen, message, route, role, body)
            .await
            .map_err(ApiError)
    }
}

/// A refused API request, answered as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(super) struct ApiError(Refused);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Refused { status, http } = self.0;
        let body = json::ErrorBody {
            error: json::ErrorDetail {
                code: crate::service::error::code_name(status.code()),
                message: status.message().to_owned(),
            },
        };
        let mut response = (http, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if http == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if http == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The query of `POST /api/v1/verify`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct VerifyQuery {
    /// The caller's number of the document (số, ký hiệu).
    document_number: Option<String>,
    /// Who sent it.
    sender: Option<String>,
    /// The document's id in the caller's DMS.
    dms_id: Option<String>,
    /// `vi` (default) or `en`: the language of `summary`.
    lang: Option<String>,
    /// `decree-30` or `none`.
    policy: Option<String>,
    /// `issued`, `attachment`, `copy` or `any`.
    expect: Option<String>,
    /// A trust profile the service has loaded.
    trust_profile: Option<String>,
    /// Validate at this time (RFC 3339) instead of each signature's signing time.
    at: Option<String>,
}

/// The query of a request, or the refusal naming what does not read.
fn query<T: serde::de::DeserializeOwned + Default>(raw: Option<&str>) -> Result<T, Refusal> {
    match raw {
        None | Some("") => Ok(T::default()),
        Some(q) => serde_urlencoded::from_str(q).map_err(|e| Refusal::BadParameter {
            name: "query".into(),
            reason: e.to_string(),
        }),
    }
}

fn rfc3339(name: &str, value: &str) -> Result<OffsetDateTime, Refusal> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).map_err(|e| {
        Refusal::BadParameter {
            name: name.to_owned(),
            reason: format!("{value:?} is not an RFC 3339 time: {e}"),
        }
    })
}

impl VerifyQuery {
    fn inputs(&self) -> Result<Inputs, Refusal> {
        Ok(Inputs {
            now: OffsetDateTime::now_utc(),
            at: self.at.as_deref().map(|t| rfc3339("at", t)).transpose()?,
            policy: self
                .policy
                .as_deref()
                .map(str::parse::<PolicyChoice>)
                .transpose()?,
            expect: self
                .expect
                .as_deref()
                .map(str::parse::<Expect>)
                .transpose()?,
        })
    }

    fn lang(&self) -> Result<Lang, Refusal> {
        Ok(self
            .lang
            .as_deref()
            .map(str::parse)
            .transpose()?
            .unwrap_or_default())
    }

    fn metadata(&self) -> crate::audit::Metadata {
        crate::audit::Metadata {
            document_id: self.dms_id.clone().unwrap_or_default(),
            document_number: self.document_number.clone().unwrap_or_default(),
            sender: self.sender.clone().unwrap_or_default(),
            extra: Default::default(),
        }
    }
}

/// A request's body, shared between its handler and the drain after a refusal.
///
/// A refused upload (no credentials, a wrong media type, over the size limit) is answered
/// before its body has arrived; closing the connection on unread bytes would reset it and
/// lose the answer. What is left is read and dropped, up to the size the request could
/// have had and for at most [`DRAIN_TIME`], as servers' lingering close does.
#[derive(Clone)]
struct BodySlot(Arc<tokio::sync::Mutex<Option<axum::body::BodyDataStream>>>);

/// How long a refused request's remaining body is read and dropped: 5 s.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

impl BodySlot {
    fn new(body: HttpBody) -> BodySlot {
        BodySlot(Arc::new(tokio::sync::Mutex::new(Some(
            body.into_data_stream(),
        ))))
    }

    /// Reads and drops what is left of the body, at most `max_bytes` within [`DRAIN_TIME`].
    async fn drain(&self, max_bytes: usize) {
        let Some(mut stream) = self.0.lock().await.take() else {
            return;
        };
        let mut seen = 0usize;
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(chunk)) = stream.next().await {
                seen = seen.saturating_add(chunk.len());
                if seen > max_bytes {
                    break;
                }
            }
        })
        .await;
    }
}

/// The body of a request, read within `max_bytes`, the call's deadline and the service's
/// budget of bytes in flight (the permits are held until the call ends). Refused part-way,
/// the rest stays in `slot` for the drain.
async fn read_body(call: &mut Call, slot: &BodySlot, max_bytes: usize) -> Result<Vec<u8>, Refusal> {
    let mut guard = slot.0.lock().await;
    let Some(stream) = guard.as_mut() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let budget = call.shared.request_bytes.clone();
    loop {
        let chunk = match tokio::time::timeout_at(call.deadline, stream.next()).await {
            Ok(Some(Ok(c))) => c,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Refusal::Transport(tonic::Status::cancelled(format!(
                    "the request body broke off: {e}"
                ))))
            }
            Err(_) => return Err(call.deadline_exceeded("the document was still arriving")),
        };
        if out.len() + chunk.len() > max_bytes {
            return Err(Refusal::BodyTooLarge { limit: max_bytes });
        }
        if !chunk.is_empty() {
            let permits = u32::try_from(chunk.len())
                .ok()
                .and_then(|n| budget.clone().try_acquire_many_owned(n).ok())
                .ok_or(Refusal::RequestsInFlight {
                    budget: call.shared.config.max_request_bytes_in_flight,
                })?;
            call.hold(permits);
        }
        out.extend_from_slice(&chunk);
    }
    *guard = None;
    Ok(out)
}

/// The PDF of a verify or signed-version request: the body itself, or its multipart field
/// `file`.
async fn document(
    call: &mut Call,
    headers: &HeaderMap,
    body: &BodySlot,
) -> Result<bytes::Bytes, Refusal> {
    let limit = call.shared.config.max_document_bytes;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let document: bytes::Bytes = match essence.as_str() {
        "" | "application/pdf" | "application/octet-stream" => {
            read_body(call, body, limit).await?.into()
        }
        "multipart/form-data" => {
            let boundary =
                multer::parse_boundary(&content_type).map_err(|e| Refusal::BadMultipart {
                    reason: e.to_string(),
                })?;
            let raw = read_body(call, body, limit.saturating_add(MULTIPART_OVERHEAD)).await?;
            file_field(raw.into(), boundary).await?
        }
        _ => {
            return Err(Refusal::UnsupportedMediaType {
                given: content_type,
            })
        }
    };
    call.receive(&document)?;
    let head = &document[..document.len().min(1024)];
    if memchr::memmem::find(head, b"%PDF-").is_none() {
        return Err(Refusal::NotPdf);
    }
    Ok(document)
}

/// The field `file` of a multipart body.
async fn file_field(raw: bytes::Bytes, boundary: String) -> Result<bytes::Bytes, Refusal> {
    let bad = |e: multer::Error| Refusal::BadMultipart {
        reason: e.to_string(),
    };
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(raw) });
    let mut parts = multer::Multipart::new(stream, boundary);
    while let Some(field) = parts.next_field().await.map_err(bad)? {
        if field.name() == Some("file") {
            return field.bytes().await.map_err(bad);
        }
    }
    Err(Refusal::BadMultipart {
        reason: "it has no field named \"file\"".into(),
    })
}

/// Verifies a PDF: every signature, the chain to the trust, revocation, timestamps, what
/// changed after each, and the document rules.
#[utoipa::path(
    post,
    path = "/api/v1/verify",
    tag = "verification",
    params(VerifyQuery),
    request_body(
        description = "The PDF as the body, or a form whose field `file` is the PDF",
        content(
            (PdfBody = "application/pdf"),
            (UploadForm = "multipart/form-data")
        )
    ),
    responses(
        (status = 200, description = "The report, with the id of its audit record", body = json::VerifyAnswer),
        (status = 400, description = "A parameter or the body does not read", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 413, description = "Over max_document_bytes", body = json::ErrorBody),
        (status = 415, description = "Neither a PDF nor a form", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn verify(
    request: Request,
    RawQuery(raw): RawQuery,
    body: HttpBody,
) -> Result<Response, ApiError> {
    let (limit, headers) = (request.upload_limit, request.headers());
    let slot = BodySlot::new(body);
    let message = (raw, headers, slot.clone());
    let json = request
        .call(
            "POST /api/v1/verify",
            Some(Role::Verifier),
            message,
            |call, (raw, headers, body)| {
                Box::pin(async move {
                    let q: VerifyQuery = query(raw.as_deref())?;
                    call.metadata = q.metadata();
                    let inputs = q.inputs()?;
                    let lang = q.lang()?;
                    let document = document(call, &headers, &body).await?;
                    let profile = q.trust_profile.clone().unwrap_or_default();
                    let report =
                        crate::service::verify_for(call, document, inputs, profile).await?;
                    call.want_receipt();
                    let answer: crate::service::call::Answer<json::VerifyAnswer> =
                        Box::new(move |id| crate::service::verify_answer(report, id, lang));
                    Ok(answer)
                })
            },
        )
        .await;
    let json = drained(json, &slot, limit).await?;
    Ok(axum::Json(json).into_response())
}

/// `answer`, once a refused request's body has been drained.
async fn drained<R>(
    answer: Result<R, ApiError>,
    slot: &BodySlot,
    limit: usize,
) -> Result<R, ApiError> {
    if answer.is_err() {
        slot.drain(limit).await;
    }
    answer
}

/// The query of `POST /api/v1/signatures/{n}/signed-version`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SignedVersionQuery {
    /// The caller's number of the document (số, ký hiệu), for the record.
    document_number: Option<String>,
    /// Who sent it, for the record.
    sender: Option<String>,
    /// The document's id in the caller's DMS, for the record.
    dms_id: Option<String>,
}

/// The bytes signature `n` signed: the document as it was when it was signed.
#[utoipa::path(
    post,
    path = "/api/v1/signatures/{n}/signed-version",
    tag = "verification",
    params(("n" = u32, Path, description = "The signature's number, from 1, in the report's order"), SignedVersionQuery),
    request_body(
        description = "The PDF as the body, or a form whose field `file` is the PDF",
        content(
            (PdfBody = "application/pdf"),
            (UploadForm = "multipart/form-data")
        )
    ),
    responses(
        (status = 200, description = "The signed version", body = PdfBody, content_type = "application/pdf",
         headers(("x-kyso-sha256" = String, description = "Its SHA-256"), ("x-kyso-audit-record-id" = String, description = "The audit record of this call"))),
        (status = 400, description = "A parameter or the body does not read", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No such signature", body = json::ErrorBody),
        (status = 413, description = "Over max_document_bytes", body = json::ErrorBody),
        (status = 415, description = "Neither a PDF nor a form", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn signed_version(
    request: Request,
    Path(n): Path<String>,
    RawQuery(raw): RawQuery,
    body: HttpBody,
) -> Result<Response, ApiError> {
    let (limit, headers) = (request.upload_limit, request.headers());
    let slot = BodySlot::new(body);
    let message = (n, raw, headers, slot.clone());
    let answer = request
        .call(
            "POST /api/v1/signatures/{n}/signed-version",
            Some(Role::Verifier),
            message,
            |call, (n, raw, headers, body)| {
                Box::pin(async move {
                    let q: SignedVersionQuery = query(raw.as_deref())?;
                    call.metadata = metadata(q);
                    let number = number("n", &n, "signature")?;
                    let document = document(call, &headers, &body).await?;
                    let (bytes, sha256) =
                        crate::service::signed_version_for(call, document, number).await?;
                    let answer: crate::service::call::Answer<_> =
                        Box::new(move |recorded| (bytes, sha256, recorded.id, number));
                    Ok(answer)
                })
            },
        )
        .await;
    let (bytes, sha256, id, number) = drained(answer, &slot, limit).await?;
    let disposition = format!("attachment; filename=\"signature-{number}-signed-version.pdf\"");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        )],
        bytes,
    )
        .into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_DISPOSITION.as_str(), disposition),
        ("x-kyso-sha256", sha256),
        ("x-kyso-audit-record-id", id),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(response)
}

/// A page or signature number from the path.
fn number(name: &str, given: &str, what: &str) -> Result<u32, Refusal> {
    given.parse().map_err(|_| Refusal::BadParameter {
        name: name.into(),
        reason: format!("{given:?} is not a {what} number (1, 2, …)"),
    })
}

/// The record's metadata from a query's `document_number`, `sender` and `dms_id`.
fn metadata(q: SignedVersionQuery) -> crate::audit::Metadata {
    crate::audit::Metadata {
        document_id: q.dms_id.unwrap_or_default(),
        document_number: q.document_number.unwrap_or_default(),
        sender: q.sender.unwrap_or_default(),
        extra: Default::default(),
    }
}

/// Page `p` of the document, drawn on white (at most 1,400 pixels on its longer side),
/// with the transform that places a widget's `rect` on the picture.
#[utoipa::path(
    post,
    path = "/api/v1/pages/{p}/rendering",
    tag = "verification",
    params(("p" = u32, Path, description = "The page's number, from 1"), SignedVersionQuery),
    request_body(
        description = "The PDF as the body, or a form whose field `file` is the PDF",
        content(
            (PdfBody = "application/pdf"),
            (UploadForm = "multipart/form-data")
        )
    ),
    responses(
        (status = 200, description = "The page drawn", body = json::PageRendering),
        (status = 400, description = "A parameter or the body does not read, or the page cannot be drawn", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No such page", body = json::ErrorBody),
        (status = 413, description = "Over max_document_bytes", body = json::ErrorBody),
        (status = 415, description = "Neither a PDF nor a form", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn rendering(
    request: Request,
    Path(p): Path<String>,
    RawQuery(raw): RawQuery,
    body: HttpBody,
) -> Result<Response, ApiError> {
    let (limit, headers) = (request.upload_limit, request.headers());
    let slot = BodySlot::new(body);
    let message = (p, raw, headers, slot.clone());
    let answer = request
        .call(
            "POST /api/v1/pages/{p}/rendering",
            Some(Role::Verifier),
            message,
            |call, (p, raw, headers, body)| {
                Box::pin(async move {
                    let q: SignedVersionQuery = query(raw.as_deref())?;
                    call.metadata = metadata(q);
                    let page = number("p", &p, "page")?;
                    let document = document(call, &headers, &body).await?;
                    let drawn = crate::service::rendering_for(call, document, page).await?;
                    let answer: crate::service::call::Answer<json::PageRendering> =
                        Box::new(move |recorded| {
                            json::PageRendering::of(&drawn, Some(recorded.id))
                        });
                    Ok(answer)
                })
            },
        )
        .await;
    Ok(axum::Json(drained(answer, &slot, limit).await?).into_response())
}

/// The query of `POST /api/v1/signatures/{n}/comparison`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ComparisonQuery {
    /// The page to compare, from 1 (1 by default).
    page: Option<String>,
    /// The caller's number of the document (số, ký hiệu), for the record.
    document_number: Option<String>,
    /// Who sent it, for the record.
    sender: Option<String>,
    /// The document's id in the caller's DMS, for the record.
    dms_id: Option<String>,
}

/// Page `page` as signature `n` signed it beside the page as it is now, drawn at one scale,
/// with the areas that look different.
#[utoipa::path(
    post,
    path = "/api/v1/signatures/{n}/comparison",
    tag = "verification",
    params(("n" = u32, Path, description = "The signature's number, from 1, in the report's order"), ComparisonQuery),
    request_body(
        description = "The PDF as the body, or a form whose field `file` is the PDF",
        content(
            (PdfBody = "application/pdf"),
            (UploadForm = "multipart/form-data")
        )
    ),
    responses(
        (status = 200, description = "The two pictures and what differs", body = json::PageComparison),
        (status = 400, description = "A parameter or the body does not read, or the page cannot be drawn", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No such signature or page", body = json::ErrorBody),
        (status = 413, description = "Over max_document_bytes", body = json::ErrorBody),
        (status = 415, description = "Neither a PDF nor a form", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn comparison(
    request: Request,
    Path(n): Path<String>,
    RawQuery(raw): RawQuery,
    body: HttpBody,
) -> Result<Response, ApiError> {
    let (limit, headers) = (request.upload_limit, request.headers());
    let slot = BodySlot::new(body);
    let message = (n, raw, headers, slot.clone());
    let answer = request
        .call(
            "POST /api/v1/signatures/{n}/comparison",
            Some(Role::Verifier),
            message,
            |call, (n, raw, headers, body)| {
                Box::pin(async move {
                    let q: ComparisonQuery = query(raw.as_deref())?;
                    let page = match &q.page {
                        Some(p) => number("page", p, "page")?,
                        None => 1,
                    };
                    call.metadata = metadata(SignedVersionQuery {
                        document_number: q.document_number,
                        sender: q.sender,
                        dms_id: q.dms_id,
                    });
                    let signature = number("n", &n, "signature")?;
                    let document = document(call, &headers, &body).await?;
                    let compared =
                        crate::service::comparison_for(call, document, signature, page).await?;
                    let answer: crate::service::call::Answer<json::PageComparison> =
                        Box::new(move |recorded| {
                            json::PageComparison::of(&compared, signature, recorded.id)
                        });
                    Ok(answer)
                })
            },
        )
        .await;
    Ok(axum::Json(drained(answer, &slot, limit).await?).into_response())
}

/// The query of `GET /api/v1/records`: the filters of `QueryRecords`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RecordsQuery {
    /// Hex SHA-256 of the document.
    document_sha256: Option<String>,
    /// Part of a signer's name (without case or diacritics).
    signer_name: Option<String>,
    /// Hex SHA-256 of a signer's certificate.
    certificate_sha256: Option<String>,
    /// A signer certificate's serial, hex.
    signer_serial: Option<String>,
    /// Part of a signer's organisation.
    organization: Option<String>,
    /// `VALID`, `INVALID`, `INDETERMINATE` or `UNSIGNED`.
    verdict: Option<String>,
    /// The principal that called.
    caller: Option<String>,
    /// The document's number.
    document_number: Option<String>,
    /// Records from this time (RFC 3339).
    from: Option<String>,
    /// Records up to this time (RFC 3339).
    to: Option<String>,
    /// Records per page: 50 by default, at most 1000.
    page_size: Option<u32>,
    /// The `next_page_token` of the page before.
    page_token: Option<String>,
}

impl RecordsQuery {
    fn request(self) -> Result<proto::QueryRecordsRequest, Refusal> {
        let time = |name: &str, v: Option<String>| {
            v.map(|t| rfc3339(name, &t).map(convert::timestamp))
                .transpose()
        };
        Ok(proto::QueryRecordsRequest {
            from: time("from", self.from)?,
            to: time("to", self.to)?,
            document_sha256: self.document_sha256,
            signer_name: self.signer_name,
            certificate_sha256: self.certificate_sha256,
            signer_serial: self.signer_serial,
            organization: self.organization,
            verdict: self.verdict,
            caller: self.caller,
            document_number: self.document_number,
            page_size: self.page_size.unwrap_or_default(),
            page_token: self.page_token.unwrap_or_default(),
        })
    }
}

/// The audit records matching the filters, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/records",
    tag = "audit",
    params(RecordsQuery),
    responses(
        (status = 200, description = "A page of records", body = json::RecordsPage),
        (status = 400, description = "A parameter or the body does not read", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn records(
    request: Request,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let page = request
        .call(
            "GET /api/v1/records",
            Some(Role::Auditor),
            raw,
            |call, raw| {
                Box::pin(async move {
                    let q: RecordsQuery = query(raw.as_deref())?;
                    let page = crate::service::query_records(call, q.request()?).await?;
                    Ok(crate::service::answer(page))
                })
            },
        )
        .await?;
    Ok(axum::Json(json::RecordsPage {
        records: page.records.iter().map(json::Record::from_proto).collect(),
        next_page_token: page.next_page_token,
    })
    .into_response())
}

/// One audit record.
#[utoipa::path(
    get,
    path = "/api/v1/records/{id}",
    tag = "audit",
    params(("id" = String, Path, description = "The record's id")),
    responses(
        (status = 200, description = "The record", body = json::Record),
        (status = 400, description = "A parameter or the body does not read", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No such record", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn record(request: Request, Path(id): Path<String>) -> Result<Response, ApiError> {
    let record = request
        .call(
            "GET /api/v1/records/{id}",
            Some(Role::Auditor),
            id,
            |call, id| {
                Box::pin(async move {
                    let r = crate::service::get_record(call, id).await?;
                    Ok(crate::service::answer(r))
                })
            },
        )
        .await?;
    Ok(axum::Json(json::Record::from_proto(&record)).into_response())
}

/// The query of `GET /api/v1/records/{id}/proof`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub(super) struct ProofQuery {
    /// The tree to prove the record in: the size of a signed checkpoint (default: the
    /// latest).
    tree_size: u64,
}

/// A record's inclusion proof in the Merkle tree, under a signed checkpoint: what `kyso
/// audit prove --format json` prints, checked offline by `kyso audit verify-proof`.
#[utoipa::path(
    get,
    path = "/api/v1/records/{id}/proof",
    tag = "audit",
    params(("id" = String, Path, description = "The record's id"), ProofQuery),
    responses(
        (status = 200, description = "The inclusion proof", body = crate::audit::tree::InclusionProof),
        (status = 400, description = "A parameter does not read, or the record is not in that tree", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No checkpoint of that size", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn record_proof(
    request: Request,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let proof = request
        .call(
            "GET /api/v1/records/{id}/proof",
            Some(Role::Auditor),
            (id, raw),
            |call, (id, raw)| {
                Box::pin(async move {
                    let q: ProofQuery = query(raw.as_deref())?;
                    let proof = crate::service::inclusion_proof(call, id, q.tree_size).await?;
                    Ok(crate::service::answer(proof))
                })
            },
        )
        .await?;
    Ok(axum::Json(proof).into_response())
}

/// The query of `GET /api/v1/log/consistency`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
pub(super) struct ConsistencyQuery {
    /// The older tree's size (a saved checkpoint's `tree_size`).
    old_size: u64,
    /// The newer tree: the size of a signed checkpoint (default: the latest).
    new_size: u64,
}

/// The proof that the tree of `old_size` records is a prefix of a later signed tree: what
/// `kyso audit consistency --format json` prints.
#[utoipa::path(
    get,
    path = "/api/v1/log/consistency",
    tag = "audit",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The consistency proof", body = crate::audit::tree::ConsistencyProof),
        (status = 400, description = "A parameter does not read, or old_size is not 1 to new_size", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No checkpoint of that size", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn consistency(
    request: Request,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let proof = request
        .call(
            "GET /api/v1/log/consistency",
            Some(Role::Auditor),
            raw,
            |call, raw| {
                Box::pin(async move {
                    let q: ConsistencyQuery = query(raw.as_deref())?;
                    let proof =
                        crate::service::consistency_proof(call, q.old_size, q.new_size).await?;
                    Ok(crate::service::answer(proof))
                })
            },
        )
        .await?;
    Ok(axum::Json(proof).into_response())
}

/// The body of `POST /api/v1/log/verify` (all optional; an empty body checks the whole log).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LogVerifyBody {
    /// The first record to check (from 1; 0 is the log's start).
    from_sequence: u64,
    /// 0: to the log's end.
    to_sequence: u64,
    /// Checkpoints kept earlier (`GET /api/v1/checkpoint`): the log must still hold them.
    kept_checkpoints: Vec<json::Checkpoint>,
}

/// Checks the log (its records, hash chain, Merkle tree and signed checkpoints), and that
/// it still holds the checkpoints the caller kept.
#[utoipa::path(
    post,
    path = "/api/v1/log/verify",
    tag = "audit",
    request_body(content = LogVerifyBody, description = "What to check; an empty body checks the whole log", content_type = "application/json"),
    responses(
        (status = 200, description = "What the check found", body = json::LogCheck),
        (status = 400, description = "A parameter or the body does not read", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn log_verify(request: Request, body: HttpBody) -> Result<Response, ApiError> {
    let slot = BodySlot::new(body);
    let check = request
        .call(
            "POST /api/v1/log/verify",
            Some(Role::Auditor),
            slot.clone(),
            |call, body| {
                Box::pin(async move {
                    let raw = read_body(call, &body, LOG_CHECK_BYTES).await?;
                    let b: LogVerifyBody = if raw.iter().all(u8::is_ascii_whitespace) {
                        LogVerifyBody::default()
                    } else {
                        serde_json::from_slice(&raw).map_err(|e| Refusal::BadParameter {
                            name: "body".into(),
                            reason: format!("not the JSON of a log check: {e}"),
                        })?
                    };
                    let kept = b
                        .kept_checkpoints
                        .iter()
                        .map(|c| {
                            c.to_proto().ok_or_else(|| Refusal::BadParameter {
                                name: "kept_checkpoints".into(),
                                reason: format!(
                                    "the checkpoint of {} records: root_hash is not base64 of 32 bytes",
                                    c.tree_size
                                ),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let r = proto::VerifyLogRequest {
                        from_sequence: b.from_sequence,
                        to_sequence: b.to_sequence,
                        kept_checkpoints: kept,
                    };
                    let check = crate::service::verify_log(call, r).await?;
                    Ok(crate::service::answer(check))
                })
            },
        )
        .await;
    let check = drained(check, &slot, LOG_CHECK_BYTES).await?;
    Ok(axum::Json(json::LogCheck::from_proto(&check)).into_response())
}

/// The latest signed checkpoint, with the public key that verifies it.
#[utoipa::path(
    get,
    path = "/api/v1/checkpoint",
    tag = "audit",
    responses(
        (status = 200, description = "The checkpoint", body = json::Checkpoint),
        (status = 400, description = "A parameter or the body does not read", body = json::ErrorBody),
        (status = 401, description = "No or unknown bearer token", body = json::ErrorBody),
        (status = 403, description = "The caller lacks the role", body = json::ErrorBody),
        (status = 404, description = "No checkpoint signed yet", body = json::ErrorBody),
        (status = 503, description = "Over the bytes in flight, the audit log unreachable, or shutting down", body = json::ErrorBody),
        (status = 504, description = "request_timeout_seconds passed", body = json::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn checkpoint(request: Request) -> Result<Response, ApiError> {
    let cp = request
        .call(
            "GET /api/v1/checkpoint",
            Some(Role::Auditor),
            (),
            |call, ()| {
                Box::pin(async move {
                    let cp = crate::service::get_checkpoint(call).await?;
                    Ok(crate::service::answer(cp))
                })
            },
        )
        .await?;
    Ok(axum::Json(json::Checkpoint::from_proto(&cp)).into_response())
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the audit store answers, so a verification can be recorded.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "The audit store answers", body = String, content_type = "text/plain"),
    (status = 503, description = "The audit store does not answer", body = String, content_type = "text/plain")
))]
pub(super) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.audit.store().clone();
    match tokio::task::spawn_blocking(move || store.head()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %crate::error_chain(&e), "readiness: the audit store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the audit log cannot be read\n",
            )
                .into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response(),
    }
}

/// A route the API does not have: refused and recorded (any authenticated caller) under
/// `/api/`, a plain 404 elsewhere.
async fn no_route(request: Request, method: Method, uri: Uri) -> Response {
    // Outside the API (a browser's /favicon.ico, a probe): not found, and no record.
    if !uri.path().starts_with("/api/") {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    refuse(request, method, uri, false).await.into_response()
}

/// A route the API has, with another method.
async fn method_not_allowed(request: Request, method: Method, uri: Uri) -> ApiError {
    refuse(request, method, uri, true).await
}

async fn refuse(request: Request, method: Method, uri: Uri, known_path: bool) -> ApiError {
    let route = format!("{method} {}", uri.path());
    let (method, path) = (method.to_string(), uri.path().to_owned());
    let refusal = if known_path {
        Refusal::MethodNotAllowed { method, path }
    } else {
        Refusal::NoRoute { method, path }
    };
    ApiError(Call::refuse(&request.shared, &request.seen, &route, refusal).await)
}
