//! The service's integration tests, one binary (`cargo test --test api`): the router in memory
//! against a `wiremock` GitHub Service (`helpers`), and the real binary locally and in Lambda
//! mode.

mod helpers;

mod auth_and_info;
mod binary;
mod history;
mod lambda;
mod listener;
mod logs;
mod openapi;
mod operations;
mod store;
mod token;
mod upstream_boundaries;
mod upstream_outcomes;
mod validation;
mod workflow;
