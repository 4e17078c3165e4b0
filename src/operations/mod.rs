//! What an operation *means*: scope routing, interpretation of the upstream's answers, diagnosis
//! of its ambiguous ones, and the result envelope. Knows nothing of HTTP servers.
//!
//! The GitHub Service reports a bad PAT, a missing scope or a rate limit as 404 on get/delete and as
//! 500 on create. Where it does, one extra `list` in the same scope tells which it was; an answer of
//! "does not exist" is only ever given once the PAT is known to work.

mod input;
mod invalid;
mod metadata;
mod outcome;
mod secrets;
mod strict;
mod token;

pub use input::{
    CreateRequest, ListRequest, MAX_PRESENCE_NAMES, PresenceRequest, Request, SecretRequest,
    check_presence, parse_json, parse_operation, parse_value, target_of, write_options,
};
pub use invalid::InvalidInput;
pub use metadata::{Page, SecretMeta, UPSTREAM_PAGE};
pub use mgraph_deploy_api::OrgAccess;
pub use outcome::{
    Envelope, ErrorType, Failure, MAX_RETRY_AFTER_SECONDS, OperationKind, Outcome, RateLimit,
    failure_envelope,
};
pub use secrets::{AbsentSecret, Listing, Operations, environment_missing};
pub use token::TokenCheck;
