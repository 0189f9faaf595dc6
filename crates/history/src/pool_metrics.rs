//! The database pool's use, read when Prometheus scrapes (no task keeps gauges up to date).

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, IntGaugeVec, Opts};

use crate::store::HistoryStore;

/// `figachechnaya_history_db_pool_connections{state="idle"|"in_use"}` and
/// `figachechnaya_history_db_pool_max_connections`, from the store's pool at each scrape.
pub struct PoolMetrics {
    store: Arc<dyn HistoryStore>,
    connections: IntGaugeVec,
    max: IntGauge,
}

impl PoolMetrics {
    /// Registers the pool's metrics for `store`.
    pub fn register(registry: &prometheus::Registry, store: Arc<dyn HistoryStore>) {
        let metrics = Self {
            store,
            connections: IntGaugeVec::new(
                Opts::new(
                    "figachechnaya_history_db_pool_connections",
                    "Open database connections, by state (in_use, idle)",
                ),
                &["state"],
            )
            .expect("valid metric"),
            max: IntGauge::new(
                "figachechnaya_history_db_pool_max_connections",
                "The most connections the pool opens",
            )
            .expect("valid metric"),
        };
        registry
            .register(Box::new(metrics))
            .expect("metric names are unique within a process");
    }
}

impl Collector for PoolMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.connections
            .desc()
            .into_iter()
            .chain(self.max.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let usage = self.store.pool_usage();
        let busy = usage.open.saturating_sub(usage.idle);
        self.connections
            .with_label_values(&["in_use"])
            .set(i64::from(busy));
        self.connections
            .with_label_values(&["idle"])
            .set(i64::from(usage.idle));
        self.max.set(i64::from(usage.max));
        let mut families = self.connections.collect();
        families.extend(self.max.collect());
        families
    }
}
