//! imagizer against the real backing services: a Kafka-protocol broker and an S3 server
//! (started by `ci/test.sh`), and on its embedded defaults.

mod bad_input;
mod broker_outage;
mod crash;
mod dead_letters;
mod end_to_end;
mod helpers;
mod replay;
mod store_outage;
