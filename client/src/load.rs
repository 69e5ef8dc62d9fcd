//! The load generator behind `monti-cli load`: many real viewers, measured.
//!
//! Each viewer is a real WebSocket connection that subscribes, folds nothing, and measures: for
//! every agent change it receives, the latency from the moment the state began on the server
//! (which for simulated and live events is when the server learned of it) to receipt, corrected
//! by the clock offset seen at the handshake when that is over a second; and the bytes it receives (WebSocket payloads,
//! before framing). The server's CPU and memory come from its `/metrics`.

use std::time::{Duration, Instant};

use monti_protocol::codec::decode_server;
use monti_protocol::message::{ServerMsg, Subscription};
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
    /// Agent changes received by all viewers.
    pub changes_received: u64,
    /// Agent changes per second one viewer received (the floor's visible change rate).
    pub changes_per_second: f64,
    /// Change-to-receipt latency, milliseconds.
    pub latency_ms: Percentiles,
    /// Time from opening the connection to the server's hello (TCP, any proxy tunnel, TLS
    /// handshake, WebSocket upgrade), milliseconds.
    pub connect_ms: Percentiles,
    /// Stream bytes per viewer per second after the snapshot (deltas and keepalives).
    pub bytes_per_client_per_second: f64,
    /// Delta frame bytes divided by the agent changes they carried, frame overhead included.
    pub bytes_per_agent_change: f64,
    /// Bytes of the first viewer's snapshot, and its chunk count.
    pub snapshot_bytes: u64,
    /// Chunks of that snapshot.
    pub snapshot_chunks: u32,
    /// Bytes of a snapshot without names, as a viewer that knows the roster gets on a resync.
    pub live_snapshot_bytes: u64,
    /// Snapshots received after the first (resyncs) by all viewers.
    pub resyncs: u64,
    /// The server's figures from `/metrics`.
    pub server: ServerUsage,
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
}

#[derive(Default)]
struct ViewerStats {
    live: bool,
    failure: Option<String>,
    connect_ms: Option<u32>,
    latencies_ms: Vec<u32>,
    changes: u64,
    bytes_after_snapshot: u64,
    delta_bytes: u64,
    snapshot_bytes: u64,
    snapshot_chunks: u32,
    live_snapshot_bytes: u64,
    resyncs: u64,
}

/// Runs the load and returns the report.
pub async fn run(options: LoadOptions) -> anyhow::Result<LoadReport> {
    let http = options.transport.http().clone();
    let metrics_url = format!("{}/metrics", options.server.trim_end_matches('/'));
    // Viewers connect in waves of 50 so a thousand do not all knock at once. The window starts
    // once every viewer has had time to connect and take its snapshot.
    let warmup = Duration::from_secs(2) + Duration::from_millis(20 * options.clients as u64 / 50);
    let window_start = tokio::time::Instant::now() + warmup;
    let deadline = window_start + options.duration;
    let mut tasks = Vec::with_capacity(options.clients);
    for idx in 0..options.clients {
        let server = options.server.clone();
        let sub = options.subscription.clone();
        let token = options.token.clone();
        let transport = options.transport.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = ViewerStats::default();
            let viewer = Viewer {
                transport: &transport,
                server: &server,
                token: token.as_deref(),
                sub: &sub,
                probe_resync: idx == 0,
            };
            if let Err(err) = measure(viewer, window_start, deadline, &mut stats).await {
                stats.failure = Some(format!("viewer {idx}: {err}"));
            }
            stats
        }));
        if idx % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep_until(window_start).await;
    let start_usage = scrape(&http, &metrics_url).await;
    let window_started = Instant::now();
    tokio::time::sleep_until(deadline).await;
    let end_usage = scrape(&http, &metrics_url).await;
    let window = window_started.elapsed();

    let mut report = LoadReport {
        clients: options.clients,
        clients_live: 0,
        failures: Vec::new(),
        duration_s: window.as_secs_f64(),
        changes_received: 0,
        changes_per_second: 0.0,
        latency_ms: Percentiles::default(),
        connect_ms: Percentiles::default(),
        bytes_per_client_per_second: 0.0,
        bytes_per_agent_change: 0.0,
        snapshot_bytes: 0,
        snapshot_chunks: 0,
        live_snapshot_bytes: 0,
        resyncs: 0,
        server: ServerUsage::default(),
    };
    let mut latencies = Vec::new();
    let mut connects = Vec::new();
    let mut total_bytes = 0u64;
    let mut total_delta_bytes = 0u64;
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
        report.resyncs += stats.resyncs;
        total_bytes += stats.bytes_after_snapshot;
        total_delta_bytes += stats.delta_bytes;
        latencies.extend(stats.latencies_ms);
        connects.extend(stats.connect_ms);
    }
    let viewer_seconds = report.clients_live as f64 * window.as_secs_f64();
    if viewer_seconds > 0.0 {
        report.changes_per_second = report.changes_received as f64 / viewer_seconds;
        report.bytes_per_client_per_second = total_bytes as f64 / viewer_seconds;
    }
    if report.changes_received > 0 {
        report.bytes_per_agent_change = total_delta_bytes as f64 / report.changes_received as f64;
    }
    report.latency_ms = percentiles(&mut latencies);
    report.connect_ms = percentiles(&mut connects);
    report.server = ServerUsage {
        cpu_percent: match (start_usage.cpu_seconds, end_usage.cpu_seconds) {
            (Some(start), Some(end)) => Some((end - start) / window.as_secs_f64() * 100.0),
            _ => None,
        },
        rss_start_bytes: start_usage.rss_bytes,
        rss_end_bytes: end_usage.rss_bytes,
    };
    Ok(report)
}

/// Who one simulated viewer is and what it watches.
struct Viewer<'a> {
    transport: &'a Transport,
    server: &'a str,
    token: Option<&'a str>,
    sub: &'a Subscription,
    probe_resync: bool,
}

/// One viewer: connect, subscribe, take the snapshot, then count what arrives inside the window.
/// With `probe_resync`, the viewer subscribes once more claiming the roster it got, to measure
/// the snapshot a resync costs (that snapshot is not counted as a resync).
async fn measure(
    viewer: Viewer<'_>,
    window_start: tokio::time::Instant,
    deadline: tokio::time::Instant,
    stats: &mut ViewerStats,
) -> Result<(), ClientError> {
    let Viewer {
        transport,
        server,
        token,
        sub,
        probe_resync,
    } = viewer;
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
        let frame = match tokio::time::timeout_at(deadline, connection.recv_frame()).await {
            Ok(frame) => frame?,
            Err(_) => break,
        };
        let received_ms = now_ms() as i64 + offset_ms;
        let in_window = tokio::time::Instant::now() >= window_start;
        match decode_server(&frame)? {
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
                    for change in &delta.changes {
                        let since = time_ms.saturating_sub(change.since_ms_ago) as i64;
                        stats.latencies_ms.push((received_ms - since).max(0) as u32);
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
    Usage {
        cpu_seconds: value("monti_process_cpu_seconds"),
        rss_bytes: value("monti_process_resident_memory_bytes").map(|rss| rss as u64),
    }
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
