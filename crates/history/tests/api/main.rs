//! The history service against real PostgreSQL (and the SQLite default), over HTTP.

mod abuse;
mod binary;
mod contract;
mod helpers;
mod http;
mod outage;
mod stream;
