//! Server configuration: defaults that need nothing, a TOML file, environment variables and flags.
//!
//! Precedence, lowest first: built-in defaults, the file given by `--config` (or
//! `MONTI_CONFIG`), environment variables, flags. Every setting has an environment variable named
//! after its place in the file: `[database] url` is `MONTI_DATABASE_URL`. This module only
//! parses and checks; it starts nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
pub use monti_protocol::access::{GroupBinding, Role};
use monti_protocol::model::StateKind;
use monti_protocol::queue::{QueueRules, ServiceLevelRule};
use serde::{Deserialize, Serialize};

/// Everything the server can be told. The file has the same sections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening, the stream and its limits.
    pub server: ServerConfig,
    /// Where history and master data live.
    pub database: DatabaseConfig,
    /// The simulated floor.
    pub simulator: SimulatorConfig,
    /// Logging.
    pub log: LogConfig,
    /// Who may connect, and as what.
    pub auth: AuthConfig,
    /// Agent events from telephony systems.
    pub ingest: IngestConfig,
    /// Amazon Connect agent events delivered by Amazon Data Firehose.
    pub amazon_connect: AmazonConnectConfig,
    /// Sharing one floor between several servers.
    pub redis: RedisConfig,
    /// Queue figures.
    pub queues: QueuesConfig,
    /// Which apps the server supports.
    pub clients: ClientsConfig,
}

/// `[clients]`: the oldest desktop app and CLI the server supports, and where newer ones are.
/// Apps read it from `GET /api/v1/auth` before they connect and, when older, say "update MONTI
/// to x.y.z" with the link instead of failing on the protocol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientsConfig {
    /// `major.minor.patch`; empty for none.
    pub oldest_version: String,
    /// An `https://` (or `http://`) address; empty for none.
    pub download_url: String,
}

impl ClientsConfig {
    /// `[clients]`: a version the apps can compare, a link they can open.
    fn check(&self) -> anyhow::Result<()> {
        if !self.oldest_version.is_empty()
            && monti_protocol::rest::parse_version(&self.oldest_version).is_none()
        {
            bail!(
                "clients.oldest_version must be major.minor.patch, such as 0.2.0, not {:?}",
                self.oldest_version
            );
        }
        let link = ["https://", "http://"]
            .iter()
            .any(|scheme| self.download_url.starts_with(scheme));
        if !self.download_url.is_empty() && !link {
            bail!(
                "clients.download_url must start with https:// or http://, not {:?}",
                self.download_url
            );
        }
        if self.oldest_version.is_empty() && !self.download_url.is_empty() {
            bail!(
                "clients.download_url needs clients.oldest_version: apps use it only when they are older"
            );
        }
        Ok(())
    }

    /// What `GET /api/v1/auth` says, when anything.
    pub fn json(&self) -> Option<monti_protocol::rest::ClientsJson> {
        (!self.oldest_version.is_empty()).then(|| monti_protocol::rest::ClientsJson {
            oldest_version: self.oldest_version.clone(),
            download_url: Some(self.download_url.clone()).filter(|url| !url.is_empty()),
        })
    }
}

/// `[queues]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueuesConfig {
    /// The service level formula (see `monti_protocol::queue`).
    pub service_level: ServiceLevelRule,
    /// An abandon within this many seconds is a short abandon.
    pub short_abandon_secs: u64,
    /// The rolling window of the live figures on the stream, minutes (1 to 60).
    pub recent_minutes: u16,
    /// The time zone "today" and the intervals are counted in: an IANA name such as
    /// `Europe/Berlin`, or empty for the server's own.
    pub time_zone: String,
}

impl QueuesConfig {
    /// `[queues]`: the window and the short-abandon threshold in range.
    fn check(&self) -> anyhow::Result<()> {
        if !(1..=60).contains(&self.recent_minutes) {
            bail!(
                "queues.recent_minutes must be between 1 and 60, not {}",
                self.recent_minutes
            );
        }
        crate::core::clock::Zone::parse(&self.time_zone)
            .map_err(|err| anyhow::anyhow!("queues.time_zone: {err}"))?;
        if self.short_abandon_secs > 600 {
            bail!(
                "queues.short_abandon_secs must be at most 600, not {}",
                self.short_abandon_secs
            );
        }
        Ok(())
    }

    /// The time zone of the queue figures' days (checked at start: the server's own if not).
    pub fn zone(&self) -> crate::core::clock::Zone {
        crate::core::clock::Zone::parse(&self.time_zone).unwrap_or_default()
    }

    /// How the stream counts queue figures.
    pub fn rules(&self) -> QueueRules {
        QueueRules {
            service_level: self.service_level,
            short_abandon_secs: self.short_abandon_secs as u32,
            recent_minutes: self.recent_minutes,
        }
    }
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            service_level: ServiceLevelRule::default(),
            short_abandon_secs: 5,
            recent_minutes: 15,
            time_zone: String::new(),
        }
    }
}

/// `[ingest]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// What an event for an agent MONTI does not know does: `create` the agent (in the event's
    /// team and site, or the defaults below) or `refuse` the event.
    pub unknown_agents: UnknownAgents,
    /// The team of an agent created without one.
    pub default_team: String,
    /// The site of an agent created without one.
    pub default_site: String,
    /// The largest request body `POST /api/v1/events` and `/api/v1/roster` take (413 beyond).
    pub max_body_bytes: usize,
    /// The most events one batch may hold (422 beyond).
    pub max_events: usize,
    /// An agent whose source sends heartbeats (Amazon Connect) and who is neither offline nor
    /// heard of for this long is shown as stale.
    pub stale_after_secs: u64,
    /// Events whose state began more than this many days ago are refused (a replay, or a
    /// `since_ms` of 1970, is not anyone's state).
    pub max_event_age_days: u64,
    /// Events whose state begins more than this many seconds ahead of the server's clock are
    /// refused.
    pub max_clock_skew_secs: u64,
}

impl IngestConfig {
    /// The window of `since_ms` events are taken in.
    pub fn window(&self) -> monti_protocol::ingest::EventWindow {
        monti_protocol::ingest::EventWindow {
            max_skew_ms: self.max_clock_skew_secs.saturating_mul(1000),
            max_age_ms: self.max_event_age_days.saturating_mul(24 * 3600 * 1000),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            unknown_agents: UnknownAgents::Create,
            default_team: "Unassigned".to_owned(),
            default_site: "Unassigned".to_owned(),
            max_body_bytes: 4 * 1024 * 1024,
            max_events: 10_000,
            stale_after_secs: 300,
            max_event_age_days: 7,
            max_clock_skew_secs: 300,
        }
    }
}

/// See [`IngestConfig::unknown_agents`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum UnknownAgents {
    /// Create them.
    Create,
    /// Refuse their events.
    Refuse,
}

/// `[amazon_connect]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmazonConnectConfig {
    /// The access key Firehose sends in `X-Amz-Firehose-Access-Key`; empty turns the endpoint
    /// off.
    pub access_key: String,
    /// Which agent hierarchy level (1 to 5) names the site; 0 for none (the default site).
    pub site_level: u8,
    /// Which hierarchy level names the team; 0 for none (the default team).
    pub team_level: u8,
    /// The largest Firehose request taken (Firehose sends up to its buffer size, 1 to 64 MiB),
    /// after decompression.
    pub max_body_bytes: usize,
    /// What an agent status means when its event carries no `Type` (AWS's own samples have
    /// none), or a `CUSTOM` status that should not count as not ready: status name (any case)
    /// to state name. Added to the built-in `Available` -> `available` and `Offline` ->
    /// `offline`; any other status is not ready with its name as the reason.
    pub status_names: std::collections::BTreeMap<String, String>,
    /// The API key an EventBridge API destination sends with contact events, in
    /// `eventbridge_key_header`; empty turns the contact events endpoint off.
    pub eventbridge_key: String,
    /// The header the API destination's connection puts the key in.
    pub eventbridge_key_header: String,
    /// Queue names by queue ARN or queue id; a queue not named here is called by its id.
    pub queue_names: std::collections::BTreeMap<String, String>,
}

impl Default for AmazonConnectConfig {
    fn default() -> Self {
        AmazonConnectConfig {
            access_key: String::new(),
            site_level: 1,
            team_level: 2,
            max_body_bytes: 16 * 1024 * 1024,
            status_names: std::collections::BTreeMap::new(),
            eventbridge_key: String::new(),
            eventbridge_key_header: "x-monti-key".to_owned(),
            queue_names: std::collections::BTreeMap::new(),
        }
    }
}

/// `[redis]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:6379` (or `rediss://` for TLS); empty for one server on its own.
    pub url: String,
    /// The Redis stream the servers share changes on.
    pub stream: String,
    /// About how many changes the stream keeps for servers that briefly lose their link.
    pub max_len: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            stream: "monti:changes".to_owned(),
            max_len: 100_000,
        }
    }
}

/// `[auth]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `none` (every caller is the local administrator; loopback addresses only) or `oidc`.
    pub mode: AuthMode,
    /// The OpenID Connect provider's issuer URL, exactly as in its tokens.
    pub issuer: String,
    /// The audience of MONTI's API in access tokens.
    pub audience: String,
    /// The public client the apps sign in with (the device flow); announced in the handshake.
    pub client_id: String,
    /// The token claim that lists the user's groups.
    pub groups_claim: String,
    /// Clock skew tolerated on token times, seconds.
    pub leeway_secs: u64,
    /// Which groups get which role, and where.
    pub bindings: Vec<GroupBinding>,
    /// Least time between two fetches of the provider's keys for unknown key ids, seconds.
    pub keys_refetch_secs: u64,
    /// The scopes the apps ask for, announced in `/api/v1/auth`. Providers that pick the API by
    /// scope need it here (Entra ID: `openid offline_access api://<app>/.default`).
    pub scopes: String,
    /// Whether the apps name the API with the `resource` parameter (RFC 8707, the audience);
    /// off for providers that pick it by scope and refuse the parameter (Entra ID v2).
    pub resource_indicator: bool,
    /// A fixed loopback callback for the browser sign-in (providers without the device flow
    /// that match callbacks exactly, as Amazon Cognito): `http://localhost:<port>/callback`.
    /// Empty: the apps listen on `127.0.0.1` on a port chosen per attempt (RFC 8252).
    pub redirect_uri: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            issuer: String::new(),
            audience: String::new(),
            client_id: String::new(),
            groups_claim: "groups".to_owned(),
            leeway_secs: 60,
            bindings: Vec::new(),
            keys_refetch_secs: 30,
            scopes: "openid offline_access".to_owned(),
            resource_indicator: true,
            redirect_uri: String::new(),
        }
    }
}

/// How callers are identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No sign-in: every caller is the local administrator. Only on loopback addresses.
    None,
    /// Bearer tokens from an OpenID Connect provider.
    Oidc,
}

/// `[server]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Most WebSocket viewers at once; further ones get 503.
    pub max_connections: usize,
    /// How often changes are coalesced and sent, in milliseconds.
    pub tick_ms: u64,
    /// Keepalive interval on quiet connections, in seconds; a peer silent for three intervals
    /// is dropped.
    pub keepalive_secs: u64,
    /// How many ticks a viewer may fall behind before it is resynced with a fresh snapshot.
    pub queue_ticks: usize,
    /// How many resyncs within a minute a viewer may need before it is disconnected as too slow.
    pub max_resyncs_per_minute: usize,
    /// How long one send to a viewer may block before the viewer is disconnected, in seconds.
    pub send_timeout_secs: u64,
    /// Agents per snapshot chunk. Each viewer's connection keeps a buffer as large as the
    /// largest frame it sent, so this bounds memory per viewer (at 100,000 agents: 4096 kept
    /// about 150 KB per viewer, 1024 about 60 KB; docs/PERFORMANCE.md).
    pub snapshot_chunk_agents: usize,
    /// Kernel send buffer per viewer socket in bytes; 0 leaves it to the operating system.
    /// A fixed size bounds kernel memory per viewer and makes a slow viewer show up sooner.
    pub socket_send_buffer: usize,
    /// Certificate chain (PEM) for serving https and wss directly; empty serves plain http
    /// (behind a TLS-terminating load balancer). Reloaded when the file changes.
    pub tls_cert: String,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1); set with `tls_cert`.
    pub tls_key: String,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` and `X-Forwarded-Proto`
    /// headers are believed; from anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
    /// Seconds a connection may take to send a request's header, counted from when the server
    /// waits for one (so an idle kept-alive connection is closed after this too).
    pub header_timeout_secs: u64,
    /// Seconds a request (its body included) may take before it is answered 408; the stream
    /// is not limited once upgraded.
    pub request_timeout_secs: u64,
    /// Open connections from one client address (trusted proxies are not counted); further
    /// ones are closed at once.
    pub max_connections_per_address: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 2_000,
            tick_ms: 100,
            keepalive_secs: 10,
            queue_ticks: 50,
            max_resyncs_per_minute: 3,
            send_timeout_secs: 10,
            snapshot_chunk_agents: 1_024,
            socket_send_buffer: 0,
            tls_cert: String::new(),
            tls_key: String::new(),
            trusted_proxies: Vec::new(),
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections_per_address: 1_024,
        }
    }
}

impl ServerConfig {
    /// Whether the server serves TLS itself.
    pub fn tls(&self) -> bool {
        !self.tls_cert.is_empty()
    }

    /// [`ServerConfig::trusted_proxies`] as address ranges (a bare address is a range of one).
    pub fn trusted_proxy_nets(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "server.trusted_proxies: {text:?} is not an address or a CIDR range"
                        )
                    })
            })
            .collect()
    }

    /// [`ServerConfig::tick_ms`] as a duration.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms)
    }

    /// [`ServerConfig::keepalive_secs`] as a duration.
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs)
    }
}

/// `[database]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long state history is kept, in days (0: forever).
    pub history_retention_days: u64,
    /// How often the floor is checked against the database, in seconds (also 3 s after start).
    pub reconcile_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/monti.db".to_owned(),
            max_connections: 5,
            history_retention_days: 31,
            reconcile_secs: 300,
        }
    }
}

/// `[simulator]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Whether the simulated floor runs.
    pub enabled: bool,
    /// How many agents it simulates.
    pub agents: u32,
    /// Seed: the same seed gives the same roster and the same day.
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated time of day at start, `HH:MM`.
    pub start_time: String,
    /// Stop producing events after this many simulated minutes (0: never). Tests use it to let
    /// the floor come to rest.
    pub duration_minutes: u64,
    /// How many queues the agents serve (0: one per 60 agents, at most 1,000; never more than
    /// there are teams).
    pub queues: u32,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            enabled: true,
            agents: 2_000,
            seed: 1,
            speed: 1.0,
            start_time: "11:00".to_owned(),
            duration_minutes: 0,
            queues: 0,
        }
    }
}

impl SimulatorConfig {
    /// [`SimulatorConfig::start_time`] in seconds after midnight.
    pub fn start_second_of_day(&self) -> anyhow::Result<u64> {
        let (hours, minutes) = self
            .start_time
            .split_once(':')
            .context("simulator.start_time must look like HH:MM")?;
        let hours: u64 = hours.parse().context("simulator.start_time hours")?;
        let minutes: u64 = minutes.parse().context("simulator.start_time minutes")?;
        if hours > 23 || minutes > 59 {
            bail!(
                "simulator.start_time {} is not a time of day",
                self.start_time
            );
        }
        Ok(hours * 3600 + minutes * 60)
    }
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Log as JSON lines instead of text.
    pub json: bool,
    /// A `tracing` filter such as `info` or `monti_server=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            json: false,
            filter: "info".to_owned(),
        }
    }
}

/// MONTI server: streams a call-center floor live to desktop apps and wallboards.
///
/// Every option can also be set in the configuration file (section and key as in the option's
/// name) or as an environment variable (shown with each option).
#[derive(Debug, Default, Parser)]
#[command(name = "monti-server", version)]
pub struct Cli {
    /// TOML configuration file; settings in it are overridden by environment variables and flags.
    #[arg(long, env = "MONTI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML (passwords and keys masked) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Ask the server configured here whether it is ready (GET /readyz) and exit 0 if it is:
    /// the container health check, which needs no curl in the image.
    #[arg(long)]
    pub healthcheck: bool,
    /// Check sign-in as configured here and exit: the provider's discovery, issuer, keys and
    /// device flow, the bindings' team and site names, and with --token a token's every rule.
    #[arg(long)]
    pub check_auth: bool,
    /// With --check-auth: an access token to check.
    #[arg(long, requires = "check_auth")]
    pub token: Option<String>,

    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MONTI_SERVER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Most WebSocket viewers at once [default: 2000].
    #[arg(long, env = "MONTI_SERVER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Milliseconds between coalesced updates [default: 100].
    #[arg(long, env = "MONTI_SERVER_TICK_MS")]
    pub tick_ms: Option<u64>,
    /// Seconds between keepalives on a quiet connection [default: 10].
    #[arg(long, env = "MONTI_SERVER_KEEPALIVE_SECS")]
    pub keepalive_secs: Option<u64>,
    /// Ticks a viewer may fall behind before it is resynced [default: 50].
    #[arg(long, env = "MONTI_SERVER_QUEUE_TICKS")]
    pub queue_ticks: Option<usize>,
    /// Resyncs per minute after which a viewer is dropped as too slow [default: 3].
    #[arg(long, env = "MONTI_SERVER_MAX_RESYNCS_PER_MINUTE")]
    pub max_resyncs_per_minute: Option<usize>,
    /// Seconds one send may block before the viewer is dropped [default: 10].
    #[arg(long, env = "MONTI_SERVER_SEND_TIMEOUT_SECS")]
    pub send_timeout_secs: Option<u64>,
    /// Agents per snapshot chunk [default: 1024].
    #[arg(long, env = "MONTI_SERVER_SNAPSHOT_CHUNK_AGENTS")]
    pub snapshot_chunk_agents: Option<usize>,
    /// Kernel send buffer per viewer socket in bytes, 0 for the OS default [default: 0].
    #[arg(long, env = "MONTI_SERVER_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<usize>,
    /// Certificate chain (PEM) to serve https and wss with, reloaded when it changes; empty
    /// serves plain http [default: empty].
    #[arg(long, env = "MONTI_SERVER_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// Private key (PEM) of the TLS certificate [default: empty].
    #[arg(long, env = "MONTI_SERVER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<String>,
    /// Comma-separated addresses or CIDR ranges of proxies whose X-Forwarded-For and
    /// X-Forwarded-Proto are believed [default: none].
    #[arg(long, env = "MONTI_SERVER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Seconds a connection may take to send a request header, idle kept-alive connections
    /// included [default: 10].
    #[arg(long, env = "MONTI_SERVER_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request and its body may take before a 408 [default: 30].
    #[arg(long, env = "MONTI_SERVER_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Open connections from one client address, trusted proxies not counted [default: 1024].
    #[arg(long, env = "MONTI_SERVER_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,

    /// Database URL: sqlite://FILE or postgres://... [default: sqlite://data/monti.db].
    #[arg(long, env = "MONTI_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Database pool size [default: 5].
    #[arg(long, env = "MONTI_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// Days of state history kept; older rows are pruned hourly, 0 keeps all [default: 31].
    #[arg(long, env = "MONTI_DATABASE_HISTORY_RETENTION_DAYS")]
    pub database_history_retention_days: Option<u64>,
    /// Seconds between checks of the floor against the database (also 3 s after start)
    /// [default: 300].
    #[arg(long, env = "MONTI_DATABASE_RECONCILE_SECS")]
    pub database_reconcile_secs: Option<u64>,
    /// Run the simulated floor [default: true].
    #[arg(long, env = "MONTI_SIMULATOR_ENABLED")]
    pub simulator_enabled: Option<bool>,
    /// Number of simulated agents [default: 2000].
    #[arg(long, env = "MONTI_SIMULATOR_AGENTS")]
    pub simulator_agents: Option<u32>,
    /// Seed of the simulated roster and day [default: 1].
    #[arg(long, env = "MONTI_SIMULATOR_SEED")]
    pub simulator_seed: Option<u64>,
    /// Simulated seconds per real second [default: 1].
    #[arg(long, env = "MONTI_SIMULATOR_SPEED")]
    pub simulator_speed: Option<f64>,
    /// Simulated time of day at start, HH:MM [default: 11:00].
    #[arg(long, env = "MONTI_SIMULATOR_START_TIME")]
    pub simulator_start_time: Option<String>,
    /// Stop after this many simulated minutes, 0 for never [default: 0].
    #[arg(long, env = "MONTI_SIMULATOR_DURATION_MINUTES")]
    pub simulator_duration_minutes: Option<u64>,
    /// Queues the simulated agents serve, 0 for one per 60 agents (at most 1000) [default: 0].
    #[arg(long, env = "MONTI_SIMULATOR_QUEUES")]
    pub simulator_queues: Option<u32>,

    /// Log JSON lines [default: false].
    #[arg(long, env = "MONTI_LOG_JSON")]
    pub log_json: Option<bool>,
    /// Log filter, for example info or monti_server=debug [default: info].
    #[arg(long, env = "MONTI_LOG_FILTER")]
    pub log_filter: Option<String>,

    /// Sign-in: none (loopback only) or oidc [default: none].
    #[arg(long, env = "MONTI_AUTH_MODE", value_enum)]
    pub auth_mode: Option<AuthMode>,
    /// OpenID Connect issuer URL.
    #[arg(long, env = "MONTI_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// Audience of MONTI's API in access tokens.
    #[arg(long, env = "MONTI_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// Public client id the apps sign in with.
    #[arg(long, env = "MONTI_AUTH_CLIENT_ID")]
    pub auth_client_id: Option<String>,
    /// Token claim with the user's groups [default: groups].
    #[arg(long, env = "MONTI_AUTH_GROUPS_CLAIM")]
    pub auth_groups_claim: Option<String>,
    /// Clock skew tolerated on token times, seconds [default: 60].
    #[arg(long, env = "MONTI_AUTH_LEEWAY_SECS")]
    pub auth_leeway_secs: Option<u64>,
    /// Least seconds between fetches of the provider's keys for unknown key ids [default: 30].
    #[arg(long, env = "MONTI_AUTH_KEYS_REFETCH_SECS")]
    pub auth_keys_refetch_secs: Option<u64>,
    /// Scopes the apps ask for [default: openid offline_access].
    #[arg(long, env = "MONTI_AUTH_SCOPES")]
    pub auth_scopes: Option<String>,
    /// Whether the apps send the audience as the resource parameter [default: true].
    #[arg(long, env = "MONTI_AUTH_RESOURCE_INDICATOR")]
    pub auth_resource_indicator: Option<bool>,
    /// A fixed loopback callback for the browser sign-in, http://localhost:PORT/callback
    /// [default: empty].
    #[arg(long, env = "MONTI_AUTH_REDIRECT_URI")]
    pub auth_redirect_uri: Option<String>,
    /// Group bindings as JSON, e.g. [{"group":"monti-sup-berlin","role":"supervisor","sites":["Berlin"]}].
    #[arg(long, env = "MONTI_AUTH_BINDINGS", value_parser = parse_bindings)]
    pub auth_bindings: Option<Bindings>,

    /// What an event for an unknown agent does: create the agent or refuse the event
    /// [default: create].
    #[arg(long, env = "MONTI_INGEST_UNKNOWN_AGENTS", value_enum)]
    pub ingest_unknown_agents: Option<UnknownAgents>,
    /// Team of an agent created without one [default: Unassigned].
    #[arg(long, env = "MONTI_INGEST_DEFAULT_TEAM")]
    pub ingest_default_team: Option<String>,
    /// Site of an agent created without one [default: Unassigned].
    #[arg(long, env = "MONTI_INGEST_DEFAULT_SITE")]
    pub ingest_default_site: Option<String>,
    /// Largest body of an events or roster request, bytes; 413 beyond [default: 4194304].
    #[arg(long, env = "MONTI_INGEST_MAX_BODY_BYTES")]
    pub ingest_max_body_bytes: Option<usize>,
    /// Most events in one batch; 422 beyond [default: 10000].
    #[arg(long, env = "MONTI_INGEST_MAX_EVENTS")]
    pub ingest_max_events: Option<usize>,
    /// Seconds without a heartbeat after which an Amazon Connect agent shows as "no signal"
    /// [default: 300].
    #[arg(long, env = "MONTI_INGEST_STALE_AFTER_SECS")]
    pub ingest_stale_after_secs: Option<u64>,
    /// Days after which an event's state is too old to take [default: 7].
    #[arg(long, env = "MONTI_INGEST_MAX_EVENT_AGE_DAYS")]
    pub ingest_max_event_age_days: Option<u64>,
    /// Seconds an event's state may begin ahead of the server's clock [default: 300].
    #[arg(long, env = "MONTI_INGEST_MAX_CLOCK_SKEW_SECS")]
    pub ingest_max_clock_skew_secs: Option<u64>,

    /// Access key Firehose sends (at least 16 characters); empty turns the Amazon Connect
    /// endpoint off [default: empty].
    #[arg(long, env = "MONTI_AMAZON_CONNECT_ACCESS_KEY", hide_env_values = true)]
    pub amazon_connect_access_key: Option<String>,
    /// The API key EventBridge sends with Amazon Connect contact events (empty: off).
    #[arg(
        long,
        env = "MONTI_AMAZON_CONNECT_EVENTBRIDGE_KEY",
        hide_env_values = true
    )]
    pub amazon_connect_eventbridge_key: Option<String>,
    /// Agent hierarchy level (1 to 5) that names the site, 0 for none [default: 1].
    #[arg(long, env = "MONTI_AMAZON_CONNECT_SITE_LEVEL")]
    pub amazon_connect_site_level: Option<u8>,
    /// Agent hierarchy level (1 to 5) that names the team, 0 for none [default: 2].
    #[arg(long, env = "MONTI_AMAZON_CONNECT_TEAM_LEVEL")]
    pub amazon_connect_team_level: Option<u8>,
    /// Largest Firehose request taken, bytes [default: 16777216].
    #[arg(long, env = "MONTI_AMAZON_CONNECT_MAX_BODY_BYTES")]
    pub amazon_connect_max_body_bytes: Option<usize>,

    /// Redis shared by several servers, redis:// or rediss://; empty for one server on its
    /// own [default: empty].
    #[arg(long, env = "MONTI_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Redis stream the servers share changes on [default: monti:changes].
    #[arg(long, env = "MONTI_REDIS_STREAM")]
    pub redis_stream: Option<String>,
    /// About how many changes the Redis stream keeps [default: 100000].
    #[arg(long, env = "MONTI_REDIS_MAX_LEN")]
    pub redis_max_len: Option<u64>,
    /// Service level formula: answered_and_abandoned, ignore_short_abandons, offered or
    /// answered [default: ignore_short_abandons].
    #[arg(long, env = "MONTI_QUEUES_SERVICE_LEVEL", value_parser = parse_service_level)]
    pub queues_service_level: Option<ServiceLevelRule>,
    /// An abandon within this many seconds is short [default: 5].
    #[arg(long, env = "MONTI_QUEUES_SHORT_ABANDON_SECS")]
    pub queues_short_abandon_secs: Option<u64>,
    /// The rolling window of the stream's queue figures, minutes [default: 15].
    #[arg(long, env = "MONTI_QUEUES_RECENT_MINUTES")]
    pub queues_recent_minutes: Option<u16>,
    /// The time zone of the queue figures' days, an IANA name such as Europe/Berlin; empty for
    /// the server's own [default: empty].
    #[arg(long, env = "MONTI_QUEUES_TIME_ZONE")]
    pub queues_time_zone: Option<String>,

    /// The oldest app version (major.minor.patch) the server supports; older apps are told to
    /// update [default: empty].
    #[arg(long, env = "MONTI_CLIENTS_OLDEST_VERSION")]
    pub clients_oldest_version: Option<String>,
    /// Where apps find a newer version [default: empty].
    #[arg(long, env = "MONTI_CLIENTS_DOWNLOAD_URL")]
    pub clients_download_url: Option<String>,
}

fn parse_service_level(text: &str) -> Result<ServiceLevelRule, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!("{text:?}: use answered_and_abandoned, ignore_short_abandons, offered or answered")
    })
}

/// The group bindings as one flag value (a JSON list), not one flag per binding.
#[derive(Clone, Debug, PartialEq)]
pub struct Bindings(pub Vec<GroupBinding>);

fn parse_bindings(text: &str) -> Result<Bindings, String> {
    serde_json::from_str(text)
        .map(Bindings)
        .map_err(|err| format!("invalid bindings JSON: {err}"))
}

impl Cli {
    /// The configuration: defaults, then the file, then environment variables and flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        self.overlay(&mut config);
        config.check()?;
        Ok(config)
    }

    fn overlay(&self, config: &mut Config) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(value) = value {
                *target = value.clone();
            }
        }
        let server = &mut config.server;
        set(&mut server.listen, &self.listen);
        set(&mut server.max_connections, &self.max_connections);
        set(&mut server.tick_ms, &self.tick_ms);
        set(&mut server.keepalive_secs, &self.keepalive_secs);
        set(&mut server.queue_ticks, &self.queue_ticks);
        set(
            &mut server.max_resyncs_per_minute,
            &self.max_resyncs_per_minute,
        );
        set(&mut server.send_timeout_secs, &self.send_timeout_secs);
        set(
            &mut server.snapshot_chunk_agents,
            &self.snapshot_chunk_agents,
        );
        set(&mut server.socket_send_buffer, &self.socket_send_buffer);
        set(&mut server.tls_cert, &self.tls_cert);
        set(&mut server.tls_key, &self.tls_key);
        set(&mut server.trusted_proxies, &self.trusted_proxies);
        set(&mut server.header_timeout_secs, &self.header_timeout_secs);
        set(&mut server.request_timeout_secs, &self.request_timeout_secs);
        set(
            &mut server.max_connections_per_address,
            &self.max_connections_per_address,
        );
        let database = &mut config.database;
        set(&mut database.url, &self.database_url);
        set(
            &mut database.max_connections,
            &self.database_max_connections,
        );
        set(
            &mut database.history_retention_days,
            &self.database_history_retention_days,
        );
        set(&mut database.reconcile_secs, &self.database_reconcile_secs);
        let simulator = &mut config.simulator;
        set(&mut simulator.enabled, &self.simulator_enabled);
        set(&mut simulator.agents, &self.simulator_agents);
        set(&mut simulator.seed, &self.simulator_seed);
        set(&mut simulator.speed, &self.simulator_speed);
        set(&mut simulator.start_time, &self.simulator_start_time);
        set(
            &mut simulator.duration_minutes,
            &self.simulator_duration_minutes,
        );
        set(&mut simulator.queues, &self.simulator_queues);
        set(&mut config.log.json, &self.log_json);
        set(&mut config.log.filter, &self.log_filter);
        let auth = &mut config.auth;
        set(&mut auth.mode, &self.auth_mode);
        set(&mut auth.issuer, &self.auth_issuer);
        set(&mut auth.audience, &self.auth_audience);
        set(&mut auth.client_id, &self.auth_client_id);
        set(&mut auth.groups_claim, &self.auth_groups_claim);
        set(&mut auth.leeway_secs, &self.auth_leeway_secs);
        set(&mut auth.scopes, &self.auth_scopes);
        set(&mut auth.resource_indicator, &self.auth_resource_indicator);
        set(&mut auth.redirect_uri, &self.auth_redirect_uri);
        if let Some(Bindings(bindings)) = &self.auth_bindings {
            auth.bindings = bindings.clone();
        }
        set(&mut auth.keys_refetch_secs, &self.auth_keys_refetch_secs);
        let ingest = &mut config.ingest;
        set(&mut ingest.unknown_agents, &self.ingest_unknown_agents);
        set(&mut ingest.default_team, &self.ingest_default_team);
        set(&mut ingest.default_site, &self.ingest_default_site);
        set(&mut ingest.max_body_bytes, &self.ingest_max_body_bytes);
        set(&mut ingest.max_events, &self.ingest_max_events);
        set(&mut ingest.stale_after_secs, &self.ingest_stale_after_secs);
        set(
            &mut ingest.max_event_age_days,
            &self.ingest_max_event_age_days,
        );
        set(
            &mut ingest.max_clock_skew_secs,
            &self.ingest_max_clock_skew_secs,
        );
        let connect = &mut config.amazon_connect;
        set(&mut connect.access_key, &self.amazon_connect_access_key);
        set(
            &mut connect.eventbridge_key,
            &self.amazon_connect_eventbridge_key,
        );
        set(&mut connect.site_level, &self.amazon_connect_site_level);
        set(&mut connect.team_level, &self.amazon_connect_team_level);
        set(
            &mut connect.max_body_bytes,
            &self.amazon_connect_max_body_bytes,
        );
        let redis = &mut config.redis;
        set(&mut redis.url, &self.redis_url);
        set(&mut redis.stream, &self.redis_stream);
        set(&mut redis.max_len, &self.redis_max_len);
        let queues = &mut config.queues;
        set(&mut queues.service_level, &self.queues_service_level);
        set(
            &mut queues.short_abandon_secs,
            &self.queues_short_abandon_secs,
        );
        set(&mut queues.recent_minutes, &self.queues_recent_minutes);
        set(&mut queues.time_zone, &self.queues_time_zone);
        let clients = &mut config.clients;
        set(&mut clients.oldest_version, &self.clients_oldest_version);
        set(&mut clients.download_url, &self.clients_download_url);
    }
}

impl Config {
    /// The configuration with its secrets masked (`***`): database and Redis passwords and the
    /// Amazon Connect access key. What `--print-config` prints, so that its output can be
    /// pasted into a ticket.
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        config.database.url = redact(&config.database.url);
        config.redis.url = redact(&config.redis.url);
        if !config.amazon_connect.access_key.is_empty() {
            config.amazon_connect.access_key = "***".to_owned();
        }
        if !config.amazon_connect.eventbridge_key.is_empty() {
            config.amazon_connect.eventbridge_key = "***".to_owned();
        }
        config
    }

    /// Refuses settings the server cannot run with, with a message saying which and why.
    pub fn check(&self) -> anyhow::Result<()> {
        self.server.check()?;
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            bail!("database.url must start with sqlite: or postgres://");
        }
        self.simulator.check()?;
        self.ingest.check()?;
        self.amazon_connect.check()?;
        self.redis.check()?;
        self.queues.check()?;
        self.clients.check()?;
        self.auth.check(self.server.listen)
    }
}

impl ServerConfig {
    /// `[server]`: tick, limits, deadlines, TLS and trusted proxies.
    fn check(&self) -> anyhow::Result<()> {
        if self.tick_ms == 0 || self.tick_ms > 10_000 {
            bail!(
                "server.tick_ms must be between 1 and 10000, not {}",
                self.tick_ms
            );
        }
        if self.keepalive_secs == 0 {
            bail!("server.keepalive_secs must be at least 1");
        }
        if self.queue_ticks == 0 {
            bail!("server.queue_ticks must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("server.max_connections must be at least 1");
        }
        if self.snapshot_chunk_agents == 0
            || self.snapshot_chunk_agents > monti_protocol::codec::MAX_CHUNK_AGENTS
        {
            bail!(
                "server.snapshot_chunk_agents must be between 1 and {}",
                monti_protocol::codec::MAX_CHUNK_AGENTS
            );
        }
        if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            bail!("server.tls_cert and server.tls_key go together: set both, or neither");
        }
        self.trusted_proxy_nets()?;
        if self.header_timeout_secs == 0
            || self.request_timeout_secs == 0
            || self.max_connections_per_address == 0
        {
            bail!(
                "server.header_timeout_secs, request_timeout_secs and max_connections_per_address \
                 must be at least 1"
            );
        }
        Ok(())
    }
}

impl SimulatorConfig {
    /// `[simulator]`: speed, size and start time.
    fn check(&self) -> anyhow::Result<()> {
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 100_000.0) {
            bail!(
                "simulator.speed must be above 0 and at most 100000, not {}",
                self.speed
            );
        }
        if self.agents > monti_protocol::codec::MAX_AGENT_ID {
            bail!(
                "simulator.agents must be at most {}",
                monti_protocol::codec::MAX_AGENT_ID
            );
        }
        self.start_second_of_day()?;
        if self.queues > 100_000 {
            bail!(
                "simulator.queues must be at most 100000, not {}",
                self.queues
            );
        }
        Ok(())
    }
}

impl IngestConfig {
    /// `[ingest]`: default placement, event age and body limits.
    fn check(&self) -> anyhow::Result<()> {
        if self.default_team.trim().is_empty() || self.default_site.trim().is_empty() {
            bail!("ingest.default_team and ingest.default_site must not be empty");
        }
        if self.max_event_age_days == 0 {
            bail!("ingest.max_event_age_days must be at least 1");
        }
        if self.max_body_bytes < 1024 || self.max_events == 0 {
            bail!("ingest.max_body_bytes must be at least 1024 and ingest.max_events at least 1");
        }
        Ok(())
    }
}

impl AmazonConnectConfig {
    /// `[amazon_connect]`: hierarchy levels, access key and status names.
    fn check(&self) -> anyhow::Result<()> {
        if self.site_level > 5 || self.team_level > 5 {
            bail!("amazon_connect.site_level and team_level are hierarchy levels 1 to 5, or 0");
        }
        if !self.access_key.is_empty() && self.access_key.len() < 16 {
            bail!("amazon_connect.access_key must be at least 16 characters");
        }
        if !self.eventbridge_key.is_empty() && self.eventbridge_key.len() < 16 {
            bail!("amazon_connect.eventbridge_key must be at least 16 characters");
        }
        if axum::http::HeaderName::from_bytes(self.eventbridge_key_header.as_bytes()).is_err() {
            bail!(
                "amazon_connect.eventbridge_key_header {:?} is not a header name",
                self.eventbridge_key_header
            );
        }
        for (queue, name) in &self.queue_names {
            if let Err(problem) = monti_protocol::ingest::check_name("queue name", name) {
                bail!("amazon_connect.queue_names: {queue:?}: {problem}");
            }
        }
        for (name, state) in &self.status_names {
            let kind = StateKind::from_name(state).filter(|&kind| kind != StateKind::Stale);
            if kind.is_none() {
                let names: Vec<&str> = (StateKind::ALL.iter())
                    .filter(|&&kind| kind != StateKind::Stale)
                    .map(|kind| kind.name())
                    .collect();
                bail!(
                    "amazon_connect.status_names: {name:?} maps to {state:?}, which is not one of {}",
                    names.join(", ")
                );
            }
        }
        Ok(())
    }
}

impl RedisConfig {
    /// `[redis]`: URL scheme, stream name and length.
    fn check(&self) -> anyhow::Result<()> {
        if !(self.url.is_empty()
            || self.url.starts_with("redis://")
            || self.url.starts_with("rediss://"))
        {
            bail!("redis.url must start with redis:// or rediss://");
        }
        if self.stream.trim().is_empty() || self.max_len < 1_000 {
            bail!("redis.stream must be set and redis.max_len at least 1000");
        }
        Ok(())
    }
}

impl AuthConfig {
    /// `[auth]`: the callback URL, and what the mode needs (`none` only on `listen` when it is a
    /// loopback address).
    fn check(&self, listen: std::net::SocketAddr) -> anyhow::Result<()> {
        if !self.redirect_uri.is_empty() && loopback_port(&self.redirect_uri).is_none() {
            bail!(
                "auth.redirect_uri must be http://localhost:PORT/PATH or http://127.0.0.1:PORT/PATH \
                 (the apps listen on that port), not {:?}",
                self.redirect_uri
            );
        }
        match self.mode {
            AuthMode::None if !listen.ip().is_loopback() => bail!(
                "auth mode none lets every caller in as administrator, so it only listens on a \
                 loopback address, not {}; set [auth] mode = \"oidc\" with an issuer to listen there",
                listen
            ),
            AuthMode::None => {}
            AuthMode::Oidc => {
                for (name, value) in [
                    ("auth.issuer", &self.issuer),
                    ("auth.audience", &self.audience),
                    ("auth.client_id", &self.client_id),
                ] {
                    if value.trim().is_empty() {
                        bail!("{name} must be set when auth.mode is oidc");
                    }
                }
                if self.bindings.is_empty() {
                    bail!("auth.bindings is empty: with oidc no group would get any role");
                }
            }
        }
        Ok(())
    }
}

/// The port of a loopback `http` callback URL with an explicit port, if it is one.
pub fn loopback_port(uri: &str) -> Option<u16> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/')?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&port| port > 0)?;
    (matches!(host, "localhost" | "127.0.0.1") && !path.is_empty()).then_some(port)
}

/// The URL without a password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_callback_must_be_a_loopback_port() {
        assert_eq!(
            loopback_port("http://localhost:53682/callback"),
            Some(53682)
        );
        assert_eq!(loopback_port("http://127.0.0.1:8765/cb"), Some(8765));
        assert_eq!(loopback_port("http://localhost/callback"), None, "no port");
        assert_eq!(loopback_port("https://localhost:1/callback"), None);
        assert_eq!(loopback_port("http://example.com:80/callback"), None);
        assert_eq!(loopback_port("http://localhost:0/callback"), None);
    }

    #[test]
    fn passwords_do_not_reach_messages() {
        assert_eq!(
            redact("postgres://monti:secret@db/monti"),
            "postgres://monti:***@db/monti"
        );
        assert_eq!(redact("sqlite://data/monti.db"), "sqlite://data/monti.db");
    }

    #[test]
    fn defaults_need_nothing_and_pass_their_own_check() {
        let config = Cli::default().load().expect("defaults load");
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert!(config.database.url.starts_with("sqlite:"));
        assert!(config.simulator.enabled);
        assert_eq!(config.simulator.agents, 2_000);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("monti-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("monti.toml");
        std::fs::write(
            &path,
            "[simulator]\nagents = 50\nspeed = 4.0\n[server]\ntick_ms = 250\n",
        )
        .expect("write");
        let cli = Cli {
            config: Some(path),
            simulator_agents: Some(70),
            ..Cli::default()
        };
        let config = cli.load().expect("loads");
        assert_eq!(config.simulator.agents, 70);
        assert_eq!(config.simulator.speed, 4.0);
        assert_eq!(config.server.tick_ms, 250);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_that_names_it() {
        let err = toml::from_str::<Config>("[server]\nlisten_port = 1\n").expect_err("refused");
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn auth_none_refuses_anything_but_loopback_and_oidc_needs_its_settings() {
        let mut config = Config::default();
        config.server.listen = "0.0.0.0:8080".parse().expect("addr");
        let err = config.check().expect_err("refused").to_string();
        assert!(err.contains("loopback"), "{err}");
        config.auth.mode = AuthMode::Oidc;
        assert!(
            config
                .check()
                .expect_err("no issuer")
                .to_string()
                .contains("auth.issuer")
        );
        config.auth.issuer = "https://id.example".into();
        config.auth.audience = "urn:monti:api".into();
        config.auth.client_id = "monti".into();
        assert!(
            config
                .check()
                .expect_err("no bindings")
                .to_string()
                .contains("bindings")
        );
        config.auth.bindings =
            parse_bindings(r#"[{"group":"g","role":"team_lead","teams":["Sales 1"]}]"#)
                .expect("parses")
                .0;
        config.check().expect("complete");
        assert!(parse_bindings(r#"[{"group":"g","role":"emperor"}]"#).is_err());
    }

    #[test]
    fn impossible_values_are_refused_with_a_reason() {
        let mut config = Config::default();
        config.server.tick_ms = 0;
        assert!(
            config
                .check()
                .expect_err("refused")
                .to_string()
                .contains("tick_ms")
        );
        let mut config = Config::default();
        config.simulator.start_time = "25:00".into();
        assert!(config.check().is_err());
        let mut config = Config::default();
        config.queues.time_zone = "Europe/Atlantis".into();
        let refused = config.check().expect_err("refused").to_string();
        assert!(refused.contains("queues.time_zone"), "{refused}");
        config.queues.time_zone = "Europe/Berlin".into();
        assert!(config.check().is_ok());
        for (version, url, why) in [
            ("0.2", "", "clients.oldest_version"),
            ("next", "", "clients.oldest_version"),
            ("0.2.0", "ftp://monti.example.com", "clients.download_url"),
            (
                "",
                "https://monti.example.com/download",
                "needs clients.oldest_version",
            ),
        ] {
            config.clients.oldest_version = version.into();
            config.clients.download_url = url.into();
            let refused = config.check().expect_err("refused").to_string();
            assert!(refused.contains(why), "{version} {url}: {refused}");
        }
        config.clients.oldest_version = "0.2.0".into();
        config.clients.download_url = "https://monti.example.com/download".into();
        assert!(config.check().is_ok());
        let json = config.clients.json().expect("named");
        assert_eq!(json.update_needed("0.1.9"), Some("0.2.0"));
    }

    #[test]
    fn every_setting_has_an_environment_variable() {
        use clap::CommandFactory;
        let command = Cli::command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(
                id,
                "help" | "version" | "print_config" | "healthcheck" | "check_auth" | "token"
            ) {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "--{id} has no environment variable"
            );
        }
    }

    /// Each flag's help names the default `--print-config` shows (hand-written, so checked).
    #[test]
    fn every_flag_states_its_true_default() {
        use clap::CommandFactory;
        let defaults = toml::Value::try_from(Config::default()).expect("serialises");
        let sections = [
            "amazon_connect",
            "database",
            "simulator",
            "log",
            "auth",
            "ingest",
            "redis",
            "queues",
            "clients",
        ];
        for arg in Cli::command().get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(
                id,
                "help"
                    | "version"
                    | "print_config"
                    | "healthcheck"
                    | "check_auth"
                    | "token"
                    | "config"
            ) {
                continue;
            }
            let (section, key) = sections
                .iter()
                .find_map(|section| Some((*section, id.strip_prefix(section)?.strip_prefix('_')?)))
                .unwrap_or(("server", id));
            let default = &defaults[section][key];
            let shown = match default {
                toml::Value::String(text) if text.is_empty() => "empty".to_owned(),
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Float(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                toml::Value::Array(items) if items.is_empty() => continue,
                other => panic!("--{id}: no rule for a default like {other}"),
            };
            let help = arg
                .get_help()
                .map(|help| help.to_string())
                .unwrap_or_default();
            let said = help
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(said, _)| said);
            match said {
                Some(said) => assert_eq!(said, shown, "--{id}: {help}"),
                None => assert_eq!(shown, "empty", "--{id} does not name its default: {help}"),
            }
        }
    }
}
