//! MONTI server: keeps the live floor of a call center in memory and streams it to viewers.
//!
//! The folders are the layers; each module's header says what it holds:
//! - [`core`]: the write side's pure core (`Change`, the `Clock`, the plan that decides what
//!   events and roster syncs do). No IO; imports only `config` besides the protocol.
//! - [`store`]: the database (SQLite or PostgreSQL) and the Redis stream between servers.
//! - [`sources`]: the one writer (`ingest`) and what feeds it: the ingest API, Amazon Connect,
//!   the simulator.
//! - [`floor`]: the live floor in memory, its ticks, and the WebSocket stream to viewers.
//! - [`api`]: REST, errors, sign-in (roles, tokens, the self-check) and the audit log.
//! - [`net`]: accepting connections, TLS, the client's address.
//! - [`config`] and [`metrics`], used by all of them.
//!
//! [`run`] wires them together; `main.rs` only parses configuration and sets up logging.

pub mod api;
pub mod config;
pub mod core;
pub mod floor;
pub mod metrics;
pub mod net;
pub mod sources;
pub mod store;

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

use crate::api::{access, audit, auth, auth_check, feedback, http, queues, trend};
use crate::config::Config;
use crate::core::clock::Clock;
use crate::floor::live::LiveFloor;
use crate::floor::stream;
use crate::metrics::Metrics;
use crate::net::{listen, peer, tls};
use crate::sources::{amazon_connect, connect_contacts, ingest, sim};
use crate::store::db::Db;
use crate::store::{db, share};

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
    /// The role bindings in force.
    pub access: Arc<access::Access>,
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
    /// Trend answers shared between viewers.
    pub trends: Arc<trend::Trends>,
}

/// The whole HTTP surface: one router per concern, merged here.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(monti_protocol::STREAM_PATH, get(stream::upgrade))
        .merge(http::api_router())
        .merge(access::router())
        .merge(feedback::router())
        .merge(queues::router())
        .merge(trend::router())
        .merge(ingest::router())
        .merge(amazon_connect::router())
        .merge(connect_contacts::router())
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

/// [`run`] on a clock of the caller's (tests hand it a [`ManualClock`](crate::core::clock::ManualClock)'s).
///
/// In order: the floor from the database, the one writer, the simulated roster through it, the
/// link to the other servers, the background tasks; then connections until `shutdown`; then
/// viewers closed, background tasks stopped, the writer's queue stored.
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
    let now = clock.now_ms();
    let short_ms = config.queues.short_abandon_secs * 1000;
    let (live, writes) = LiveFloor::new(
        &(db.load_floor(now, config.queues.zone().midnight(now), short_ms)
            .await)?,
        config.server.queue_ticks,
        &config.queues,
        metrics.clone(),
        now,
    )?;
    let live = Arc::new(live);
    // Background tasks stop on their own token, after the viewers have been told.
    let background = CancellationToken::new();
    let shared = (!config.redis.url.is_empty()).then(ingest::publisher);
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
    let simulated = simulated_roster(&config, &ingest).await?;
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
    let (audit_tx, audit_rx) = mpsc::channel(10_000);
    let (access, seeded) = access::Access::load(&db, &config.auth.bindings, now).await?;
    let state = AppState {
        config: config.clone(),
        live: live.clone(),
        db: db.clone(),
        metrics: metrics.clone(),
        auth: Arc::new(auth::Authenticator::from_config(&config.auth)?),
        audit: Arc::new(audit::Audit::new(audit_tx, metrics.clone(), clock.clone())),
        access: Arc::new(access),
        connections: Arc::new(Semaphore::new(config.server.max_connections)),
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
        ingest,
        joined: share.as_ref().map(|share| share.joined.clone()),
        trusted_proxies: Arc::new(config.server.trusted_proxy_nets()?),
        clock,
        trends: Arc::default(),
    };
    if let Some(seeded) = seeded {
        tracing::info!("{seeded}");
        state.audit.access_changed(None, &seeded);
    }
    check_sign_in(&config, &live, &state.access.now().stored.bindings);
    let mut tasks = Background::spawn(&state, audit_rx, simulated, &background);
    // Kept until shutdown so the audit queue outlives every request that records into it.
    let state_for_shutdown = state.clone();
    serve(listener, state, &background).await?;

    tracing::info!("shutting down: closing viewers");
    shutdown.cancel();
    let viewers = state_for_shutdown.tasks.clone();
    viewers.close();
    if tokio::time::timeout(Duration::from_secs(5), viewers.wait())
        .await
        .is_err()
    {
        tracing::warn!("some viewers did not close within 5 s");
    }
    background.cancel();
    tasks.stop_feeding().await;
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
    tasks.stop_rest().await;
    drop(live);
    db.close().await;
    Ok(())
}

/// Stores the simulated roster through the writer like every roster change, when the
/// simulator is on; the simulator then needs only the agents' ids.
async fn simulated_roster(
    config: &Config,
    ingest: &ingest::Ingest,
) -> anyhow::Result<Option<Vec<String>>> {
    if !config.simulator.enabled {
        return Ok(None);
    }
    let roster = sim::roster(&config.simulator);
    let ids: Vec<String> = (roster.roster.agents.iter())
        .map(|agent| agent.external_id.clone())
        .collect();
    ingest
        .roster(roster)
        .await
        .context("cannot store the simulated roster")?;
    Ok(Some(ids))
}

/// Logs each step of the sign-in self-check; nothing here keeps the server from starting.
fn check_sign_in(config: &Arc<Config>, live: &Arc<LiveFloor>, bindings: &[config::GroupBinding]) {
    if config.auth.mode != config::AuthMode::Oidc {
        return;
    }
    // The bindings in force, which may be the Admin screen's rather than the file's.
    let mut auth = config.auth.clone();
    auth.bindings = bindings.to_vec();
    let live = live.clone();
    tokio::spawn(async move {
        auth_check::log(&auth_check::provider(&auth).await);
        auth_check::log(&auth_check::bindings(
            &auth,
            |team| live.team_id(team).is_some(),
            |site| live.site_id(site).is_some(),
        ));
    });
}

/// The server's own tasks beside the connections.
struct Background {
    audit_writer: tokio::task::JoinHandle<()>,
    ticker: tokio::task::JoinHandle<()>,
    stale: tokio::task::JoinHandle<()>,
    prune: tokio::task::JoinHandle<()>,
    reconcile: tokio::task::JoinHandle<()>,
    reread_access: tokio::task::JoinHandle<()>,
    simulator: Option<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Starts them; they stop when `stop` is cancelled (the audit writer when the state's
    /// last handle on its queue is gone).
    fn spawn(
        state: &AppState,
        audit_rx: mpsc::Receiver<db::AuditEvent>,
        simulated: Option<Vec<String>>,
        stop: &CancellationToken,
    ) -> Background {
        let config = &state.config;
        Background {
            audit_writer: tokio::spawn(audit::write(
                state.db.clone(),
                audit_rx,
                state.metrics.clone(),
            )),
            ticker: tokio::spawn(tick(
                state.live.clone(),
                config.server.tick(),
                state.clock.clone(),
                stop.clone(),
            )),
            stale: tokio::spawn(ingest::watch_stale(
                state.ingest.clone(),
                Duration::from_secs(config.ingest.stale_after_secs.max(1)),
                stop.clone(),
            )),
            prune: tokio::spawn(ingest::prune_history(
                state.db.clone(),
                config.database.history_retention_days,
                state.clock.clone(),
                stop.clone(),
            )),
            reconcile: tokio::spawn(ingest::reconcile(
                state.ingest.clone(),
                Duration::from_secs(config.database.reconcile_secs.max(1)),
                stop.clone(),
            )),
            reread_access: tokio::spawn(access::reread(state.clone(), stop.clone())),
            simulator: simulated.map(|ids| {
                tokio::spawn(sim::run(
                    config.simulator.clone(),
                    ids,
                    state.ingest.clone(),
                    state.clock.clone(),
                    stop.clone(),
                ))
            }),
        }
    }

    /// Waits for the tasks that feed the writer (once `stop` is cancelled).
    async fn stop_feeding(&mut self) {
        if let Some(simulator) = self.simulator.take() {
            let _ = simulator.await;
        }
        let _ = tokio::join!(
            &mut self.stale,
            &mut self.prune,
            &mut self.reconcile,
            &mut self.reread_access
        );
    }

    /// Waits for the last tick and the audit writer, once the writer has stored its queue.
    async fn stop_rest(self) {
        let _ = self.ticker.await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.audit_writer).await;
    }
}

/// Accepts connections until the state's shutdown token is cancelled.
async fn serve(
    listener: TcpListener,
    state: AppState,
    background: &CancellationToken,
) -> anyhow::Result<()> {
    let config = state.config.clone();
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
    tracing::info!(%addr, scheme, agents = state.live.read(monti_protocol::floor::Floor::n_agents), database = ?state.db.engine(), "monti-server listening");
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
    let tls = if config.server.tls() {
        Some(tls::acceptor(
            Path::new(&config.server.tls_cert),
            Path::new(&config.server.tls_key),
            state.metrics.clone(),
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
    let (metrics, shutdown) = (state.metrics.clone(), state.shutdown.clone());
    listen::serve(
        listener,
        tls,
        router(state),
        limits,
        tune,
        metrics,
        shutdown,
    )
    .await;
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
