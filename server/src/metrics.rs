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

/// Declares [`Metrics`]: each metric's field, type, initial value, exported name (after the
/// `monti_` prefix) and help text, in one place, so that none is declared without being
/// registered.
macro_rules! metrics {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty = $init:expr, $name:literal, $help:literal;
    )*) => {
        /// Every metric the server exports.
        pub struct Metrics {
            registry: Registry,
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Metrics {
            /// Creates and registers every metric.
            pub fn new() -> Metrics {
                let mut registry = Registry::with_prefix("monti");
                $(
                    let $field: $ty = $init;
                    registry.register($name, $help, $field.clone());
                )*
                Metrics { registry, $($field),* }
            }
        }
    };
}

metrics! {
    /// WebSocket viewers connected right now.
    connected_clients: Gauge = Gauge::default(),
        "connected_clients", "WebSocket viewers connected";
    /// Agent state changes accepted (before coalescing).
    state_changes: Counter = Counter::default(),
        "agent_state_changes", "Agent state changes accepted";
    /// Ticks that carried changes (sequence numbers issued).
    ticks: Counter = Counter::default(),
        "ticks", "Ticks that carried changes";
    /// Bytes of stream frames sent (WebSocket payloads).
    bytes_sent: Counter = Counter::default(),
        "stream_bytes_sent", "Bytes of stream frames sent";
    /// Stream frames sent.
    frames_sent: Counter = Counter::default(),
        "stream_frames_sent", "Stream frames sent";
    /// Fresh snapshots sent to viewers that fell behind.
    resyncs: Counter = Counter::default(),
        "resyncs", "Snapshots resent to viewers that fell behind";
    /// Viewers disconnected because they could not keep up.
    slow_clients_dropped: Counter = Counter::default(),
        "slow_clients_dropped", "Viewers disconnected for not keeping up";
    /// Viewer connections the server closed with an error code (bad frames, version mismatch,
    /// too slow, shutdown...), by that code.
    refused: Family<CodeLabel, Counter> = Family::default(),
        "refused", "Viewers closed and frames refused by the server, by error code";
    /// Seconds from the oldest change in a delta reaching the server to the delta being written
    /// to a viewer's socket.
    change_to_send_seconds: Histogram = Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        "change_to_send_seconds", "Seconds from a change reaching the server to its delta being sent";
    /// Ingested events by source and outcome (applied, older, duplicate, refused).
    events: Family<EventLabels, Counter> = Family::default(),
        "ingest_events", "Ingested agent events by source and outcome";
    /// Ingested contact events by source and outcome (applied, duplicate, refused).
    contact_events: Family<EventLabels, Counter> = Family::default(),
        "ingest_contact_events", "Ingested contact events by source and outcome";
    /// Seconds from an ingest batch reaching the writer to its commit.
    ingest_commit_seconds: Histogram = Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        "ingest_commit_seconds", "Seconds from an ingest batch reaching the writer to its commit";
    /// Ingest batches that could not be stored (and were not acknowledged).
    ingest_failures: Counter = Counter::default(),
        "ingest_failures", "Ingest batches that could not be stored and were not acknowledged";
    /// Agents shown as stale: their source stopped reporting on them.
    agents_stale: Gauge = Gauge::default(),
        "agents_stale", "Agents whose source stopped reporting on them";
    /// Committed changes waiting for the next tick (0 once the floor shows everything stored).
    floor_pending: Gauge = Gauge::default(),
        "floor_pending_changes", "Committed changes waiting for the next tick";
    /// 1 while the floor may be out of date (the link to other servers is down).
    degraded: Gauge = Gauge::default(),
        "degraded", "1 while the floor may be out of date";
    /// 1 while the link to Redis is up (0 without Redis configured).
    redis_up: Gauge = Gauge::default(),
        "redis_up", "1 while the link to Redis is up";
    /// Changes published to other servers, and received from them.
    shared_published: Counter = Counter::default(),
        "shared_changes_published", "Changes published to the other servers";
    /// See [`Metrics::shared_published`].
    shared_received: Counter = Counter::default(),
        "shared_changes_received", "Changes received from the other servers";
    /// Shared entries this server could not read (another version, or damaged); each makes it
    /// reload its floor.
    shared_unreadable: Counter = Counter::default(),
        "shared_entries_unreadable", "Shared entries this server could not read (each makes it reload)";
    /// Times this server reloaded its floor from the database to catch up.
    floor_reloads: Counter = Counter::default(),
        "floor_reloads", "Floor reloads from the database to catch up";
    /// Times the writer looked for agents whose watched source went silent.
    stale_sweeps: Counter = Counter::default(),
        "stale_sweeps", "Sweeps for agents whose watched source went silent";
    /// Audit events dropped because the queue or the database could not keep up.
    audit_dropped: Counter = Counter::default(),
        "audit_events_dropped", "Audit events dropped because the database could not keep up";
    /// Requests refused for their token (missing, expired, bad signature, no role...), by reason.
    auth_failures: Family<CodeLabel, Counter> = Family::default(),
        "auth_failures", "Requests refused for their token, by reason";
    /// Connections closed as soon as they were accepted, by why (`too_many_from_address`).
    connections_refused: Family<CodeLabel, Counter> = Family::default(),
        "connections_refused", "Connections closed as soon as they were accepted, by why";
    /// TLS certificate loads after the first: `code` is `loaded` or `failed` (kept the old one).
    tls_reloads: Family<CodeLabel, Counter> = Family::default(),
        "tls_reloads", "TLS certificate reloads, loaded or failed (the old one kept)";
    /// When the served TLS certificate expires, seconds since the Unix epoch (0 without TLS).
    tls_cert_expiry: Gauge = Gauge::default(),
        "tls_certificate_expiry_seconds", "When the served TLS certificate expires, Unix seconds";
    /// Agents on the floor.
    floor_agents: Gauge = Gauge::default(),
        "floor_agents", "Agents on the floor";
    /// Viewers following summaries: while there are none, ticks leave the summaries out.
    summary_viewers: Gauge = Gauge::default(),
        "summary_viewers", "Viewers following summaries (ticks compute summaries only for them)";
    /// Resident memory of the server process (read at scrape time).
    resident_memory_bytes: Gauge = Gauge::default(),
        "process_resident_memory_bytes", "Resident memory of the server process";
    /// CPU seconds used by the server process (read at scrape time).
    cpu_seconds: Gauge<f64, AtomicU64> = Gauge::default(),
        "process_cpu_seconds", "CPU seconds used by the server process";
    /// Deltas written to viewers: the total of the change-to-send objective (the histogram's
    /// count, as a counter that systems without histograms read too).
    change_sends: Counter = Counter::default(),
        "change_sends", "Deltas written to viewers";
    /// Deltas written more than [`SEND_OBJECTIVE_SECONDS`] after their oldest change.
    change_sends_late: Counter = Counter::default(),
        "change_sends_late", "Deltas written to viewers more than 1 s after their oldest change";
    /// Database connections open in the pool (read at scrape time).
    db_connections: Gauge = Gauge::default(),
        "db_connections", "Database connections open";
    /// Of those, the idle ones.
    db_connections_idle: Gauge = Gauge::default(),
        "db_connections_idle", "Database connections open and idle";
    /// The most the pool opens (`[database] max_connections`).
    db_connections_max: Gauge = Gauge::default(),
        "db_connections_max", "Database connections the pool may open";
}

/// The change-to-send objective: a change is on a viewer's socket within this many seconds
/// (docs/OPERATIONS.md: 99.9 % of them).
pub const SEND_OBJECTIVE_SECONDS: f64 = 1.0;

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Records a delta written to a viewer `seconds` after its oldest change.
    pub fn change_sent(&self, seconds: f64) {
        self.change_to_send_seconds.observe(seconds);
        self.change_sends.inc();
        if seconds > SEND_OBJECTIVE_SECONDS {
            self.change_sends_late.inc();
        }
    }

    /// Records the database pool's connections: open, idle, and the most it opens.
    pub fn set_db_connections(&self, open: u32, idle: usize, max: u32) {
        self.db_connections.set(i64::from(open));
        self.db_connections_idle.set(idle as i64);
        self.db_connections_max.set(i64::from(max));
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
        metrics.change_sent(0.2);
        metrics.change_sent(1.5);
        metrics.set_db_connections(3, 1, 10);
        let text = metrics.render();
        assert!(text.contains("monti_agent_state_changes_total 3"), "{text}");
        for line in [
            "monti_change_sends_total 2",
            "monti_change_sends_late_total 1",
            "monti_change_to_send_seconds_count 2",
            "monti_db_connections 3",
            "monti_db_connections_idle 1",
            "monti_db_connections_max 10",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
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
