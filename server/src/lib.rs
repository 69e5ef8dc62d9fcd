//! MONTI server: keeps the live floor of a call center in memory and streams it to viewers.
//!
//! - [`audit`]: the audit log (sign-ins, refusals, configuration changes).
//! - [`auth`]: roles, actions and the one `can(caller, action)`.
//! - [`config`]: settings from defaults, a TOML file, environment variables and flags.
//! - [`db`]: the SQL adapter (SQLite or PostgreSQL): master data and state history.
//! - [`live`]: the live floor, pending changes, ticks and their broadcast.
//! - [`sim`]: the simulated floor that feeds the live floor through the ingest path.
//! - [`stream`]: the WebSocket stream, one task per viewer.
//! - [`http`]: REST, health, readiness and metrics, and the error type.
//! - [`metrics`]: Prometheus metrics.
//! - [`token`]: checking access tokens (JWTs) against the identity provider's published keys.
//!
//! [`run`] wires them together; `main.rs` only parses configuration and sets up logging.

pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod http;
pub mod live;
pub mod metrics;
pub mod sim;
pub mod stream;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::{Db, HistoryRow};
use crate::live::LiveFloor;
use crate::metrics::Metrics;

/// What every handler and connection task shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The live floor.
    pub live: Arc<LiveFloor>,
    /// The database.
    pub db: Db,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Identifies callers.
    pub auth: Arc<auth::Authenticator>,
    /// Records sign-ins and refusals.
    pub audit: Arc<audit::Audit>,
    /// One permit per viewer connection; caps them at `server.max_connections`.
    pub connections: Arc<Semaphore>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every viewer task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// The whole HTTP surface: one router per concern, merged here.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(monti_protocol::STREAM_PATH, get(stream::upgrade))
        .merge(http::api_router())
        .merge(http::ops_router())
        .fallback(http::fallback)
        .with_state(state)
}

/// Runs the server on `listener` until `shutdown` is cancelled, then closes viewers with a
/// reason, flushes history to the database and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.check()?;
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let db = Db::connect(&config.database).await?;
    let roster = config
        .simulator
        .enabled
        .then(|| sim::roster(&config.simulator));
    if let Some(roster) = &roster {
        db.sync_roster(roster, sim::now_ms() as i64)
            .await
            .context("cannot store the simulated roster")?;
    }
    let stored = db.load_roster().await?;
    let (history_tx, history_rx) = mpsc::channel(config.database.history_queue.max(1));
    let (audit_tx, audit_rx) = mpsc::channel(10_000);
    let live = Arc::new(LiveFloor::new(
        &stored,
        config.server.queue_ticks,
        history_tx,
        metrics.clone(),
        sim::now_ms(),
    )?);
    let state = AppState {
        config: config.clone(),
        live: live.clone(),
        db: db.clone(),
        metrics: metrics.clone(),
        auth: Arc::new(auth::Authenticator::from_config(&config.auth)?),
        audit: Arc::new(audit::Audit::new(audit_tx, metrics.clone())),
        connections: Arc::new(Semaphore::new(config.server.max_connections)),
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
    };
    // Background tasks stop on their own token, after the viewers have been told.
    let background = CancellationToken::new();
    let history = tokio::spawn(write_history(
        db.clone(),
        history_rx,
        Duration::from_millis(config.database.history_batch_ms.max(10)),
        metrics.clone(),
    ));
    let audit_writer = tokio::spawn(audit::write(db.clone(), audit_rx, metrics.clone()));
    let ticker = tokio::spawn(tick(live.clone(), config.server.tick(), background.clone()));
    let simulator = roster.map(|roster| {
        tokio::spawn(sim::run(
            config.simulator.clone(),
            roster,
            live.clone(),
            background.clone(),
        ))
    });

    let addr = listener.local_addr()?;
    match config.auth.mode {
        config::AuthMode::None => {
            tracing::warn!("auth mode none: every caller is treated as the local administrator")
        }
        config::AuthMode::Oidc => {
            tracing::info!(issuer = %config.auth.issuer, "sign-in through OpenID Connect")
        }
    }
    tracing::info!(%addr, agents = stored.agents.len(), database = ?db.engine(), "monti-server listening");
    let send_buffer = config.server.socket_send_buffer;
    let listener = listener.tap_io(move |tcp| {
        // Deltas are small and latency matters more than packet count.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        if send_buffer > 0
            && let Err(err) = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer)
        {
            tracing::debug!(%err, "cannot set the socket send buffer");
        }
    });
    let tasks = state.tasks.clone();
    // Kept until shutdown so the audit queue outlives every request that records into it.
    let state_for_shutdown = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("server failed")?;

    tracing::info!("shutting down: closing viewers");
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some viewers did not close within 5 s");
    }
    background.cancel();
    if let Some(simulator) = simulator {
        let _ = simulator.await;
    }
    let _ = ticker.await;
    // The history and audit writers end once every sender is gone (the live floor and the
    // state hold the last ones), after writing what is queued.
    drop(live);
    drop(state_for_shutdown);
    let _ = tokio::time::timeout(Duration::from_secs(10), audit_writer).await;
    match tokio::time::timeout(Duration::from_secs(10), history).await {
        Ok(_) => tracing::info!("history flushed"),
        Err(_) => tracing::warn!("history did not flush within 10 s"),
    }
    db.close().await;
    Ok(())
}

/// Commits pending changes once per tick.
async fn tick(live: Arc<LiveFloor>, every: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => { live.tick(sim::now_ms()); }
        }
    }
    live.tick(sim::now_ms());
}

/// Writes history in batches until the channel closes, then writes what is left. A failed batch
/// is retried once and then dropped (and counted), so a broken database never stops the floor.
async fn write_history(
    db: Db,
    mut rows: mpsc::Receiver<HistoryRow>,
    every: Duration,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(4096);
    let mut open = true;
    while open {
        let deadline = tokio::time::sleep(every);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                row = rows.recv() => match row {
                    Some(row) => {
                        batch.push(row);
                        if batch.len() >= 10_000 { break; }
                    }
                    None => { open = false; break; }
                },
                _ = &mut deadline => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let mut result = db.write_history(&batch).await;
        if result.is_err() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            result = db.write_history(&batch).await;
        }
        match result {
            Ok(()) => {
                metrics.history_written.inc_by(batch.len() as u64);
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    rows = batch.len(),
                    "dropping state history rows"
                );
                metrics.history_dropped.inc_by(batch.len() as u64);
            }
        }
        batch.clear();
    }
}
