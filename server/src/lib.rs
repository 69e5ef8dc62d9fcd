//! MONTI server: keeps the live floor of a call center in memory and streams it to viewers.
//!
//! Foundations, importing nothing else of the server:
//! - [`config`]: settings from defaults, a TOML file, environment variables and flags.
//! - [`error`]: what a request fails with, and how each failure is answered.
//! - [`clock`]: the server's time, one [`clock::Clock`] handed to everything that reads it.
//! - [`change`]: a committed fact in database terms, as stored, applied and shared.
//! - [`metrics`]: Prometheus metrics.
//! - [`token`]: checking access tokens (JWTs) against the identity provider's published keys.
//!
//! The write side:
//! - [`plan`]: the rules, without IO: what a group of events or a roster sync stores and changes,
//!   decided against a [`plan::Catalog`] of what the floor knows.
//! - [`ingest`]: the one writer task (a transaction per group of batches, driving a plan), the
//!   event and roster APIs, the stale sweep, history retention and reconciles.
//! - [`amazon_connect`]: Amazon Connect agent events delivered by Firehose.
//! - [`sim`]: the simulated floor that feeds the live floor through the ingest path.
//! - [`db`]: the SQL adapter (SQLite or PostgreSQL): master data and state history.
//! - [`share`]: the Redis stream that carries committed changes between servers.
//!
//! The floor and its viewers:
//! - [`live`]: the live floor, pending changes, ticks and their broadcast.
//! - [`stream`]: the WebSocket stream, one task per viewer.
//! - [`http`]: REST, health, readiness and metrics.
//!
//! Callers and connections:
//! - [`auth`]: roles, actions and the one `can(caller, action)`; refusals that say why.
//! - [`auth_check`]: the sign-in self-check at start-up and `--check-auth`.
//! - [`audit`]: the audit log (sign-ins, refusals, configuration changes).
//! - [`listen`]: accepting connections (plain or TLS) with header deadlines and per-address caps.
//! - [`tls`]: serving https and wss directly, with certificate reload.
//! - [`peer`]: the client's address and scheme, forwarded only by trusted proxies.
//!
//! [`run`] wires them together; `main.rs` only parses configuration and sets up logging.

pub mod amazon_connect;
pub mod audit;
pub mod auth;
pub mod auth_check;
pub mod change;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod live;
pub mod metrics;
pub mod peer;
pub mod plan;
pub mod share;
pub mod sim;
pub mod stream;
pub mod tls;
pub mod token;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
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
    /// Stores events and roster changes, then applies them.
    pub ingest: ingest::Ingest,
    /// With Redis: whether this server has joined the shared floor.
    pub joined: Option<share::Joined>,
    /// `[server] trusted_proxies`, parsed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The time.
    pub clock: Clock,
}

/// The whole HTTP surface: one router per concern, merged here.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(monti_protocol::STREAM_PATH, get(stream::upgrade))
        .merge(http::api_router())
        .merge(ingest::router())
        .merge(amazon_connect::router())
        .merge(http::ops_router())
        .fallback(http::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            peer::layer,
        ))
        .with_state(state)
}

/// Runs the server on `listener` until `shutdown` is cancelled, then closes viewers with a
/// reason, flushes history to the database and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_clock(listener, config, Clock::system(), shutdown).await
}

/// [`run`] on a clock of the caller's (tests hand it a [`clock::ManualClock`]'s).
pub async fn run_with_clock(
    listener: TcpListener,
    config: Config,
    clock: Clock,
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
    let (audit_tx, audit_rx) = mpsc::channel(10_000);
    let (live, writes) = LiveFloor::new(
        &db.load_floor().await?,
        config.server.queue_ticks,
        metrics.clone(),
        clock.now_ms(),
    )?;
    let live = Arc::new(live);
    // Background tasks stop on their own token, after the viewers have been told.
    let background = CancellationToken::new();
    let shared = (!config.redis.url.is_empty()).then(share::publisher);
    // The one writer: it alone holds the right to change the floor (`writes`).
    let (ingest, writer) = ingest::Ingest::start(
        db.clone(),
        live.clone(),
        writes,
        shared.as_ref().map(|(publisher, _)| publisher.clone()),
        config.ingest.clone(),
        metrics.clone(),
        clock.clone(),
    );
    // The simulated roster goes through the writer like every roster change; the simulator
    // then needs only the agents' ids.
    let simulated = match roster {
        Some(roster) => {
            let ids: Vec<String> = (roster.roster.agents.iter())
                .map(|agent| agent.external_id.clone())
                .collect();
            ingest
                .roster(roster)
                .await
                .context("cannot store the simulated roster")?;
            Some(ids)
        }
        None => None,
    };
    let share = match shared {
        None => None,
        Some((_, published)) => {
            if config.simulator.enabled {
                tracing::warn!(
                    "the simulator is on with a shared floor: every server running it simulates \
                     the same agents; turn it off on all but one"
                );
            }
            Some(share::start(
                &config.redis,
                published,
                ingest.clone(),
                live.clone(),
                metrics.clone(),
                clock.clone(),
                background.clone(),
            )?)
        }
    };
    let state = AppState {
        config: config.clone(),
        live: live.clone(),
        db: db.clone(),
        metrics: metrics.clone(),
        auth: Arc::new(auth::Authenticator::from_config(&config.auth)?),
        audit: Arc::new(audit::Audit::new(audit_tx, metrics.clone(), clock.clone())),
        connections: Arc::new(Semaphore::new(config.server.max_connections)),
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
        ingest: ingest.clone(),
        joined: share.as_ref().map(|share| share.joined.clone()),
        trusted_proxies: Arc::new(config.server.trusted_proxy_nets()?),
        clock: clock.clone(),
    };
    if config.auth.mode == config::AuthMode::Oidc {
        // Each step logged; nothing here keeps the server from starting.
        let (config, live) = (config.clone(), live.clone());
        tokio::spawn(async move {
            auth_check::log(&auth_check::provider(&config.auth).await);
            auth_check::log(&auth_check::bindings(
                &config.auth,
                |team| live.team_id(team).is_some(),
                |site| live.site_id(site).is_some(),
            ));
        });
    }
    let audit_writer = tokio::spawn(audit::write(db.clone(), audit_rx, metrics.clone()));
    let ticker = tokio::spawn(tick(
        live.clone(),
        config.server.tick(),
        clock.clone(),
        background.clone(),
    ));
    let stale = tokio::spawn(ingest::watch_stale(
        ingest.clone(),
        Duration::from_secs(config.ingest.stale_after_secs.max(1)),
        background.clone(),
    ));
    let prune = tokio::spawn(ingest::prune_history(
        db.clone(),
        config.database.history_retention_days,
        clock.clone(),
        background.clone(),
    ));
    let reconcile = tokio::spawn(ingest::reconcile(
        ingest.clone(),
        Duration::from_secs(config.database.reconcile_secs.max(1)),
        background.clone(),
    ));
    let simulator = simulated.map(|ids| {
        tokio::spawn(sim::run(
            config.simulator.clone(),
            ids,
            ingest.clone(),
            clock.clone(),
            background.clone(),
        ))
    });
    drop(ingest);

    let addr = listener.local_addr()?;
    match config.auth.mode {
        config::AuthMode::None => {
            tracing::warn!("auth mode none: every caller is treated as the local administrator")
        }
        config::AuthMode::Oidc => {
            tracing::info!(issuer = %config.auth.issuer, "sign-in through OpenID Connect")
        }
    }
    let scheme = if config.server.tls() { "https" } else { "http" };
    tracing::info!(%addr, scheme, agents = live.read(monti_protocol::floor::Floor::n_agents), database = ?db.engine(), "monti-server listening");
    let send_buffer = config.server.socket_send_buffer;
    let tune = move |tcp: &tokio::net::TcpStream| {
        // Deltas are small and latency matters more than packet count.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        if send_buffer > 0
            && let Err(err) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer)
        {
            tracing::debug!(%err, "cannot set the socket send buffer");
        }
    };
    let tasks = state.tasks.clone();
    // Kept until shutdown so the audit queue outlives every request that records into it.
    let state_for_shutdown = state.clone();
    let tls = if config.server.tls() {
        Some(tls::acceptor(
            Path::new(&config.server.tls_cert),
            Path::new(&config.server.tls_key),
            metrics.clone(),
            background.clone(),
        )?)
    } else {
        None
    };
    let limits = listen::Limits {
        header_read: Duration::from_secs(config.server.header_timeout_secs),
        per_address: config.server.max_connections_per_address,
        trusted: state.trusted_proxies.clone(),
    };
    listen::serve(
        listener,
        tls,
        router(state),
        limits,
        tune,
        metrics.clone(),
        shutdown.clone(),
    )
    .await;

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
    let _ = tokio::join!(stale, prune, reconcile);
    // The link to the other servers holds a handle to the writer too.
    if let Some(share) = share {
        share.join().await;
    }
    // The ingest writer ends once every handle is gone (the state holds the last one), after
    // storing what is queued; the audit writer likewise.
    drop(state_for_shutdown);
    if tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .is_err()
    {
        tracing::warn!("queued events were not stored within 10 s");
    }
    let _ = ticker.await;
    drop(live);
    let _ = tokio::time::timeout(Duration::from_secs(10), audit_writer).await;
    db.close().await;
    Ok(())
}

/// Commits pending changes once per tick.
async fn tick(live: Arc<LiveFloor>, every: Duration, clock: Clock, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => { live.tick(clock.now_ms()); }
        }
    }
    live.tick(clock.now_ms());
}
