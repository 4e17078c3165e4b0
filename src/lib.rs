//! MGraph-AI Deploy Service: writes GitHub Actions secrets without ever being able to read them.
//!
//! Clients seal a GitHub PAT and every secret value to the GitHub Service's public key
//! (libsodium sealed box). This service validates each request, routes it to the right upstream
//! route, diagnoses the upstream's ambiguous answers and reports precisely, while passing the
//! sealed blobs through unchanged. It holds no private key and has no decryption code.
//!
//! Layout: [`config`] reads the environment (and nothing else does); [`domain`] holds validated
//! names and the redacting [`domain::SealedBlob`]; [`github_service`] is the upstream client;
//! [`operations`] decides what each operation means; [`router`] builds the one HTTP router that
//! [`runtime`] serves locally or inside AWS Lambda.

pub mod audit;
pub mod auth;
pub mod config;
pub mod converge;
pub mod domain;
pub mod github_service;
pub mod history;
pub mod openapi;
pub mod operations;
pub mod request_context;
pub mod router;
pub mod routes;
pub mod runtime;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod workflow;

pub use config::Config;
pub use router::build_router;
pub use state::AppState;
