//! Client side of the MGraph-AI Deploy Service.
//!
//! - [`seal`]: libsodium sealed boxes (`crypto_box_seal`, as PyNaCl's `SealedBox`) to the GitHub
//!   Service's public key, so the Deploy Service only ever relays opaque blobs.
//! - [`api`]: a typed client of every route of the service.
//! - [`fingerprint`]: keyed fingerprints of values, so the service can skip unchanged ones
//!   without learning them.
//! - [`dotenv`]: the `.env` grammar: values exactly as written, or a refusal with line and column.
//! - [`preflight`]: the secrets a repository's workflow files reference, and where.
//! - [`values`]: `.env` / JSON files of secret values for `apply` and `secret set -f`.
//! - [`cli`]: the `mgraph-deploy-cli` command line.

pub mod api;
pub mod cli;
pub mod dotenv;
pub mod fingerprint;
pub mod preflight;
pub mod seal;
pub mod values;

pub use api::{Answer, ApiKey, ClientError, DeployClient, Execution, Target, WriteOptions};
pub use mgraph_deploy_api::{Envelope, ErrorType, Plan, Report};
pub use seal::{Plaintext, PublicKey, Sealed};
