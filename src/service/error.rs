//! Why the service refuses or fails a call, and what the caller is told: one enum, mapped to
//! the wire in one place.
//!
//! Each refusal has one status code. What the caller may fix (a bad argument, a missing role)
//! is said in full; what is the service's own trouble (the audit store, a worker that died) is
//! logged with its causes and reported to the caller only as what failed, never with the
//! details of the machine.

use crate::audit::AuditError;
use crate::names::UnknownName;
use crate::service::convert::CheckpointError;

/// Why a call did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The call carries no credentials.
    #[error("no credentials: send \"authorization: Bearer <token>\"")]
    NoCredentials,
    /// The authorization header is not a bearer token.
    #[error("the authorization header is not \"Bearer <token>\"")]
    MalformedAuthorization,
    /// The bearer token is not configured.
    #[error("the bearer token is not known")]
    UnknownToken,
    /// The client certificate has no roles.
    #[error("the client certificate {subject} has no roles in [[auth.certificates]]")]
    UnknownClientCertificate {
        /// Its subject.
        subject: String,
    },
    /// The caller lacks the role the method needs.
    #[error("{principal} may not call {method}: it needs the {role} role")]
    Forbidden {
        /// The caller.
        principal: String,
        /// The method.
        method: String,
        /// The role it needs.
        role: &'static str,
    },
    #[error(
        "the grpc-timeout header {value:?} is not 1 to 8 digits and a unit (H, M, S, m, u, n)"
    )]
    /// The grpc-timeout header does not read as one.
    BadTimeout {
        /// The header's value.
        value: String,
    },
    /// The document is empty.
    #[error("the document is empty")]
    EmptyDocument,
    /// An HTTP body of a media type the API does not take.
    #[error("the body is {given}; send the PDF as application/pdf or as the field \"file\" of multipart/form-data")]
    UnsupportedMediaType {
        /// The request's Content-Type.
        given: String,
    },
    /// An HTTP body that is not a PDF.
    #[error("the body is not a PDF: a PDF starts with %PDF- within its first 1024 bytes")]
    NotPdf,
    /// A multipart body without a readable `file` field.
    #[error("the multipart body has no readable field \"file\": {reason}")]
    BadMultipart {
        /// What is wrong with it.
        reason: String,
    },
    /// A query parameter that does not read.
    #[error("query parameter {name}: {reason}")]
    BadParameter {
        /// The parameter.
        name: String,
        /// Why it does not read.
        reason: String,
    },
    /// An HTTP request body over what its route takes.
    #[error("the request body is over {limit} bytes, the most this route takes")]
    BodyTooLarge {
        /// The route's limit (`max_document_bytes` for a document).
        limit: usize,
    },
    /// The bytes of requests held at once would go over `max_request_bytes_in_flight`.
    #[error("this service holds at most {budget} bytes of requests at once (max_request_bytes_in_flight); try again when it has answered others")]
    RequestsInFlight {
        /// The budget.
        budget: usize,
    },
    /// An HTTP route the API has, with another method.
    #[error("{path} does not take {method}")]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// An HTTP route the API does not have.
    #[error("no such route: {method} {path}")]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// The document is over the size limit.
    #[error("the document has {size} bytes; this service accepts at most {limit}")]
    DocumentTooLarge {
        /// Its size.
        size: usize,
        /// The limit (`max_document_bytes`).
        limit: usize,
    },
    /// A streamed document grew over the size limit.
    #[error("the document is over {limit} bytes, the most this service accepts")]
    StreamTooLarge {
        /// The limit (`max_document_bytes`).
        limit: usize,
    },
    /// The request names a trust profile the service has not loaded.
    #[error("unknown trust profile {name:?}; this service has: {known}")]
    UnknownTrustProfile {
        /// The name asked for.
        name: String,
        /// The profiles the service has.
        known: String,
    },
    /// A policy or profile name the request gives is not one.
    #[error(transparent)]
    UnknownName(#[from] UnknownName),
    /// The document cannot be verified (not a PDF, encrypted).
    #[error("the document cannot be evaluated: {reason}")]
    Unevaluable {
        /// Why, with its causes.
        reason: String,
    },
    /// The document cannot be read as a PDF.
    #[error("the document cannot be read: {reason}")]
    Unreadable {
        /// Why, with its causes.
        reason: String,
    },
    /// The document has no signature of that number.
    #[error("{reason}")]
    NoSuchSignature {
        /// What the document has.
        reason: String,
    },
    /// The signature number is 0.
    #[error("signature numbers start at 1")]
    SignatureZero,
    /// The document has no page of that number.
    #[error("there is no page {page}: the document has {pages}")]
    NoSuchPage {
        /// The page asked for.
        page: u32,
        /// The pages the document has.
        pages: u32,
    },
    /// The page cannot be drawn.
    #[error("the page cannot be drawn: {reason}")]
    Unrenderable {
        /// Why.
        reason: String,
    },
    /// The page token is not one the service gave.
    #[error("the page token is not one kyso gave")]
    BadPageToken,
    /// The record id is not a number.
    #[error("{id:?} is not a record id")]
    BadRecordId {
        /// The id given.
        id: String,
    },
    /// There is no record of that id.
    #[error("no record {id}")]
    NoRecord {
        /// The id asked for.
        id: String,
    },
    /// The log has signed no checkpoint yet.
    #[error("no checkpoint has been signed yet")]
    NoCheckpoint,
    /// No checkpoint was signed of a tree of that size.
    #[error("no checkpoint of a tree of {size} records was signed (ask for 0: the latest)")]
    NoCheckpointOfSize {
        /// The size asked for.
        size: u64,
    },
    /// The record is not in the tree asked for.
    #[error("record {id} is not in the tree of {size} records")]
    NotInTree {
        /// The record's id.
        id: String,
        /// The tree's size.
        size: u64,
    },
    /// The older tree of a consistency proof is empty or not older.
    #[error("old_size {old} must be 1 to {new}, the newer tree's size")]
    BadOldSize {
        /// The older size asked for.
        old: u64,
        /// The newer tree's size.
        new: u64,
    },
    /// A checkpoint the caller sent back does not read.
    #[error(transparent)]
    BadCheckpoint(#[from] CheckpointError),
    /// The call's deadline passed.
    #[error("{}", deadline_text(*callers, *limit_seconds, waiting_for))]
    Deadline {
        /// Whether the caller's `grpc-timeout` was the shorter one.
        callers: bool,
        /// The service's limit (`request_timeout_seconds`).
        limit_seconds: u64,
        /// What the call was waiting for.
        waiting_for: &'static str,
    },
    /// The service is stopping.
    #[error("the service is shutting down")]
    ShuttingDown,
    /// The work died (a panic): a bug, logged.
    #[error("the work failed unexpectedly")]
    WorkerFailed(#[source] tokio::task::JoinError),
    /// The audit log cannot be read.
    #[error("the audit log cannot be read")]
    AuditRead(#[source] AuditError),
    /// The audit log cannot record the answer.
    #[error("the audit log cannot record the answer")]
    AuditWrite(#[source] AuditError),
    /// A status tonic gave (a stream that broke while the document arrived).
    #[error("{}", .0.message())]
    Transport(tonic::Status),
}

fn deadline_text(callers: bool, limit: u64, waiting_for: &str) -> String {
    if callers {
        format!(
            "the caller's deadline (grpc-timeout) passed while {waiting_for}; this service \
             allows up to {limit} s"
        )
    } else {
        format!(
            "this service's limit of {limit} s per request (request_timeout_seconds) passed \
             while {waiting_for}"
        )
    }
}

impl Refusal {
    /// The gRPC status code of the refusal.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Refusal::NoCredentials | Refusal::MalformedAuthorization | Refusal::UnknownToken => {
                Code::Unauthenticated
            }
            Refusal::UnknownClientCertificate { .. } | Refusal::Forbidden { .. } => {
                Code::PermissionDenied
            }
            Refusal::BadTimeout { .. }
            | Refusal::EmptyDocument
            | Refusal::UnsupportedMediaType { .. }
            | Refusal::NotPdf
            | Refusal::BadMultipart { .. }
            | Refusal::BadParameter { .. }
            | Refusal::UnknownTrustProfile { .. }
            | Refusal::UnknownName(_)
            | Refusal::Unevaluable { .. }
            | Refusal::Unreadable { .. }
            | Refusal::SignatureZero
            | Refusal::Unrenderable { .. }
            | Refusal::BadPageToken
            | Refusal::BadRecordId { .. }
            | Refusal::NotInTree { .. }
            | Refusal::BadOldSize { .. }
            | Refusal::BadCheckpoint(_) => Code::InvalidArgument,
            Refusal::DocumentTooLarge { .. }
            | Refusal::StreamTooLarge { .. }
            | Refusal::BodyTooLarge { .. }
            | Refusal::RequestsInFlight { .. } => Code::ResourceExhausted,
            Refusal::MethodNotAllowed { .. } => Code::Unimplemented,
            Refusal::NoSuchSignature { .. }
            | Refusal::NoSuchPage { .. }
            | Refusal::NoRecord { .. }
            | Refusal::NoCheckpoint
            | Refusal::NoCheckpointOfSize { .. }
            | Refusal::NoRoute { .. } => Code::NotFound,
            Refusal::Deadline { .. } => Code::DeadlineExceeded,
            Refusal::ShuttingDown | Refusal::AuditRead(_) | Refusal::AuditWrite(_) => {
                Code::Unavailable
            }
            Refusal::WorkerFailed(_) => Code::Internal,
            Refusal::Transport(s) => s.code(),
        }
    }

    /// The HTTP status of the refusal, for the HTTP API: by its gRPC code, but for a
    /// document over the size limit (413) and a media type the API does not take (415).
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as H;
        use tonic::Code;
        match self {
            Refusal::DocumentTooLarge { .. }
            | Refusal::StreamTooLarge { .. }
            | Refusal::BodyTooLarge { .. } => H::PAYLOAD_TOO_LARGE,
            Refusal::UnsupportedMediaType { .. } => H::UNSUPPORTED_MEDIA_TYPE,
            Refusal::MethodNotAllowed { .. } => H::METHOD_NOT_ALLOWED,
            _ => match self.code() {
                Code::Ok => H::OK,
                Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                    H::BAD_REQUEST
                }
                Code::Unauthenticated => H::UNAUTHORIZED,
                Code::PermissionDenied => H::FORBIDDEN,
                Code::NotFound | Code::Unimplemented => H::NOT_FOUND,
                Code::AlreadyExists | Code::Aborted => H::CONFLICT,
                // Over the budget of bytes in flight, shutting down, the log unreachable:
                // the same request may succeed later.
                Code::ResourceExhausted | Code::Unavailable => H::SERVICE_UNAVAILABLE,
                Code::DeadlineExceeded => H::GATEWAY_TIMEOUT,
                // nginx's "client closed request": nobody reads it.
                Code::Cancelled => H::from_u16(499).unwrap_or(H::BAD_REQUEST),
                Code::Unknown | Code::Internal | Code::DataLoss => H::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// Whether the cause is the service's own trouble: its details are logged, not sent.
    fn internal(&self) -> bool {
        matches!(
            self,
            Refusal::WorkerFailed(_) | Refusal::AuditRead(_) | Refusal::AuditWrite(_)
        )
    }
}

/// The gRPC name of a status code, as the protocol spells it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `error` and each of its causes ([`crate::error_chain`]).
pub(crate) use crate::error_chain as chain;

impl From<Refusal> for tonic::Status {
    fn from(refusal: Refusal) -> tonic::Status {
        if let Refusal::Transport(status) = refusal {
            return status;
        }
        if refusal.internal() {
            tracing::error!(error = %chain(&refusal), "a call failed");
        }
        tonic::Status::new(refusal.code(), refusal.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn status(r: Refusal) -> tonic::Status {
        tonic::Status::from(r)
    }

    #[test]
    fn each_refusal_has_its_code_and_message() {
        let cases: Vec<(Refusal, Code, &str)> = vec![
            (
                Refusal::NoCredentials,
                Code::Unauthenticated,
                "no credentials: send \"authorization: Bearer <token>\"",
            ),
            (
                Refusal::MalformedAuthorization,
                Code::Unauthenticated,
                "the authorization header is not \"Bearer <token>\"",
            ),
            (
                Refusal::UnknownToken,
                Code::Unauthenticated,
                "the bearer token is not known",
            ),
            (
                Refusal::UnknownClientCertificate {
                    subject: "CN=x".into(),
                },
                Code::PermissionDenied,
                "the client certificate CN=x has no roles in [[auth.certificates]]",
            ),
            (
                Refusal::Forbidden {
                    principal: "dms".into(),
                    method: "/kyso.v1.AuditService/GetRecord".into(),
                    role: "auditor",
                },
                Code::PermissionDenied,
                "dms may not call /kyso.v1.AuditService/GetRecord: it needs the auditor role",
            ),
            (
                Refusal::BadTimeout { value: "9x".into() },
                Code::InvalidArgument,
                "the grpc-timeout header \"9x\" is not 1 to 8 digits and a unit (H, M, S, m, u, n)",
            ),
            (
                Refusal::EmptyDocument,
                Code::InvalidArgument,
                "the document is empty",
            ),
            (
                Refusal::DocumentTooLarge { size: 9, limit: 8 },
                Code::ResourceExhausted,
                "the document has 9 bytes; this service accepts at most 8",
            ),
            (
                Refusal::StreamTooLarge { limit: 8 },
                Code::ResourceExhausted,
                "the document is over 8 bytes, the most this service accepts",
            ),
            (
                Refusal::UnknownTrustProfile {
                    name: "bcy".into(),
                    known: "none".into(),
                },
                Code::InvalidArgument,
                "unknown trust profile \"bcy\"; this service has: none",
            ),
            (
                Refusal::from(
                    "decree-31"
                        .parse::<crate::policy::PolicyChoice>()
                        .expect_err("no such policy"),
                ),
                Code::InvalidArgument,
                "unknown policy \"decree-31\": decree-30, none",
            ),
            (
                Refusal::Unevaluable {
                    reason: "not a PDF".into(),
                },
                Code::InvalidArgument,
                "the document cannot be evaluated: not a PDF",
            ),
            (
                Refusal::Unreadable {
                    reason: "not a PDF".into(),
                },
                Code::InvalidArgument,
                "the document cannot be read: not a PDF",
            ),
            (
                Refusal::NoSuchSignature {
                    reason: "there is no signature 3: the file has 2".into(),
                },
                Code::NotFound,
                "there is no signature 3: the file has 2",
            ),
            (
                Refusal::SignatureZero,
                Code::InvalidArgument,
                "signature numbers start at 1",
            ),
            (
                Refusal::NoSuchPage { page: 3, pages: 1 },
                Code::NotFound,
                "there is no page 3: the document has 1",
            ),
            (
                Refusal::Unrenderable {
                    reason: "the renderer failed on page 1".into(),
                },
                Code::InvalidArgument,
                "the page cannot be drawn: the renderer failed on page 1",
            ),
            (
                Refusal::BadPageToken,
                Code::InvalidArgument,
                "the page token is not one kyso gave",
            ),
            (
                Refusal::BadRecordId { id: "x".into() },
                Code::InvalidArgument,
                "\"x\" is not a record id",
            ),
            (
                Refusal::NoRecord { id: "7".into() },
                Code::NotFound,
                "no record 7",
            ),
            (
                Refusal::NoCheckpoint,
                Code::NotFound,
                "no checkpoint has been signed yet",
            ),
            (
                Refusal::from(CheckpointError::RootHash { tree_size: 4 }),
                Code::InvalidArgument,
                "checkpoint of 4 records: root_hash is not 32 bytes",
            ),
            (
                Refusal::NoCheckpointOfSize { size: 9 },
                Code::NotFound,
                "no checkpoint of a tree of 9 records was signed (ask for 0: the latest)",
            ),
            (
                Refusal::NotInTree {
                    id: "12".into(),
                    size: 10,
                },
                Code::InvalidArgument,
                "record 12 is not in the tree of 10 records",
            ),
            (
                Refusal::BadOldSize { old: 0, new: 10 },
                Code::InvalidArgument,
                "old_size 0 must be 1 to 10, the newer tree's size",
            ),
            (
                Refusal::Deadline {
                    callers: true,
                    limit_seconds: 120,
                    waiting_for: "it waited for a free worker",
                },
                Code::DeadlineExceeded,
                "the caller's deadline (grpc-timeout) passed while it waited for a free worker; this service allows up to 120 s",
            ),
            (
                Refusal::Deadline {
                    callers: false,
                    limit_seconds: 120,
                    waiting_for: "kyso was working on it",
                },
                Code::DeadlineExceeded,
                "this service's limit of 120 s per request (request_timeout_seconds) passed while kyso was working on it",
            ),
            (
                Refusal::ShuttingDown,
                Code::Unavailable,
                "the service is shutting down",
            ),
            (
                Refusal::AuditRead(AuditError::Closed),
                Code::Unavailable,
                "the audit log cannot be read",
            ),
            (
                Refusal::AuditWrite(AuditError::NewerSchema { found: 9, known: 2 }),
                Code::Unavailable,
                "the audit log cannot record the answer",
            ),
            (
                Refusal::Transport(tonic::Status::cancelled("gone")),
                Code::Cancelled,
                "gone",
            ),
        ];
        for (refusal, code, message) in cases {
            let s = status(refusal);
            assert_eq!(s.code(), code, "{message}");
            assert_eq!(s.message(), message);
        }
    }

    #[tokio::test]
    async fn a_worker_that_died_is_internal_and_its_panic_is_not_sent() {
        let join = tokio::spawn(async { panic!("secret detail") })
            .await
            .expect_err("the task panicked");
        let s = status(Refusal::WorkerFailed(join));
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "the work failed unexpectedly");
    }

    #[test]
    fn the_store_details_stay_in_the_log() {
        let e = AuditError::Store(rusqlite::Error::InvalidPath("/srv/secret/audit".into()));
        let s = status(Refusal::AuditRead(e));
        assert!(!s.message().contains("/srv/secret"), "{}", s.message());
    }
}
