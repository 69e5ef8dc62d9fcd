//! The load generator behind `monti-cli load`: many real viewers, measured.
//!
//! Each viewer is a real WebSocket connection that subscribes, folds nothing, and counts the
//! bytes and frames it receives (WebSocket payloads, before framing). Decoding every change on a
//! thousand connections would cost the load generator more than the server spends sending them,
//! so only a sample of viewers (`sample`) decodes its frames and measures latency: for every
//! agent change, from the moment the state began on the server (for simulated and live events,
//! when the server learned of it) to receipt; for group summaries, from the tick that carried
//! them to receipt. Latency is corrected by the clock offset seen at the handshake when that is
//! over a second. The others read each frame's kind from its first byte and decode only
//! snapshots (rare: they tell a resync). The server's CPU, memory and own change-to-send
//! histogram come from its `/metrics` at both ends of the window; the load generator's CPU from
//! its own process. The decoding viewers also weigh their deltas as JSON, and [`poll`] reads the
//! whole floor over REST on a timer: the two ways dashboards usually get their data, for
//! comparison.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use monti_protocol::codec::{ServerMsgKind, decode_server, encode_server, server_msg_kind};
use monti_protocol::message::{Delta, ServerMsg, Subscription};
use serde::Serialize;

use crate::connection::{ClientError, Connection, now_ms};
use crate::transport::Transport;

/// What to measure.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `http://host:port`
    pub server: String,
    /// Number of viewers.
    pub clients: usize,
    /// How long to measure after the viewers are live.
    pub duration: Duration,
    /// What each viewer subscribes to.
    pub subscription: Subscription,
    /// Bearer token every viewer presents (servers with sign-in).
    pub token: Option<String>,
    /// TLS and proxy settings every viewer and the metrics scrape use.
    pub transport: Transport,
    /// How many viewers decode every frame and measure latency (the rest only count).
    pub sample: usize,
    /// Whether the decoding viewers also weigh what they receive as JSON (costs them CPU, so
    /// their latency reads a little higher).
    pub weigh_json: bool,
}

/// The measured figures; printed as a table or as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// Viewers asked for.
    pub clients: usize,
    /// Viewers that received a full snapshot.
    pub clients_live: usize,
    /// Viewers that failed or were disconnected, with the first reasons.
    pub failures: Vec<String>,
    /// Measurement window, seconds.
    pub duration_s: f64,
    /// Agent changes received by the viewers that decode (see [`LoadReport::sampled`]).
    pub changes_received: u64,
    /// Agent changes per second one decoding viewer received (the floor's visible change rate).
    pub changes_per_second: f64,
    /// Viewers that decoded every frame (the latency and change figures are theirs).
    pub sampled: usize,
    /// Change-to-receipt latency of agent changes, milliseconds (sampled viewers).
    pub latency_ms: Percentiles,
    /// Tick-to-receipt latency of group summaries, milliseconds (sampled viewers; summary
    /// subscriptions only).
    pub summary_latency_ms: Percentiles,
    /// Time from opening the connection to the server's hello (TCP, any proxy tunnel, TLS
    /// handshake, WebSocket upgrade), milliseconds.
    pub connect_ms: Percentiles,
    /// Stream bytes per viewer per second after the snapshot (deltas and keepalives).
    pub bytes_per_client_per_second: f64,
    /// Delta frame bytes (less their queue figures) divided by the agent changes they carried,
    /// frame overhead included.
    pub bytes_per_agent_change: f64,
    /// Queue figures per second one decoding viewer received (subscriptions with queues).
    pub queue_changes_per_second: f64,
    /// Bytes of the queue figures in the deltas divided by their number.
    pub bytes_per_queue_change: f64,
    /// Bytes of the first viewer's snapshot, and its chunk count.
    pub snapshot_bytes: u64,
    /// Chunks of that snapshot.
    pub snapshot_chunks: u32,
    /// Bytes of a snapshot without names, as a viewer that knows the roster gets on a resync.
    pub live_snapshot_bytes: u64,
    /// Snapshots received after the first (resyncs) by all viewers.
    pub resyncs: u64,
    /// The decoding viewers' deltas and keepalives re-encoded as JSON (MONTI's own messages,
    /// ids not names, uncompressed), per viewer per second: what the same stream would weigh
    /// sent as JSON over a WebSocket.
    pub json_bytes_per_client_per_second: f64,
    /// How many times the bytes MONTI sent for those same messages the JSON would be.
    pub json_ratio: f64,
    /// The server's figures from `/metrics`.
    pub server: ServerUsage,
    /// CPU the load generator used during the window, percent of one core (all its threads).
    pub load_cpu_percent: Option<f64>,
}

/// Latency percentiles.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Number of samples.
    pub samples: usize,
}

/// The server's CPU and memory over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerUsage {
    /// CPU used during the window as a percentage of one core.
    pub cpu_percent: Option<f64>,
    /// Resident memory at the start, bytes.
    pub rss_start_bytes: Option<u64>,
    /// Resident memory at the end, bytes.
    pub rss_end_bytes: Option<u64>,
    /// The server's own `monti_change_to_send_seconds` over the window: from a change reaching
    /// it to the delta being written to a viewer's socket, every viewer counted.
    pub change_to_send: Option<ServerHistogram>,
}

/// A histogram from `/metrics`, as the difference between two scrapes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerHistogram {
    /// Observations in the window.
    pub samples: u64,
    /// The bucket bound under which half of them fell, milliseconds.
    pub p50_at_most_ms: f64,
    /// The bucket bound under which 99 % fell, milliseconds (infinite past the last bucket).
    pub p99_at_most_ms: f64,
    /// The share above 256 ms.
    pub over_256_ms: f64,
    /// The share above 2 s.
    pub over_2_s: f64,
}

#[derive(Default)]
struct ViewerStats {
    live: bool,
    decoded: bool,
    failure: Option<String>,
    connect_ms: Option<u32>,
    latencies_ms: Vec<u32>,
    summary_latencies_ms: Vec<u32>,
    changes: u64,
    queue_changes: u64,
    queue_bytes: u64,
    bytes_after_snapshot: u64,
    delta_bytes: u64,
    snapshot_bytes: u64,
    snapshot_chunks: u32,
    live_snapshot_bytes: u64,
    resyncs: u64,
    /// Decoding viewers: what their deltas and keepalives would weigh as JSON, and weigh as sent.
    json_bytes: u64,
    sent_bytes: u64,
}

/// Runs the load and returns the report.
pub async fn run(options: LoadOptions) -> anyhow::Result<LoadReport> {
    let http = options.transport.http().clone();
    let metrics_url = format!("{}/metrics", options.server.trim_end_matches('/'));
    // Viewers connect in waves of 50 so a thousand do not all knock at once. The window opens
    // two seconds after every viewer has its first snapshot (or has failed), so that the storm
    // of first snapshots is not measured as the latency of deltas; at most a minute is waited.
    let window = Arc::new(Window::default());
    let mut tasks = Vec::with_capacity(options.clients);
    let sample = options.sample.clamp(1, options.clients.max(1));
    for idx in 0..options.clients {
        let server = options.server.clone();
        let sub = options.subscription.clone();
        let token = options.token.clone();
        let transport = options.transport.clone();
        let window = window.clone();
        let duration = options.duration;
        tasks.push(tokio::spawn(async move {
            let mut stats = ViewerStats::default();
            let viewer = Viewer {
                transport: &transport,
                server: &server,
                token: token.as_deref(),
                sub: &sub,
                probe_resync: idx == 0,
                decode: idx < sample,
                weigh_json: options.weigh_json,
            };
            if let Err(err) = measure(viewer, &window, duration, &mut stats).await {
                stats.failure = Some(format!("viewer {idx}: {err}"));
            }
            if !stats.live {
                // Counted as settled: the window does not wait for a viewer that failed.
                window.settled.fetch_add(1, Ordering::Relaxed);
                window.changed.notify_one();
            }
            stats
        }));
        if idx % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while window.settled.load(Ordering::Relaxed) < options.clients {
        if tokio::time::timeout_at(give_up, window.changed.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let window_start = tokio::time::Instant::now() + Duration::from_secs(2);
    let deadline = window_start + options.duration;
    let _ = window.start.set(window_start);
    let Measured {
        window,
        server,
        load_cpu_percent,
    } = measure_window(&http, &metrics_url, window_start, deadline).await;

    let mut report = LoadReport {
        clients: options.clients,
        clients_live: 0,
        failures: Vec::new(),
        duration_s: window.as_secs_f64(),
        changes_received: 0,
        changes_per_second: 0.0,
        sampled: sample,
        latency_ms: Percentiles::default(),
        summary_latency_ms: Percentiles::default(),
        connect_ms: Percentiles::default(),
        bytes_per_client_per_second: 0.0,
        bytes_per_agent_change: 0.0,
        queue_changes_per_second: 0.0,
        bytes_per_queue_change: 0.0,
        snapshot_bytes: 0,
        snapshot_chunks: 0,
        live_snapshot_bytes: 0,
        resyncs: 0,
        json_bytes_per_client_per_second: 0.0,
        json_ratio: 0.0,
        server: ServerUsage::default(),
        load_cpu_percent,
    };
    let mut latencies = Vec::new();
    let mut summary_latencies = Vec::new();
    let (mut queue_changes, mut queue_bytes) = (0, 0);
    let mut sampled_live = 0usize;
    let mut connects = Vec::new();
    let mut total_bytes = 0u64;
    let mut total_delta_bytes = 0u64;
    let (mut json_bytes, mut sent_bytes) = (0u64, 0u64);
    for task in tasks {
        let stats = match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(stats)) => stats,
            Ok(Err(err)) => ViewerStats {
                failure: Some(format!("viewer task failed: {err}")),
                ..ViewerStats::default()
            },
            Err(_) => ViewerStats {
                failure: Some("viewer did not stop at the deadline".into()),
                ..ViewerStats::default()
            },
        };
        if stats.live {
            report.clients_live += 1;
            if stats.decoded {
                sampled_live += 1;
            }
        }
        if let Some(failure) = stats.failure
            && report.failures.len() < 10
        {
            report.failures.push(failure);
        }
        if report.snapshot_bytes == 0 {
            report.snapshot_bytes = stats.snapshot_bytes;
            report.snapshot_chunks = stats.snapshot_chunks;
        }
        report.live_snapshot_bytes = report.live_snapshot_bytes.max(stats.live_snapshot_bytes);
        report.changes_received += stats.changes;
        queue_changes += stats.queue_changes;
        queue_bytes += stats.queue_bytes;
        report.resyncs += stats.resyncs;
        total_bytes += stats.bytes_after_snapshot;
        total_delta_bytes += stats.delta_bytes;
        json_bytes += stats.json_bytes;
        sent_bytes += stats.sent_bytes;
        latencies.extend(stats.latencies_ms);
        summary_latencies.extend(stats.summary_latencies_ms);
        connects.extend(stats.connect_ms);
    }
    let viewer_seconds = report.clients_live as f64 * window.as_secs_f64();
    if viewer_seconds > 0.0 {
        report.bytes_per_client_per_second = total_bytes as f64 / viewer_seconds;
    }
    let sampled_seconds = sampled_live as f64 * window.as_secs_f64();
    if sampled_seconds > 0.0 {
        report.changes_per_second = report.changes_received as f64 / sampled_seconds;
        report.queue_changes_per_second = queue_changes as f64 / sampled_seconds;
        report.json_bytes_per_client_per_second = json_bytes as f64 / sampled_seconds;
    }
    if sent_bytes > 0 {
        report.json_ratio = json_bytes as f64 / sent_bytes as f64;
    }
    if report.changes_received > 0 {
        report.bytes_per_agent_change =
            total_delta_bytes.saturating_sub(queue_bytes) as f64 / report.changes_received as f64;
    }
    if queue_changes > 0 {
        report.bytes_per_queue_change = queue_bytes as f64 / queue_changes as f64;
    }
    report.latency_ms = percentiles(&mut latencies);
    report.summary_latency_ms = percentiles(&mut summary_latencies);
    report.connect_ms = percentiles(&mut connects);
    report.server = server;
    Ok(report)
}

/// What one measurement window saw of the server and of this process.
struct Measured {
    window: Duration,
    server: ServerUsage,
    load_cpu_percent: Option<f64>,
}

/// Waits for the window from `start` to `deadline`, reading the server's `/metrics` and this
/// process's CPU at both ends.
async fn measure_window(
    http: &reqwest::Client,
    metrics_url: &str,
    start: tokio::time::Instant,
    deadline: tokio::time::Instant,
) -> Measured {
    tokio::time::sleep_until(start).await;
    let start_usage = scrape(http, metrics_url).await;
    let load_cpu_start = own_cpu_seconds();
    let started = Instant::now();
    tokio::time::sleep_until(deadline).await;
    let end_usage = scrape(http, metrics_url).await;
    let window = started.elapsed();
    let percent =
        |start: Option<f64>, end: Option<f64>| Some((end? - start?) / window.as_secs_f64() * 100.0);
    Measured {
        window,
        server: ServerUsage {
            cpu_percent: percent(start_usage.cpu_seconds, end_usage.cpu_seconds),
            rss_start_bytes: start_usage.rss_bytes,
            rss_end_bytes: end_usage.rss_bytes,
            change_to_send: histogram_between(
                &start_usage.change_to_send,
                &end_usage.change_to_send,
            ),
        },
        load_cpu_percent: percent(load_cpu_start, own_cpu_seconds()),
    }
}

/// When the measurement window opens, shared by the viewers: unset until every viewer has its
/// first snapshot.
#[derive(Default)]
struct Window {
    start: OnceLock<tokio::time::Instant>,
    /// Viewers that have their first snapshot, or failed.
    settled: AtomicUsize,
    changed: Notify,
}

impl Window {
    fn open(&self, now: tokio::time::Instant) -> bool {
        self.start.get().is_some_and(|start| now >= *start)
    }

    fn over(&self, now: tokio::time::Instant, duration: Duration) -> bool {
        self.start
            .get()
            .is_some_and(|start| now >= *start + duration)
    }
}

/// Who one simulated viewer is and what it watches.
struct Viewer<'a> {
    transport: &'a Transport,
    server: &'a str,
    token: Option<&'a str>,
    sub: &'a Subscription,
    probe_resync: bool,
    /// Decode every frame and measure latency; else count, decoding only snapshots.
    decode: bool,
    /// Weigh deltas and keepalives as JSON too.
    weigh_json: bool,
}

/// One viewer: connect, subscribe, take the snapshot, then count what arrives inside the window.
/// With `probe_resync`, the viewer subscribes once more claiming the roster it got, to measure
/// the snapshot a resync costs (that snapshot is not counted as a resync).
async fn measure(
    viewer: Viewer<'_>,
    window: &Window,
    duration: Duration,
    stats: &mut ViewerStats,
) -> Result<(), ClientError> {
    let Viewer {
        transport,
        server,
        token,
        sub,
        probe_resync,
        decode,
        weigh_json,
    } = viewer;
    stats.decoded = decode;
    let opened = Instant::now();
    let mut connection =
        Connection::connect_with(transport, server, "monti-cli load", token).await?;
    stats.connect_ms = Some(opened.elapsed().as_millis().min(u128::from(u32::MAX)) as u32);
    // The handshake's offset includes however long the hello took to arrive, which under load is
    // tens of milliseconds and would flatter the figures. Clocks within a second of each other
    // (the same machine, or NTP) are taken as synchronised; only a larger skew is corrected.
    let offset_ms = Some(connection.clock_offset_ms())
        .filter(|offset| offset.abs() > 1_000)
        .unwrap_or(0);
    connection.subscribe(sub).await?;
    // Server time of the last sequence number, advanced by each delta's step.
    let mut time_ms = 0u64;
    let mut first_snapshot = true;
    let mut probing = false;
    let mut roster_version = 0;
    loop {
        if window.over(tokio::time::Instant::now(), duration) {
            break;
        }
        // Wakes now and then to see whether the window has closed on a quiet stream.
        let frame =
            match tokio::time::timeout(Duration::from_millis(250), connection.recv_frame()).await {
                Ok(frame) => frame?,
                Err(_) => continue,
            };
        let received_ms = now_ms() as i64 + offset_ms;
        let in_window = window.open(tokio::time::Instant::now());
        if !decode {
            match server_msg_kind(&frame) {
                Some(ServerMsgKind::Delta | ServerMsgKind::Keepalive) => {
                    if in_window {
                        stats.bytes_after_snapshot += frame.len() as u64;
                    }
                    continue;
                }
                Some(ServerMsgKind::Health) => continue,
                // Snapshots (they tell a resync), errors and the unknown: decoded.
                _ => {}
            }
        }
        let msg = decode_server(&frame)?;
        if weigh_json && in_window && matches!(msg, ServerMsg::Delta(_) | ServerMsg::Keepalive(_)) {
            // The same message as a typical in-house dashboard would send it: JSON.
            stats.json_bytes += serde_json::to_vec(&msg).map_or(0, |json| json.len()) as u64;
            stats.sent_bytes += frame.len() as u64;
        }
        match msg {
            ServerMsg::Snapshot(chunk) => {
                time_ms = chunk.time_ms;
                if first_snapshot {
                    stats.snapshot_bytes += frame.len() as u64;
                    stats.snapshot_chunks += 1;
                } else if probing {
                    stats.live_snapshot_bytes += frame.len() as u64;
                } else if in_window {
                    stats.bytes_after_snapshot += frame.len() as u64;
                }
                if let Some(header) = &chunk.header {
                    roster_version = header.roster_version;
                }
                if chunk.last {
                    if first_snapshot && probe_resync {
                        let again = Subscription {
                            known_roster: Some(roster_version),
                            ..sub.clone()
                        };
                        connection.subscribe(&again).await?;
                        probing = true;
                    } else if probing {
                        probing = false;
                    } else if !first_snapshot {
                        stats.resyncs += 1;
                    }
                    if !stats.live {
                        window.settled.fetch_add(1, Ordering::Relaxed);
                        window.changed.notify_one();
                    }
                    first_snapshot = false;
                    stats.live = true;
                }
            }
            ServerMsg::Delta(delta) => {
                time_ms += delta.time_step_ms;
                if in_window {
                    stats.bytes_after_snapshot += frame.len() as u64;
                    stats.delta_bytes += frame.len() as u64;
                    stats.changes += delta.changes.len() as u64;
                    if !delta.queues.is_empty() {
                        // What the queue figures cost: the frame less the same delta without.
                        let without = ServerMsg::Delta(Delta {
                            queues: Vec::new(),
                            ..delta.clone()
                        });
                        let rest = encode_server(&without).map_or(0, |bytes| bytes.len());
                        stats.queue_changes += delta.queues.len() as u64;
                        stats.queue_bytes += frame.len().saturating_sub(rest) as u64;
                    }
                    for change in &delta.changes {
                        let since = time_ms.saturating_sub(change.since_ms_ago) as i64;
                        stats.latencies_ms.push((received_ms - since).max(0) as u32);
                    }
                    if !delta.groups.is_empty() {
                        let tick = time_ms as i64;
                        stats
                            .summary_latencies_ms
                            .push((received_ms - tick).max(0) as u32);
                    }
                }
            }
            ServerMsg::Keepalive(_) if in_window => {
                stats.bytes_after_snapshot += frame.len() as u64
            }
            ServerMsg::Error(error) => {
                return Err(ClientError::Refused {
                    code: error.code,
                    message: error.message,
                });
            }
            _ => {}
        }
    }
    connection.close().await;
    Ok(())
}

struct Usage {
    cpu_seconds: Option<f64>,
    rss_bytes: Option<u64>,
    /// `(upper bound in seconds, cumulative count)` per bucket of `monti_change_to_send_seconds`.
    change_to_send: Vec<(f64, u64)>,
}

async fn scrape(http: &reqwest::Client, url: &str) -> Usage {
    let text = match http.get(url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let value = |name: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    let change_to_send = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("monti_change_to_send_seconds_bucket{le=\"")?;
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse::<f64>().ok()? as u64))
        })
        .collect();
    Usage {
        cpu_seconds: value("monti_process_cpu_seconds"),
        rss_bytes: value("monti_process_resident_memory_bytes").map(|rss| rss as u64),
        change_to_send,
    }
}

/// The histogram of the observations between two scrapes of its cumulative buckets.
fn histogram_between(start: &[(f64, u64)], end: &[(f64, u64)]) -> Option<ServerHistogram> {
    if end.is_empty() || start.len() != end.len() {
        return None;
    }
    let buckets: Vec<(f64, u64)> = (start.iter().zip(end))
        .map(|(&(bound, before), &(_, after))| (bound, after.saturating_sub(before)))
        .collect();
    let samples = buckets.last()?.1;
    if samples == 0 {
        return Some(ServerHistogram::default());
    }
    let at_most = |share: f64| {
        let wanted = (samples as f64 * share).ceil() as u64;
        (buckets.iter())
            .find(|(_, count)| *count >= wanted)
            .map_or(f64::INFINITY, |(bound, _)| bound * 1000.0)
    };
    let above = |seconds: f64| {
        let within = (buckets.iter())
            .filter(|(bound, _)| *bound <= seconds)
            .map(|(_, count)| *count)
            .max()
            .unwrap_or(0);
        (samples - within.min(samples)) as f64 / samples as f64
    };
    Some(ServerHistogram {
        samples,
        p50_at_most_ms: at_most(0.5),
        p99_at_most_ms: at_most(0.99),
        over_256_ms: above(0.256),
        over_2_s: above(2.048),
    })
}

/// CPU seconds this process has used, all threads (Linux; `None` elsewhere).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux counts in clock ticks of 1/100 s (USER_HZ) on every architecture MONTI targets.
    Some((utime + stime) / 100.0)
}

/// What to measure with [`poll`]: pollers of the REST API, the way users of vendors' real-time
/// APIs refresh a dashboard.
#[derive(Clone, Debug)]
pub struct PollOptions {
    /// Server base URL.
    pub server: String,
    /// Number of polling viewers.
    pub clients: usize,
    /// How often each reads the whole floor (from the start of one read to the next).
    pub every: Duration,
    /// How long to measure.
    pub duration: Duration,
    /// Bearer token, when the server requires sign-in.
    pub token: Option<String>,
    /// How to reach the server.
    pub transport: Transport,
}

/// What [`poll`] measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PollReport {
    /// Pollers asked for.
    pub clients: usize,
    /// Seconds between the starts of two reads.
    pub every_s: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Whole-floor reads completed in the window, all pollers.
    pub reads: u64,
    /// Agents in one read (the floor's size).
    pub agents: usize,
    /// Response bodies per poller per second.
    pub bytes_per_client_per_second: f64,
    /// How long a whole-floor read took (every page).
    pub read_ms: Percentiles,
    /// How old the floor a poller shows is, over time: from the start of the read it shows to
    /// the moment, sampled every 10 ms. A change waits for the next read, then for its response.
    pub age_ms: Percentiles,
    /// The server's usage over the window.
    pub server: ServerUsage,
    /// This process's CPU over the window, percent of one core.
    pub load_cpu_percent: Option<f64>,
    /// The first failures seen.
    pub failures: Vec<String>,
}

/// Reads the whole floor through `GET /api/v1/agents`, page by page, as often as asked, and
/// reports the bytes, the read time and how stale the shown floor gets: the baseline MONTI's
/// stream is compared with in docs/PERFORMANCE.md.
pub async fn poll(options: PollOptions) -> anyhow::Result<PollReport> {
    const PAGE: usize = 1_000;
    use tokio::time::Instant as At;
    #[derive(Default)]
    struct Poller {
        reads: u64,
        agents: usize,
        bytes: u64,
        read_ms: Vec<u32>,
        age_ms: Vec<u32>,
        failure: Option<String>,
    }
    impl Poller {
        /// The ages, every 10 ms from `from` to `until`, of a read that started and arrived
        /// at `shown` and was on screen until `until`.
        fn ages(&mut self, (started, arrived): (At, At), from: At, until: At) {
            let mut at = arrived.max(from);
            while at < until {
                self.age_ms.push((at - started).as_millis() as u32);
                at += Duration::from_millis(10);
            }
        }
    }
    let http = options.transport.http().clone();
    let base = options.server.trim_end_matches('/').to_owned();
    let metrics_url = format!("{base}/metrics");
    // Pollers start spread over one interval, as independent dashboards would; the window opens
    // when every one has a floor to show.
    let begin = tokio::time::Instant::now();
    let window_start = begin + options.every + Duration::from_secs(1);
    let deadline = window_start + options.duration;
    let mut tasks = Vec::with_capacity(options.clients);
    for idx in 0..options.clients {
        let (http, base, token) = (http.clone(), base.clone(), options.token.clone());
        let first = begin + options.every.mul_f64(idx as f64 / options.clients as f64);
        let every = options.every;
        tasks.push(tokio::spawn(async move {
            let mut poller = Poller::default();
            // The read the poller shows, once it has one: when it started and arrived.
            let mut shown: Option<(At, At)> = None;
            let mut next = first;
            while next < deadline {
                tokio::time::sleep_until(next).await;
                let started = tokio::time::Instant::now();
                let mut bytes = 0u64;
                let mut offset = 0;
                let read = loop {
                    let mut request = http
                        .get(format!("{base}/api/v1/agents"))
                        .query(&[("offset", offset), ("limit", PAGE)]);
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let page = async {
                        let response = request.send().await?.error_for_status()?;
                        let body = response.bytes().await?;
                        anyhow::Ok((
                            body.len(),
                            serde_json::from_slice::<monti_protocol::rest::AgentPage>(&body)?,
                        ))
                    };
                    match page.await {
                        Ok((len, page)) => {
                            bytes += len as u64;
                            offset += page.agents.len();
                            if page.agents.is_empty() || offset >= page.total {
                                break Ok(page.total);
                            }
                        }
                        Err(err) => break Err(err),
                    }
                };
                let done = tokio::time::Instant::now();
                match read {
                    Ok(agents) => {
                        // The last read was on screen from its arrival until this one's.
                        if let Some(shown) = shown {
                            poller.ages(shown, window_start, done.min(deadline));
                        }
                        shown = Some((started, done));
                        if started >= window_start && done <= deadline {
                            poller.reads += 1;
                            poller.agents = agents;
                            poller.bytes += bytes;
                            poller.read_ms.push((done - started).as_millis() as u32);
                        }
                    }
                    Err(err) => {
                        poller
                            .failure
                            .get_or_insert(format!("poller {idx}: {err:#}"));
                    }
                }
                next = (started + every).max(done);
            }
            // The last read stays on screen until the window closes.
            if let Some(shown) = shown {
                poller.ages(shown, window_start, deadline);
            }
            poller
        }));
    }
    let Measured {
        window,
        server,
        load_cpu_percent,
    } = measure_window(&http, &metrics_url, window_start, deadline).await;
    let window = window.as_secs_f64();
    let mut report = PollReport {
        clients: options.clients,
        every_s: options.every.as_secs_f64(),
        duration_s: window,
        load_cpu_percent,
        server: ServerUsage {
            // No stream: the histogram of change to send is not this measure's.
            change_to_send: None,
            ..server
        },
        ..PollReport::default()
    };
    let (mut bytes, mut read_ms, mut age_ms) = (0u64, Vec::new(), Vec::new());
    for task in tasks {
        let poller = task.await?;
        report.reads += poller.reads;
        report.agents = report.agents.max(poller.agents);
        bytes += poller.bytes;
        read_ms.extend(poller.read_ms);
        age_ms.extend(poller.age_ms);
        if let Some(failure) = poller.failure
            && report.failures.len() < 10
        {
            report.failures.push(failure);
        }
    }
    report.bytes_per_client_per_second = bytes as f64 / options.clients.max(1) as f64 / window;
    report.read_ms = percentiles(&mut read_ms);
    report.age_ms = percentiles(&mut age_ms);
    Ok(report)
}

/// What a server restart did to viewers that reconnect as the apps do.
#[derive(Clone, Debug, Serialize)]
pub struct StormReport {
    /// Viewers asked for.
    pub clients: usize,
    /// Viewers live before the window opened.
    pub live_before: usize,
    /// Viewers that lost their connection during the window.
    pub lost: usize,
    /// Of those, live again (a complete snapshot) before the window closed.
    pub recovered: usize,
    /// From a viewer losing its connection to its next complete snapshot, milliseconds.
    pub recovery_ms: Percentiles,
    /// From the first loss to the last viewer live again, milliseconds (all recovered only).
    pub all_live_again_ms: Option<f64>,
    /// Losses after a viewer's first (attempts that failed or were lost again), all viewers.
    /// A restarted server that listens before it has loaded its floor holds new connections
    /// in its backlog, so there may be none.
    pub failed_attempts: u64,
}

/// Follows `options.clients` viewers with the apps' own [`Follower`] (its backoff and jitter),
/// waits until all are live, then for `options.duration`, in which someone restarts the server;
/// reports how long each viewer took to be live again.
pub async fn storm(options: LoadOptions) -> anyhow::Result<StormReport> {
    use crate::follow::{Follower, Step};
    struct Outcome {
        live: bool,
        lost_at: Option<Instant>,
        recovered_at: Option<Instant>,
        recovery_ms: Option<u32>,
        failed_attempts: u64,
    }
    let ready = Arc::new(AtomicUsize::new(0));
    let all_ready = Arc::new(Notify::new());
    let go = Arc::new(Notify::new());
    let mut tasks = Vec::with_capacity(options.clients);
    for _ in 0..options.clients {
        let (options, ready, all_ready, go) = (
            options.clone(),
            ready.clone(),
            all_ready.clone(),
            go.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let sub = options.subscription.clone();
            let mut follower = Follower::new(&options.server, "monti-cli storm", sub)
                .with_transport(options.transport);
            if let Some(token) = &options.token {
                follower = follower.with_token(token);
            }
            let live = tokio::time::timeout(Duration::from_secs(60), follower.until_live()).await;
            let mut outcome = Outcome {
                live: matches!(live, Ok(Ok(()))),
                lost_at: None,
                recovered_at: None,
                recovery_ms: None,
                failed_attempts: 0,
            };
            // Registered before counting in, so the go cannot pass it by.
            let started = go.notified();
            if ready.fetch_add(1, Ordering::Relaxed) + 1 == options.clients {
                all_ready.notify_one();
            }
            started.await;
            let deadline = tokio::time::Instant::now() + options.duration;
            while outcome.live {
                let step = match tokio::time::timeout_at(deadline, follower.next()).await {
                    Ok(Ok(step)) => step,
                    Ok(Err(_)) | Err(_) => break,
                };
                match step {
                    Step::Lost { .. } => match outcome.lost_at {
                        Some(_) => outcome.failed_attempts += 1,
                        None => outcome.lost_at = Some(Instant::now()),
                    },
                    Step::Snapshot { .. } => {
                        if let (Some(lost), None) = (outcome.lost_at, outcome.recovery_ms) {
                            let ms = lost.elapsed().as_millis().min(u128::from(u32::MAX));
                            outcome.recovery_ms = Some(ms as u32);
                            outcome.recovered_at = Some(Instant::now());
                        }
                    }
                    _ => {}
                }
            }
            outcome
        }));
    }
    // Every viewer live (or given up on), then the window opens for all at once.
    if options.clients > 0 {
        all_ready.notified().await;
    }
    eprintln!(
        "monti-cli storm: {} viewers ready; restart the server within {:?}",
        options.clients, options.duration
    );
    go.notify_waiters();
    let mut report = StormReport {
        clients: options.clients,
        live_before: 0,
        lost: 0,
        recovered: 0,
        recovery_ms: Percentiles::default(),
        all_live_again_ms: None,
        failed_attempts: 0,
    };
    let mut recoveries = Vec::new();
    let (mut first_loss, mut last_back): (Option<Instant>, Option<Instant>) = (None, None);
    for task in tasks {
        let outcome = task.await?;
        report.live_before += usize::from(outcome.live);
        report.failed_attempts += outcome.failed_attempts;
        if let Some(lost) = outcome.lost_at {
            report.lost += 1;
            first_loss = Some(first_loss.map_or(lost, |first| first.min(lost)));
        }
        if let (Some(ms), Some(back)) = (outcome.recovery_ms, outcome.recovered_at) {
            report.recovered += 1;
            recoveries.push(ms);
            last_back = Some(last_back.map_or(back, |last| last.max(back)));
        }
    }
    report.recovery_ms = percentiles(&mut recoveries);
    if report.lost > 0
        && report.recovered == report.lost
        && let (Some(first), Some(last)) = (first_loss, last_back)
    {
        report.all_live_again_ms = Some(last.duration_since(first).as_secs_f64() * 1000.0);
    }
    Ok(report)
}

fn percentiles(samples: &mut [u32]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let at = |q: f64| f64::from(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        samples: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_histogram_is_read_as_the_difference_of_two_scrapes() {
        let start = [(0.001, 10), (0.256, 20), (2.048, 20), (f64::INFINITY, 20)];
        // 100 more: 50 within 1 ms, 45 more within 256 ms, 4 within 2 s, 1 beyond.
        let end = [
            (0.001, 60),
            (0.256, 115),
            (2.048, 119),
            (f64::INFINITY, 120),
        ];
        let histogram = histogram_between(&start, &end).expect("a histogram");
        assert_eq!(histogram.samples, 100);
        assert_eq!(histogram.p50_at_most_ms, 1.0);
        assert_eq!(histogram.p99_at_most_ms, 2048.0);
        assert!((histogram.over_256_ms - 0.05).abs() < 1e-12);
        assert!((histogram.over_2_s - 0.01).abs() < 1e-12);
        assert!(histogram_between(&[], &end).is_none(), "no first scrape");
    }

    #[test]
    fn percentiles_are_of_the_sorted_samples() {
        let mut samples: Vec<u32> = (1..=100).rev().collect();
        let p = percentiles(&mut samples);
        assert_eq!((p.p50, p.p99, p.max, p.samples), (51.0, 99.0, 100.0, 100));
    }
}
