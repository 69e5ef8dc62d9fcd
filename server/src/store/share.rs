//! Sharing one floor between several servers over a Redis stream.
//!
//! Every server appends the changes it commits to one Redis stream (`XADD` with an approximate
//! `MAXLEN`) and reads everyone's appends from it (`XREAD BLOCK`), skipping its own. A stream
//! rather than pub/sub because a reader names the last entry it has seen: a server whose link
//! blips picks up where it stopped instead of silently missing what was said meanwhile.
//!
//! The database stays the truth, and the stream only carries what was committed there, so every
//! gap has one remedy: reload the floor from the database. A server reloads whenever it
//! (re)connects to Redis, after noting the stream's last entry so nothing committed during the
//! reload is missed; and a server that could not publish (Redis was down) appends a `reload`
//! marker once it can again, which makes every server reload. Applying a change twice is
//! harmless (see [`Change`]), so these overlaps cost nothing but the reload.
//!
//! While the link is down a server keeps serving its last floor, says so on `/readyz` and in
//! `monti_degraded`, and tells its viewers that data may be stale.
//!
//! An entry carries [`SHARED_VERSION`] in `v` and its changes postcard-encoded in `changes`. An
//! entry this server cannot read (another version during a rolling upgrade, or damaged) is
//! counted and answered with a reload, never skipped: skipping would leave this floor apart
//! from the database until the next reconcile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamMaxlen, StreamReadOptions, StreamReadReply};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::RedisConfig;
use crate::core::change::Change;
use crate::core::clock::Clock;
use crate::floor::live::LiveFloor;
use crate::metrics::Metrics;
use crate::sources::ingest::{Ingest, Published};

/// The version of the shared entries' encoding; changing [`Change`]'s encoding bumps it.
pub const SHARED_VERSION: &str = "1";

/// The changes of one shared entry, as written to the stream.
pub fn encode_changes(changes: &[Change]) -> anyhow::Result<Vec<u8>> {
    postcard::to_allocvec(changes).context("cannot encode changes")
}

/// The changes of one shared entry: `None` when the entry is of another version or does not
/// decode.
pub fn decode_changes(version: Option<&str>, bytes: Option<&[u8]>) -> Option<Vec<Change>> {
    if version != Some(SHARED_VERSION) {
        return None;
    }
    postcard::from_bytes(bytes?).ok()
}

/// Whether this server has joined the shared stream at least once (it is ready only then).
#[derive(Clone, Default)]
pub struct Joined(Arc<AtomicBool>);

impl Joined {
    /// See [`Joined`].
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The running link to Redis.
pub struct Share {
    /// Whether the reader has joined the stream.
    pub joined: Joined,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Share {
    /// Waits for both tasks after `stop` was cancelled.
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts publishing and reading. Fails only on a malformed URL; an unreachable Redis is
/// retried forever (degraded meanwhile).
/// Other servers' changes and reloads go to the floor through the ingest writer (`ingest`),
/// like this server's own; `live` only hears whether the link is up.
pub fn start(
    config: &RedisConfig,
    published: Published,
    ingest: Ingest,
    live: Arc<LiveFloor>,
    metrics: Arc<Metrics>,
    clock: Clock,
    stop: CancellationToken,
) -> anyhow::Result<Share> {
    let client = redis::Client::open(config.url.as_str())
        .with_context(|| format!("invalid redis.url {}", crate::config::redact(&config.url)))?;
    let joined = Joined::default();
    let link = Link {
        client,
        stream: config.stream.clone(),
        max_len: config.max_len as usize,
        instance: live.instance.to_string(),
        ingest,
        live,
        metrics,
        clock,
    };
    let link = Arc::new(link);
    let Published {
        changes,
        overflowed,
    } = published;
    let tasks = vec![
        tokio::spawn(link.clone().publish(changes, overflowed, stop.clone())),
        tokio::spawn(link.read(joined.clone(), stop)),
    ];
    Ok(Share { joined, tasks })
}

struct Link {
    client: redis::Client,
    stream: String,
    max_len: usize,
    instance: String,
    ingest: Ingest,
    live: Arc<LiveFloor>,
    metrics: Arc<Metrics>,
    clock: Clock,
}

/// How long one Redis command may take before the link counts as down.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a read waits for news before asking again.
const BLOCK_MS: usize = 2_000;

impl Link {
    async fn connect(&self) -> anyhow::Result<MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(
                COMMAND_TIMEOUT + Duration::from_millis(BLOCK_MS as u64),
            ));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("cannot connect to Redis")
    }

    /// Appends this server's changes to the stream, a batch per entry.
    async fn publish(
        self: Arc<Self>,
        mut changes: mpsc::Receiver<Vec<Change>>,
        overflowed: Arc<AtomicBool>,
        stop: CancellationToken,
    ) {
        let mut connection: Option<MultiplexedConnection> = None;
        // Set when changes could not be published: the others must reload.
        let mut lost = false;
        loop {
            let mut batch = tokio::select! {
                _ = stop.cancelled() => break,
                batch = changes.recv() => match batch {
                    Some(batch) => batch,
                    None => break,
                },
            };
            while let Ok(more) = changes.try_recv() {
                batch.extend(more);
                if batch.len() >= 10_000 {
                    break;
                }
            }
            lost |= overflowed.swap(false, Ordering::Relaxed);
            if connection.is_none() {
                connection = self.connect().await.ok();
            }
            let Some(conn) = connection.as_mut() else {
                lost = true;
                continue;
            };
            if lost {
                if self.append(conn, &[("reload", "1")]).await.is_err() {
                    connection = None;
                    continue;
                }
                tracing::info!("told the other servers to reload after changes were lost");
                lost = false;
            }
            let encoded = match encode_changes(&batch) {
                Ok(encoded) => encoded,
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "cannot encode changes");
                    lost = true;
                    continue;
                }
            };
            let fields: [(&str, &[u8]); 3] = [
                ("from", self.instance.as_bytes()),
                ("v", SHARED_VERSION.as_bytes()),
                ("changes", &encoded),
            ];
            match self.append(conn, &fields).await {
                Ok(()) => {
                    self.metrics.shared_published.inc_by(batch.len() as u64);
                }
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "cannot publish changes");
                    connection = None;
                    lost = true;
                }
            }
        }
    }

    async fn append<V: redis::ToRedisArgs + Send + Sync>(
        &self,
        conn: &mut MultiplexedConnection,
        fields: &[(&str, V)],
    ) -> anyhow::Result<()> {
        let _: String = conn
            .xadd_maxlen(
                &self.stream,
                StreamMaxlen::Approx(self.max_len),
                "*",
                fields,
            )
            .await
            .context("XADD failed")?;
        Ok(())
    }

    /// Reads the other servers' changes; reloads from the database on every (re)connection.
    async fn read(self: Arc<Self>, joined: Joined, stop: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let result = tokio::select! {
                _ = stop.cancelled() => break,
                result = self.follow(&joined) => result,
            };
            let err = match result {
                Ok(()) => break,
                Err(err) => err,
            };
            self.metrics.redis_up.set(0);
            let reason = format!("lost the link to the other servers: {err:#}");
            tracing::warn!(%reason, "degraded");
            self.live.set_degraded(Some(reason), self.clock.now_ms());
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One connection's worth of reading: note the last entry, reload, then follow.
    async fn follow(&self, joined: &Joined) -> anyhow::Result<()> {
        let mut conn = self.connect().await?;
        let mut last_id = self.last_id(&mut conn).await?;
        self.reload().await?;
        self.metrics.redis_up.set(1);
        self.live.set_degraded(None, self.clock.now_ms());
        if !joined.0.swap(true, Ordering::Relaxed) {
            tracing::info!(stream = %self.stream, "joined the shared floor");
        } else {
            tracing::info!("link to the other servers is back; floor reloaded");
        }
        let options = StreamReadOptions::default().block(BLOCK_MS).count(1_000);
        loop {
            let reply: StreamReadReply = conn
                .xread_options(&[&self.stream], &[&last_id], &options)
                .await
                .context("XREAD failed")?;
            let mut reload = false;
            for key in reply.keys {
                for entry in key.ids {
                    last_id = entry.id.clone();
                    if entry.map.contains_key("reload") {
                        reload = true;
                        continue;
                    }
                    let from: Option<String> = entry.get("from");
                    if from.as_deref() == Some(self.instance.as_str()) {
                        continue;
                    }
                    let version: Option<String> = entry.get("v");
                    let bytes: Option<Vec<u8>> = entry.get("changes");
                    match decode_changes(version.as_deref(), bytes.as_deref()) {
                        Some(changes) => {
                            self.metrics.shared_received.inc_by(changes.len() as u64);
                            self.ingest
                                .shared(changes)
                                .await
                                .context("the writer has stopped")?;
                        }
                        None => {
                            // What it said is in the database: reload rather than drift.
                            tracing::warn!(
                                id = %entry.id,
                                version = version.as_deref().unwrap_or("none"),
                                "cannot read a shared entry; reloading the floor"
                            );
                            self.metrics.shared_unreadable.inc();
                            reload = true;
                        }
                    }
                }
            }
            if reload {
                self.reload().await?;
            }
        }
    }

    /// The id of the stream's newest entry, or `0-0` when it is empty or missing.
    async fn last_id(&self, conn: &mut MultiplexedConnection) -> anyhow::Result<String> {
        let newest: redis::streams::StreamRangeReply = conn
            .xrevrange_count(&self.stream, "+", "-", 1)
            .await
            .context("XREVRANGE failed")?;
        Ok(newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_owned(), |entry| entry.id.clone()))
    }

    /// Reloads the floor from the database, through the writer (so never racing its commits).
    async fn reload(&self) -> anyhow::Result<()> {
        self.ingest
            .reload()
            .await
            .map_err(|err| anyhow::anyhow!("cannot reload the floor: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monti_protocol::model::StateKind;

    fn sample() -> Vec<Change> {
        vec![
            Change::Team {
                id: 3,
                name: "Sales 1".into(),
            },
            Change::State {
                agent: 7,
                state: StateKind::NotReady,
                reason: Some(2),
                since_ms: 1_700_000_000_000,
                seen_ms: 1_700_000_000_500,
                watched: true,
            },
        ]
    }

    #[test]
    fn shared_changes_round_trip_and_other_versions_are_not_read() {
        let bytes = encode_changes(&sample()).expect("encodes");
        assert_eq!(
            decode_changes(Some(SHARED_VERSION), Some(&bytes)),
            Some(sample())
        );
        assert_eq!(decode_changes(Some("2"), Some(&bytes)), None);
        assert_eq!(
            decode_changes(None, Some(b"[{\"Team\":{}}]")),
            None,
            "the JSON of old"
        );
        assert_eq!(decode_changes(Some(SHARED_VERSION), Some(&[0xff; 7])), None);
        assert_eq!(decode_changes(Some(SHARED_VERSION), None), None);
        // Queue changes were appended after version 1: its entries still read the same, and
        // a server without them reads theirs as unreadable and reloads.
        let queues = vec![
            Change::Queue {
                id: 4,
                name: "Billing".into(),
                channel: "voice".into(),
                target_secs: 20,
                goal_percent: 80,
                teams: vec![3],
                active: true,
            },
            Change::Waiting {
                contact: "c-1".into(),
                waiting: Some((4, 1_700_000_000_000)),
            },
            Change::QueueQuarter {
                queue: 4,
                quarter_ms: 1_700_000_100_000,
                minutes: vec![(3, monti_protocol::queue::QueueCounts::default())],
            },
        ];
        let bytes = encode_changes(&queues).expect("encodes");
        assert_eq!(
            decode_changes(Some(SHARED_VERSION), Some(&bytes)),
            Some(queues)
        );
    }

    /// The bytes of a known entry: if this changes, servers of the old and the new encoding
    /// cannot read each other, so SHARED_VERSION must change with it.
    #[test]
    fn the_shared_encoding_is_pinned_to_its_version() {
        let bytes = encode_changes(&sample()).expect("encodes");
        assert_eq!(SHARED_VERSION, "1");
        assert_eq!(
            bytes,
            [
                2, // two changes
                1, 6, 7, 83, 97, 108, 101, 115, 32, 49, // Team 3 "Sales 1"
                7, 14, 6, 1, 4, // State of agent 7: not ready, reason 2
                128, 208, 149, 255, 188, 49, // since_ms
                244, 211, 149, 255, 188, 49, // seen_ms
                1,  // watched
            ]
        );
    }
}
