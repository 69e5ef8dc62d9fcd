//! Prometheus metrics: what operations watch, and what `monti-cli load` reads back.
//!
//! One [`Metrics`] value, shared through `AppState`; its handles are cheap atomics, so the hot
//! path only increments counters. Exposed in the text format at `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of a refused or failed frame: which error code it earned.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The `ErrorCode`, in snake case.
    pub code: String,
}

/// Labels of an ingested event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `api`, `amazon_connect` or `simulator`.
    pub source: &'static str,
    /// `applied`, `older`, `duplicate` or `refused`.
    pub outcome: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// WebSocket viewers connected right now.
    pub connected_clients: Gauge,
    /// Agent state changes accepted (before coalescing).
    pub state_changes: Counter,
    /// Ticks that carried changes (sequence numbers issued).
    pub ticks: Counter,
    /// Bytes of stream frames sent (WebSocket payloads).
    pub bytes_sent: Counter,
    /// Stream frames sent.
    pub frames_sent: Counter,
    /// Fresh snapshots sent to viewers that fell behind.
    pub resyncs: Counter,
    /// Viewers disconnected because they could not keep up.
    pub slow_clients_dropped: Counter,
    /// Viewer connections the server closed with an error code (bad frames, version mismatch,
    /// too slow, shutdown...), by that code.
    pub refused: Family<CodeLabel, Counter>,
    /// Seconds from the oldest change in a delta reaching the server to the delta being written
    /// to a viewer's socket.
    pub change_to_send_seconds: Histogram,
    /// Ingested events by source and outcome (applied, older, duplicate, refused).
    pub events: Family<EventLabels, Counter>,
    /// Seconds from an ingest batch reaching the writer to its commit.
    pub ingest_commit_seconds: Histogram,
    /// Ingest batches that could not be stored (and were not acknowledged).
    pub ingest_failures: Counter,
    /// Agents shown as stale: their source stopped reporting on them.
    pub agents_stale: Gauge,
    /// Committed changes waiting for the next tick (0 once the floor shows everything stored).
    pub floor_pending: Gauge,
    /// 1 while the floor may be out of date (the link to other servers is down).
    pub degraded: Gauge,
    /// 1 while the link to Redis is up (0 without Redis configured).
    pub redis_up: Gauge,
    /// Changes published to other servers, and received from them.
    pub shared_published: Counter,
    /// See [`Metrics::shared_published`].
    pub shared_received: Counter,
    /// Shared entries this server could not read (another version, or damaged); each makes it
    /// reload its floor.
    pub shared_unreadable: Counter,
    /// Times this server reloaded its floor from the database to catch up.
    pub floor_reloads: Counter,
    /// Times the writer looked for agents whose watched source went silent.
    pub stale_sweeps: Counter,
    /// Audit events dropped because the queue or the database could not keep up.
    pub audit_dropped: Counter,
    /// Requests refused for their token (missing, expired, bad signature, no role...), by reason.
    pub auth_failures: Family<CodeLabel, Counter>,
    /// Connections closed as soon as they were accepted, by why (`too_many_from_address`).
    pub connections_refused: Family<CodeLabel, Counter>,
    /// TLS certificate loads after the first: `code` is `loaded` or `failed` (kept the old one).
    pub tls_reloads: Family<CodeLabel, Counter>,
    /// When the served TLS certificate expires, seconds since the Unix epoch (0 without TLS).
    pub tls_cert_expiry: Gauge,
    /// Agents on the floor.
    pub floor_agents: Gauge,
    /// Resident memory of the server process (read at scrape time).
    pub resident_memory_bytes: Gauge,
    /// CPU seconds used by the server process (read at scrape time).
    pub cpu_seconds: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("monti");
        let metrics = Metrics {
            connected_clients: Gauge::default(),
            state_changes: Counter::default(),
            ticks: Counter::default(),
            bytes_sent: Counter::default(),
            frames_sent: Counter::default(),
            resyncs: Counter::default(),
            slow_clients_dropped: Counter::default(),
            refused: Family::default(),
            change_to_send_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            events: Family::default(),
            ingest_commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            ingest_failures: Counter::default(),
            agents_stale: Gauge::default(),
            floor_pending: Gauge::default(),
            degraded: Gauge::default(),
            redis_up: Gauge::default(),
            shared_published: Counter::default(),
            shared_received: Counter::default(),
            shared_unreadable: Counter::default(),
            floor_reloads: Counter::default(),
            stale_sweeps: Counter::default(),
            auth_failures: Family::default(),
            audit_dropped: Counter::default(),
            connections_refused: Family::default(),
            tls_reloads: Family::default(),
            tls_cert_expiry: Gauge::default(),
            floor_agents: Gauge::default(),
            resident_memory_bytes: Gauge::default(),
            cpu_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            "connected_clients",
            "WebSocket viewers connected",
            m.connected_clients.clone(),
        );
        registry.register(
            "agent_state_changes",
            "Agent state changes accepted",
            m.state_changes.clone(),
        );
        registry.register("ticks", "Ticks that carried changes", m.ticks.clone());
        registry.register(
            "stream_bytes_sent",
            "Bytes of stream frames sent",
            m.bytes_sent.clone(),
        );
        registry.register(
            "stream_frames_sent",
            "Stream frames sent",
            m.frames_sent.clone(),
        );
        registry.register(
            "resyncs",
            "Snapshots resent to viewers that fell behind",
            m.resyncs.clone(),
        );
        registry.register(
            "slow_clients_dropped",
            "Viewers disconnected for not keeping up",
            m.slow_clients_dropped.clone(),
        );
        registry.register(
            "refused",
            "Viewers closed and frames refused by the server, by error code",
            m.refused.clone(),
        );
        registry.register(
            "change_to_send_seconds",
            "Seconds from a change reaching the server to its delta being sent",
            m.change_to_send_seconds.clone(),
        );
        registry.register(
            "ingest_events",
            "Ingested agent events by source and outcome",
            m.events.clone(),
        );
        registry.register(
            "ingest_commit_seconds",
            "Seconds from an ingest batch reaching the writer to its commit",
            m.ingest_commit_seconds.clone(),
        );
        registry.register(
            "ingest_failures",
            "Ingest batches that could not be stored and were not acknowledged",
            m.ingest_failures.clone(),
        );
        registry.register(
            "agents_stale",
            "Agents whose source stopped reporting on them",
            m.agents_stale.clone(),
        );
        registry.register(
            "floor_pending_changes",
            "Committed changes waiting for the next tick",
            m.floor_pending.clone(),
        );
        registry.register(
            "degraded",
            "1 while the floor may be out of date",
            m.degraded.clone(),
        );
        registry.register(
            "redis_up",
            "1 while the link to Redis is up",
            m.redis_up.clone(),
        );
        registry.register(
            "shared_changes_published",
            "Changes published to the other servers",
            m.shared_published.clone(),
        );
        registry.register(
            "shared_changes_received",
            "Changes received from the other servers",
            m.shared_received.clone(),
        );
        registry.register(
            "shared_entries_unreadable",
            "Shared entries this server could not read (each makes it reload)",
            m.shared_unreadable.clone(),
        );
        registry.register(
            "floor_reloads",
            "Floor reloads from the database to catch up",
            m.floor_reloads.clone(),
        );
        registry.register(
            "stale_sweeps",
            "Sweeps for agents whose watched source went silent",
            m.stale_sweeps.clone(),
        );
        registry.register(
            "audit_events_dropped",
            "Audit events dropped because the database could not keep up",
            m.audit_dropped.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for their token, by reason",
            m.auth_failures.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed as soon as they were accepted, by why",
            m.connections_refused.clone(),
        );
        registry.register(
            "tls_reloads",
            "TLS certificate reloads, loaded or failed (the old one kept)",
            m.tls_reloads.clone(),
        );
        registry.register(
            "tls_certificate_expiry_seconds",
            "When the served TLS certificate expires, Unix seconds",
            m.tls_cert_expiry.clone(),
        );
        registry.register(
            "floor_agents",
            "Agents on the floor",
            m.floor_agents.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            m.resident_memory_bytes.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "CPU seconds used by the server process",
            m.cpu_seconds.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts a refusal with its error code.
    pub fn refuse(&self, code: monti_protocol::message::ErrorCode) {
        self.refused
            .get_or_create(&CodeLabel {
                code: format!("{code:?}"),
            })
            .inc();
    }

    /// Counts a connection closed as soon as it was accepted.
    pub fn refuse_connection(&self, why: &str) {
        self.connections_refused
            .get_or_create(&CodeLabel {
                code: why.to_owned(),
            })
            .inc();
    }

    /// Counts a TLS certificate reload: `loaded` or `failed`.
    pub fn tls_reload(&self, outcome: &str) {
        self.tls_reloads
            .get_or_create(&CodeLabel {
                code: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a refused token with its reason (never the token).
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&CodeLabel {
                code: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with process figures read just now.
    pub fn render(&self) -> String {
        if let Some((rss, cpu)) = process_usage() {
            self.resident_memory_bytes.set(rss as i64);
            self.cpu_seconds.set(cpu);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Resident bytes and CPU seconds of this process, from `/proc` (Linux only; `None` elsewhere).
fn process_usage() -> Option<(u64, f64)> {
    // Linux reports both in fixed units on every architecture MONTI targets: pages of 4 KiB and
    // clock ticks of 1/100 s (USER_HZ).
    const PAGE_BYTES: u64 = 4096;
    const TICKS_PER_SECOND: f64 = 100.0;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let rss_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((rss_pages * PAGE_BYTES, (utime + stime) / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_and_reads_the_process() {
        let metrics = Metrics::new();
        metrics.state_changes.inc_by(3);
        metrics.refuse(monti_protocol::message::ErrorCode::BadFrame);
        let text = metrics.render();
        assert!(text.contains("monti_agent_state_changes_total 3"), "{text}");
        assert!(
            text.contains("monti_refused_total{code=\"BadFrame\"} 1"),
            "{text}"
        );
        let rss_line = text
            .lines()
            .find(|line| line.starts_with("monti_process_resident_memory_bytes "))
            .expect("rss line");
        let rss: u64 = rss_line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("number");
        assert!(rss > 1_000_000, "{rss_line}");
    }
}
