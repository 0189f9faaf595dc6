//! What every Figachechnaya service shares.
//!
//! A service crate contributes its routes and its OpenAPI document as a [`app::ServiceRoutes`];
//! [`app::build`] wraps any number of them with the same middleware, health, metrics and docs, so
//! a service on its own and the whole site in one process run the same code.

pub mod app;
pub mod append_batch;
pub mod body_deadline;
pub mod body_limit;
pub mod cli;
pub mod config;
pub mod connections;
pub mod error;
pub mod health;
pub mod image_job;
pub mod json;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod origin;
mod per_client;
pub mod phrase;
pub mod probe;
pub mod query;
pub mod request_id;
pub mod secret;
pub mod server;
pub mod streams;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, ErrorBody};
pub use json::Json;
pub use query::Query;
