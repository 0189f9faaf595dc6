//! The journal's metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// What the journal counts and measures.
#[derive(Clone)]
pub struct JournalMetrics {
    pub(super) bytes: IntGauge,
    pub(super) capacity: IntGauge,
    pub(super) segments: IntGauge,
    pub(super) appended: IntCounter,
    pub(super) syncs: IntCounter,
    pub(super) sync_seconds: Histogram,
    pub(super) refused: IntCounter,
    pub(super) errors: IntCounter,
    pub(super) replayed: IntCounter,
    pub(super) corrupt: IntCounter,
}

impl JournalMetrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| common::metrics::counter(registry, name, help);
        let gauge = |name: &str, help: &str| common::metrics::gauge(registry, name, help);
        let sync_seconds = common::metrics::register(
            registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "figachechnaya_figalize_journal_sync_seconds",
                    "Time of one group commit: the write and the fdatasync",
                )
                .buckets(vec![
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 1.0,
                ]),
            )
            .expect("valid histogram options"),
        );
        Self {
            bytes: gauge(
                "figachechnaya_figalize_journal_bytes",
                "Bytes the journal keeps on disk and waiting for the next sync",
            ),
            capacity: gauge(
                "figachechnaya_figalize_journal_capacity_bytes",
                "The most bytes the journal keeps (JOURNAL_MAX_BYTES)",
            ),
            segments: gauge(
                "figachechnaya_figalize_journal_segments",
                "Segment files the journal keeps",
            ),
            appended: counter(
                "figachechnaya_figalize_journal_appended_total",
                "Figalizations written to the journal",
            ),
            syncs: counter(
                "figachechnaya_figalize_journal_syncs_total",
                "Group commits: one write and one fdatasync each",
            ),
            sync_seconds,
            refused: counter(
                "figachechnaya_figalize_journal_refused_total",
                "Figalizations answered 503 because the journal was full (JOURNAL_MAX_BYTES)",
            ),
            errors: counter(
                "figachechnaya_figalize_journal_errors_total",
                "Journal writes or syncs that failed; their figalizations were answered 503",
            ),
            replayed: counter(
                "figachechnaya_figalize_journal_replayed_total",
                "Records replayed from the journal at start",
            ),
            corrupt: counter(
                "figachechnaya_figalize_journal_corrupt_total",
                "Damaged journal tails or segments skipped at start",
            ),
        }
    }
}
