//! Starting a real server for a test: on 127.0.0.1:0, against SQLite in a temporary folder or
//! a fresh PostgreSQL database, with real WebSocket clients.

#![allow(dead_code)] // Each test file uses a different part of this.

pub mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use monti_server::config::Config;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub config: Config,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        TestServer::start_at("127.0.0.1:0".parse().expect("addr"), config).await
    }

    /// Starts on a clock the test moves (a `ManualClock`'s).
    #[allow(dead_code)] // Not every test binary moves time.
    pub async fn start_with_clock(
        config: Config,
        clock: monti_server::core::clock::Clock,
    ) -> TestServer {
        TestServer::start_on("127.0.0.1:0".parse().expect("addr"), config, clock).await
    }

    /// Starts on a given address, for restarting a server where its viewers expect it.
    pub async fn start_at(addr: SocketAddr, config: Config) -> TestServer {
        TestServer::start_on(addr, config, monti_server::core::clock::Clock::system()).await
    }

    async fn start_on(
        addr: SocketAddr,
        config: Config,
        clock: monti_server::core::clock::Clock,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(monti_server::run_with_clock(
            listener,
            config.clone(),
            clock,
            shutdown.clone(),
        ));
        let mut server = TestServer {
            addr,
            url: format!(
                "{}://{addr}",
                if config.server.tls() { "https" } else { "http" }
            ),
            config,
            shutdown,
            handle: Some(handle),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        // Only asks whether it is up: whether its certificate is trusted is for the test.
        let client = data_client();
        for _ in 0..200 {
            if self
                .handle
                .as_ref()
                .is_some_and(|handle| handle.is_finished())
            {
                let result = self.handle.take().expect("handle").await.expect("joins");
                panic!("server at {} stopped while starting: {result:?}", self.url);
            }
            if let Ok(response) = client.get(format!("{}/readyz", self.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server at {} did not become ready", self.url);
    }

    /// Asks the server to shut down and waits for `run` to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let handle = self.handle.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("stops in time")
            .expect("joins")
    }

    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        data_client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
    }

    /// One value from `/metrics`.
    /// Waits until the floor shows everything stored so far: what was acknowledged before the
    /// call is on the floor (and in REST answers) after it. Polls the server's count of changes
    /// waiting for a tick; no fixed wait.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.metric("monti_floor_pending_changes").await > 0.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the floor never caught up"
            );
            tokio::task::yield_now().await;
        }
    }

    /// Waits until the writer has swept for stale agents `n` more times.
    #[allow(dead_code)] // Not every test binary has watched sources.
    pub async fn wait_for_sweeps(&self, n: u32) {
        let name = "monti_stale_sweeps_total";
        let target = self.metric(name).await + f64::from(n);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.metric(name).await < target {
            assert!(tokio::time::Instant::now() < deadline, "no stale sweep");
            tokio::task::yield_now().await;
        }
    }

    /// A metric's value; fails the test when the server does not report it (a typo in a name
    /// must not read as zero).
    pub async fn metric(&self, name: &str) -> f64 {
        self.metric_if_reported(name)
            .await
            .unwrap_or_else(|| panic!("the server reports no metric {name}"))
    }

    /// A metric's value, or `None` when the server does not report it (a labelled counter
    /// appears on its first increment).
    pub async fn metric_if_reported(&self, name: &str) -> Option<f64> {
        let text = self.get("/metrics").await.text().await.expect("body");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The URL of a service the tests need, from `var`; `None` (the test skips, saying so) when it
/// is unset, unless `MONTI_REQUIRE_SERVICES=1`, where a missing service fails the test.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) => {
            missing_service(&format!("{var} is not set"));
            None
        }
    }
}

/// A service the test cannot have: fails under `MONTI_REQUIRE_SERVICES=1`, else says it skips.
pub fn missing_service(why: &str) {
    if std::env::var("MONTI_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{why}, and MONTI_REQUIRE_SERVICES=1");
    }
    eprintln!("skipping: {why}");
}

/// A database for one test; dropped (the folder removed, the PostgreSQL database dropped) when
/// the test ends, failing or not.
pub enum TestDb {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("monti-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TestDb::Sqlite { dir }
    }

    /// SQLite on a RAM-backed folder (`/dev/shm` where there is one), for tests about the
    /// stream rather than the disk: every change is committed (and synced) before it reaches
    /// the floor, and a disk busy with other work would throttle the simulated floor.
    pub fn sqlite_in_ram() -> TestDb {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("monti-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TestDb::Sqlite { dir }
    }

    /// A fresh PostgreSQL database, or `None` (skip) when `MONTI_TEST_POSTGRES_URL` is unset
    /// and `MONTI_REQUIRE_SERVICES` is not `1`.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = service("MONTI_TEST_POSTGRES_URL")?;
        let name = format!("monti_test_{}_{}", std::process::id(), unique());
        let admin = admin_connection(&admin_url).await;
        sqlx::query(&format!("create database {name}"))
            .execute(&admin)
            .await
            .expect("create test database");
        Some(TestDb::Postgres { admin_url, name })
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { dir } => format!("sqlite://{}/monti.db", dir.display()),
            TestDb::Postgres { admin_url, name } => {
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                format!("{base}/{name}")
            }
        }
    }

    /// Drops the database now (the same happens when it goes out of scope).
    pub async fn drop_database(self) {
        if let TestDb::Postgres { admin_url, name } = &self {
            drop_postgres(admin_url, name).await;
        }
        // The folder goes in Drop; a PostgreSQL database dropped twice is harmless.
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres { admin_url, name } => {
                // Drop cannot wait on the test's runtime: a thread of its own with its own.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(drop_postgres(&admin_url, &name));
                });
                let _ = dropped.join();
            }
        }
    }
}

async fn drop_postgres(admin_url: &str, name: &str) {
    let admin = admin_connection(admin_url).await;
    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await;
}

async fn admin_connection(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to PostgreSQL at {url}: {err}"))
}

fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u128::from(nanos) * 1000 + u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A configuration for tests: quick ticks and keepalives, a small fast floor.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.database.url = db.url();
    config.server.tick_ms = 50;
    config.server.keepalive_secs = 2;
    config.simulator.agents = 300;
    config.simulator.speed = 60.0;
    config
}

impl TestServer {
    /// POSTs a JSON body; returns the status and the JSON answer (`Null` if not JSON).
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// PUTs a JSON body; returns the status and the JSON answer (`Null` if not JSON).
    pub async fn put(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// The agent with this display name, with its state, from REST.
    pub async fn agent(&self, name: &str) -> Option<monti_protocol::rest::AgentJson> {
        let page: monti_protocol::rest::AgentPage = self
            .get(&format!("/api/v1/agents?q={}&limit=1000", urlencode(name)))
            .await
            .json()
            .await
            .expect("agents json");
        page.agents.into_iter().find(|agent| agent.name == name)
    }
}

/// Percent-encodes a query value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A configuration without the simulator: the floor holds only what tests ingest.
pub fn ingest_config(db: &TestDb) -> Config {
    let mut config = test_config(db);
    config.simulator.enabled = false;
    config
}

/// A `monti-server` process, for tests that kill it the hard way. Killed when dropped.
pub struct ServerProcess {
    pub url: String,
    pub port: u16,
    child: tokio::process::Child,
}

impl ServerProcess {
    /// Starts `monti-server` with these flags on a free loopback port and waits until it is
    /// ready (or until `ready` is false: only until it listens).
    pub async fn start(args: &[&str], ready: bool) -> ServerProcess {
        let port = free_port();
        ServerProcess::start_on(port, args, ready).await
    }

    /// Like [`ServerProcess::start`], on a given port.
    pub async fn start_on(port: u16, args: &[&str], ready: bool) -> ServerProcess {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_monti-server"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .env("MONTI_LOG_FILTER", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("monti-server starts");
        let mut process = ServerProcess {
            url: format!("http://127.0.0.1:{port}"),
            port,
            child,
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("monti-server on port {port} exited while starting: {status}");
            }
            if let Ok(response) = client.get(format!("{}/readyz", process.url)).send().await
                && (!ready || response.status().is_success())
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("monti-server on port {port} did not become ready");
    }

    /// SIGKILL: no shutdown, no flushing.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        data_client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
    }
}

/// An HTTP client for reading data from test servers, plain or TLS: tests of TLS check
/// certificates with the apps' own transport, this one does not.
pub fn data_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client")
}

/// A fresh folder under the system's temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "monti-test-{name}-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Every agent on a server's floor as `(name, team, site, state, reason, since_ms)`, sorted.
pub async fn floor_rows(url: &str) -> Vec<(String, u16, u16, String, Option<String>, u64)> {
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let page: monti_protocol::rest::AgentPage =
            reqwest::get(format!("{url}/api/v1/agents?limit=1000&offset={offset}"))
                .await
                .expect("request")
                .json()
                .await
                .expect("agents");
        let n = page.agents.len();
        rows.extend(page.agents.into_iter().map(|agent| {
            (
                agent.name,
                agent.team,
                agent.site,
                agent.state,
                agent.reason,
                agent.since_ms,
            )
        }));
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    rows.sort();
    rows
}
