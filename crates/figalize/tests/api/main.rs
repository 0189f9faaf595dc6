//! The figalize service over HTTP, started on a free port as in production.

mod bad_input;
mod binary;
mod crash;
mod delivery;
mod golden;
mod helpers;
mod service;
