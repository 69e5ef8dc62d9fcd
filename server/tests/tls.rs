//! MONTI over TLS and through proxies, end to end with real parts: the server's own TLS
//! listener, nginx as a TLS-terminating front, tinyproxy as the company's forward proxy (with
//! and without credentials), certificates made at test time, and the machine's trust store.
//!
//! nginx and tinyproxy come from Debian's packages (`scripts/test` installs them); without them
//! their tests say so and pass, unless `MONTI_REQUIRE_SERVICES=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::pki::{ServerCert, TestCa};
use common::{TestDb, TestServer, temp_dir, test_config};
use monti_client::connection::Connection;
use monti_client::follow::{Follower, Step};
use monti_client::load::{self, LoadOptions};
use monti_client::{Transport, TransportOptions, auth};
use monti_protocol::message::{ServerMsg, Subscription};
use monti_protocol::rest::MeJson;

fn transport(ca_file: Option<&Path>, proxy: Option<&str>) -> Transport {
    Transport::new(&TransportOptions {
        ca_file: ca_file.map(Path::to_owned),
        proxy: proxy.map(str::to_owned),
    })
    .expect("transport")
}

/// A server serving TLS itself with `cert`, its files in `dir`.
async fn tls_server(db: &TestDb, cert: &ServerCert, dir: &Path) -> TestServer {
    let (cert, key) = cert.write(dir);
    let mut config = test_config(db);
    config.server.tls_cert = cert.display().to_string();
    config.server.tls_key = key.display().to_string();
    TestServer::start(config).await
}

/// Follows the whole floor through `transport` until the first snapshot; its agent count.
async fn snapshot_agents(transport: &Transport, url: &str) -> usize {
    let mut follower =
        Follower::new(url, "tls test", Subscription::default()).with_transport(transport.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, follower.next())
            .await
            .unwrap_or_else(|_| panic!("no snapshot from {url} within 30 s"))
            .expect("follows");
        match event {
            Step::Snapshot { .. } => return follower.floor().n_agents(),
            Step::Lost { reason, .. } => panic!("lost the stream from {url}: {reason}"),
            _ => {}
        }
    }
}

/// The error of one connection attempt, REST and stream, as the person reads them.
async fn refusals(transport: &Transport, url: &str) -> (String, String) {
    let rest = auth::server_auth(transport, url)
        .await
        .expect_err("REST refused")
        .to_string();
    let stream = match Connection::connect_with(transport, url, "tls test", None).await {
        Ok(_) => panic!("the stream from {url} was accepted"),
        Err(err) => err.to_string(),
    };
    (rest, stream)
}

async fn me(http: &reqwest::Client, url: &str) -> MeJson {
    http.get(format!("{url}/api/v1/me"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("me")
        .json()
        .await
        .expect("me json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_stream_and_load_run_over_the_servers_own_tls() {
    let dir = temp_dir("own");
    let ca = TestCa::new("MONTI Test CA");
    let ca_file = ca.write(&dir, "company-ca.pem");
    let db = TestDb::sqlite();
    let server = tls_server(&db, &ca.server_cert(&["localhost", "127.0.0.1"]), &dir).await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let client = transport(Some(&ca_file), None);

    let settings = auth::server_auth(&client, &server.url)
        .await
        .expect("REST over https");
    assert_eq!(settings.mode, "none");
    let who = me(client.http(), &server.url).await;
    assert_eq!(who.https, Some(true));
    assert_eq!(who.address.as_deref(), Some("127.0.0.1"));
    // The same server by name, over wss.
    let by_name = server.url.replace("127.0.0.1", "localhost");
    assert_eq!(snapshot_agents(&client, &by_name).await, 300);
    assert_eq!(snapshot_agents(&client, &server.url).await, 300);

    // The load generator over wss: every viewer live, the handshakes timed.
    let report = load::run(LoadOptions {
        server: server.url.clone(),
        clients: 4,
        duration: Duration::from_secs(2),
        subscription: Subscription::default(),
        token: None,
        transport: client.clone(),
        // Two decode, two only count: both kinds of viewer go live.
        sample: 2,
        weigh_json: false,
    })
    .await
    .expect("load over wss");
    assert_eq!(report.clients_live, 4, "{:?}", report.failures);
    assert_eq!(report.connect_ms.samples, 4);
    assert!(report.changes_received > 0, "{report:?}");
    assert!(
        report.server.cpu_percent.is_some(),
        "metrics read over https"
    );
    assert!(
        report
            .server
            .change_to_send
            .as_ref()
            .is_some_and(|histogram| histogram.samples > 0),
        "the server's own histogram read: {report:?}"
    );
    assert!(report.load_cpu_percent.is_some());

    // Clients that connect and never finish a handshake (or send garbage) hold up nobody.
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(
            tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connects"),
        );
    }
    let mut garbage = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connects");
    tokio::io::AsyncWriteExt::write_all(&mut garbage, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = Vec::new();
    // Refused at once (a TLS alert), well before the 10 s handshake limit, and never served.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut garbage, &mut answer),
    )
    .await
    .expect("garbage is closed at once");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    assert_eq!(
        snapshot_agents(&transport(Some(&ca_file), None), &server.url).await,
        300
    );
    drop(idle);

    // Plain http on the TLS port is not served.
    let plain = server.url.replace("https://", "http://");
    assert!(auth::server_auth(&client, &plain).await.is_err());

    // The container health check speaks TLS to its own certificate, and only to it.
    let healthcheck = |cert: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_monti-server"))
            .env_remove("MONTI_CONFIG")
            .arg("--listen")
            .arg(server.addr.to_string())
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(dir.join("key.pem"))
            .arg("--healthcheck")
            .output()
            .expect("runs")
    };
    let ours = healthcheck(&dir.join("cert.pem"));
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).expect("dir");
    let (other_cert, _) = ca.server_cert(&["127.0.0.1"]).write(&other_dir);
    let theirs = healthcheck(&other_cert);
    assert!(!theirs.status.success());
    assert!(
        String::from_utf8_lossy(&theirs.stderr).contains("does not serve server.tls_cert"),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    server.stop().await.expect("stops");
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_certificates_explain_themselves() {
    let dir = temp_dir("refused");
    let ca = TestCa::new("MONTI Test CA");
    let ca_file = ca.write(&dir, "company-ca.pem");
    let trusting = transport(Some(&ca_file), None);

    // Unknown issuer: the machine's store does not hold the test CA.
    let db = TestDb::sqlite();
    let unknown_dir = dir.join("unknown");
    std::fs::create_dir_all(&unknown_dir).expect("dir");
    let server = tls_server(&db, &ca.server_cert(&["127.0.0.1"]), &unknown_dir).await;
    let (rest, stream) = refusals(&transport(None, None), &server.url).await;
    for text in [&rest, &stream] {
        assert!(
            text.contains("issued by \"CN=MONTI Test CA")
                && text.contains("does not trust")
                && text.contains("--ca-file"),
            "{text}"
        );
        assert!(!text.contains("error sending request"), "{text}");
    }
    server.stop().await.expect("stops");

    // Wrong name: both names are given.
    let name_dir = dir.join("name");
    std::fs::create_dir_all(&name_dir).expect("dir");
    let server = tls_server(&db, &ca.server_cert(&["floor.example.com"]), &name_dir).await;
    let (rest, stream) = refusals(&trusting, &server.url).await;
    for text in [&rest, &stream] {
        assert!(
            text.contains("is for floor.example.com, not for 127.0.0.1"),
            "{text}"
        );
    }
    server.stop().await.expect("stops");

    // Expired: the date is given.
    let expired_dir = dir.join("expired");
    std::fs::create_dir_all(&expired_dir).expect("dir");
    let expired = ca.server_cert_valid(&["127.0.0.1"], (2020, 1, 1), (2021, 3, 4));
    let server = tls_server(&db, &expired, &expired_dir).await;
    let (rest, stream) = refusals(&trusting, &server.url).await;
    for text in [&rest, &stream] {
        assert!(text.contains("expired on 2021-03-04"), "{text}");
    }
    let url = server.url.clone();
    server.stop().await.expect("stops");

    // Nobody listening: the cause, not a bare "error sending request".
    let (rest, stream) = refusals(&trusting, &url).await;
    for text in [&rest, &stream] {
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_without_a_restart() {
    let dir = temp_dir("reload");
    let old_ca = TestCa::new("MONTI Old CA");
    let new_ca = TestCa::new("MONTI New CA");
    let old_file = old_ca.write(&dir, "old-ca.pem");
    let new_file = new_ca.write(&dir, "new-ca.pem");
    let trusts_old = transport(Some(&old_file), None);
    let trusts_new = transport(Some(&new_file), None);
    let db = TestDb::sqlite();
    let server = tls_server(&db, &old_ca.server_cert(&["127.0.0.1"]), &dir).await;
    auth::server_auth(&trusts_old, &server.url)
        .await
        .expect("the first certificate");
    let open = Connection::connect_with(&trusts_old, &server.url, "kept", None)
        .await
        .expect("a stream on the first certificate");

    assert!(server.metric("monti_tls_certificate_expiry_seconds").await > 4e9);
    // A key that does not fit is not taken: the old pair stays.
    std::fs::write(dir.join("key.pem"), new_ca.server_cert(&["x"]).key_pem).expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Reported from the first failed reload on.
    while server
        .metric_if_reported("monti_tls_reloads_total{code=\"failed\"}")
        .await
        .is_none_or(|failed| failed < 1.0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broken key was not noticed"
        );
        tokio::time::sleep(monti_server::net::tls::RELOAD_EVERY / 4).await;
    }
    auth::server_auth(&transport(Some(&old_file), None), &server.url)
        .await
        .expect("still the first certificate");
    // Then the new pair, as a deployment tool writes it.
    new_ca.server_cert(&["127.0.0.1"]).write(&dir);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while auth::server_auth(&trusts_new, &server.url).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served within 30 s"
        );
        tokio::time::sleep(monti_server::net::tls::RELOAD_EVERY / 4).await;
    }
    // A new client (not one with a pooled connection from before) meets the new certificate.
    let err = auth::server_auth(&transport(Some(&old_file), None), &server.url)
        .await
        .expect_err("the old CA no longer fits");
    assert_eq!(
        server
            .metric("monti_tls_reloads_total{code=\"loaded\"}")
            .await,
        1.0
    );
    assert!(err.to_string().contains("MONTI New CA"), "{err}");
    // The connection opened before keeps streaming.
    let mut open = open;
    open.subscribe(&Subscription::default())
        .await
        .expect("subscribe");
    assert!(matches!(
        open.recv().await.expect("snapshot"),
        ServerMsg::Snapshot(_)
    ));
    server.stop().await.expect("stops");
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Certificate files as certbot and openssl write them, not as rcgen does: the leaf followed by
/// its intermediate ("fullchain.pem"), and the key in OpenSSL's traditional SEC1 form
/// (`-----BEGIN EC PRIVATE KEY-----`, what `openssl ecparam -genkey` and `openssl ec` write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fullchain_file_and_a_traditional_openssl_key_are_served() {
    let Some(openssl) = program("openssl") else {
        common::missing_service("openssl is not installed");
        return;
    };
    let dir = temp_dir("fullchain");
    let root = TestCa::new("MONTI Test Root");
    let intermediate = root.intermediate("MONTI Test Issuing CA");
    let leaf = intermediate.server_cert(&["127.0.0.1"]);
    let fullchain = ServerCert {
        cert_pem: format!("{}{}", leaf.cert_pem, intermediate.pem),
        key_pem: leaf.key_pem.clone(),
    };
    let (cert, key) = fullchain.write(&dir);
    let converted = std::process::Command::new(openssl)
        .args(["ec", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&key)
        .output()
        .expect("openssl runs");
    assert!(converted.status.success(), "{converted:?}");
    let key_text = std::fs::read_to_string(&key).expect("key");
    assert!(
        key_text.starts_with("-----BEGIN EC PRIVATE KEY-----"),
        "{key_text}"
    );
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.server.tls_cert = cert.display().to_string();
    config.server.tls_key = key.display().to_string();
    let server = TestServer::start(config).await;
    // The client trusts only the root: the intermediate comes from the server.
    let root_file = root.write(&dir, "root.pem");
    let client = transport(Some(&root_file), None);
    auth::server_auth(&client, &server.url)
        .await
        .expect("REST over the chain");
    assert_eq!(snapshot_agents(&client, &server.url).await, 300);
    // Without the intermediate in the file, the same root does not reach the leaf.
    let leaf_only_dir = dir.join("leaf-only");
    std::fs::create_dir_all(&leaf_only_dir).expect("dir");
    let leaf_only = intermediate.server_cert(&["127.0.0.1"]);
    let short_db = TestDb::sqlite();
    let short = tls_server(&short_db, &leaf_only, &leaf_only_dir).await;
    let err = auth::server_auth(&client, &short.url)
        .await
        .expect_err("an incomplete chain");
    assert!(err.to_string().contains("MONTI Test Issuing CA"), "{err}");
    short.stop().await.expect("stops");
    short_db.drop_database().await;
    server.stop().await.expect("stops");
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_in_the_machines_trust_store_needs_no_settings() {
    // scripts/test makes this CA and installs it into the machine's store for the run.
    let Some(ca_dir) = std::env::var_os("MONTI_TEST_SYSTEM_CA_DIR") else {
        common::missing_service("MONTI_TEST_SYSTEM_CA_DIR is not set (scripts/test installs a CA)");
        return;
    };
    let ca_dir = PathBuf::from(ca_dir);
    let ca = TestCa::load(&ca_dir.join("ca.pem"), &ca_dir.join("ca.key"));
    let dir = temp_dir("system");
    let db = TestDb::sqlite();
    let server = tls_server(&db, &ca.server_cert(&["localhost", "127.0.0.1"]), &dir).await;
    let system = transport(None, None);
    auth::server_auth(&system, &server.url)
        .await
        .expect("REST trusts the system's CA");
    assert_eq!(snapshot_agents(&system, &server.url).await, 300);
    server.stop().await.expect("stops");
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}

// Proxies and fronts ------------------------------------------------------------------------

/// The program's path, when installed.
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A helper process, killed when dropped.
struct Helper {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl Helper {
    async fn start(mut command: std::process::Command, port: u16, log: PathBuf) -> Helper {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let mut helper = Helper { child, port, log };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = helper.child.try_wait() {
                panic!(
                    "{command:?} exited with {status}: {}",
                    std::fs::read_to_string(&helper.log).unwrap_or_default()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{command:?} did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        helper
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tinyproxy on a free port; with `credentials`, it asks for them (Basic).
async fn tinyproxy(dir: &Path, credentials: Option<(&str, &str)>) -> Option<Helper> {
    let Some(binary) = program("tinyproxy") else {
        common::missing_service("tinyproxy is not installed (Debian package tinyproxy-bin)");
        return None;
    };
    let port = free_port();
    let log = dir.join(format!("tinyproxy-{port}.log"));
    let mut conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\nLogLevel Info\n\
         LogFile \"{}\"\nDisableViaHeader Yes\n",
        log.display()
    );
    if let Some((user, password)) = credentials {
        conf.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    let conf_file = dir.join(format!("tinyproxy-{port}.conf"));
    std::fs::write(&conf_file, conf).expect("write conf");
    let mut command = std::process::Command::new(binary);
    command.arg("-d").arg("-c").arg(&conf_file);
    Some(Helper::start(command, port, log).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_the_stream_pass_through_a_forward_proxy() {
    let dir = temp_dir("proxy");
    let Some(open_proxy) = tinyproxy(&dir, None).await else {
        return;
    };
    let Some(guarded) = tinyproxy(&dir, Some(("monti", "s3cret"))).await else {
        return;
    };
    let ca = TestCa::new("MONTI Test CA");
    let ca_file = ca.write(&dir, "company-ca.pem");
    let db = TestDb::sqlite();
    let server = tls_server(&db, &ca.server_cert(&["127.0.0.1"]), &dir).await;
    let port = server.addr.port();

    // Through the open proxy: REST (CONNECT for https) and the stream (CONNECT).
    let via_open = transport(
        Some(&ca_file),
        Some(&format!("http://127.0.0.1:{}", open_proxy.port)),
    );
    auth::server_auth(&via_open, &server.url)
        .await
        .expect("REST through the proxy");
    assert_eq!(snapshot_agents(&via_open, &server.url).await, 300);
    let tunnels = open_proxy
        .log()
        .matches(&format!("CONNECT 127.0.0.1:{port}"))
        .count();
    assert!(
        tunnels >= 2,
        "REST and the stream tunnelled: {}",
        open_proxy.log()
    );

    // With credentials, as the company proxy wants them.
    let with_password = transport(
        Some(&ca_file),
        Some(&format!("http://monti:s3cret@127.0.0.1:{}", guarded.port)),
    );
    auth::server_auth(&with_password, &server.url)
        .await
        .expect("REST through the guarded proxy");
    assert_eq!(snapshot_agents(&with_password, &server.url).await, 300);
    assert!(guarded.log().contains(&format!("CONNECT 127.0.0.1:{port}")));

    // Wrong or missing credentials explain themselves, the password never shown.
    let wrong = transport(
        Some(&ca_file),
        Some(&format!("http://monti:wrong@127.0.0.1:{}", guarded.port)),
    );
    let (rest, stream) = refusals(&wrong, &server.url).await;
    for text in [&rest, &stream] {
        assert!(
            text.contains("refused the user name and password"),
            "{text}"
        );
    }
    for text in [&rest, &stream] {
        assert!(!text.contains("wrong"), "the password is shown: {text}");
    }
    let none = transport(
        Some(&ca_file),
        Some(&format!("http://127.0.0.1:{}", guarded.port)),
    );
    let (rest, stream) = refusals(&none, &server.url).await;
    for text in [&rest, &stream] {
        assert!(text.contains("wants a user name and password"), "{text}");
    }

    // A proxy that is not there.
    let gone = transport(
        Some(&ca_file),
        Some(&format!("http://127.0.0.1:{}", free_port())),
    );
    let (rest, stream) = refusals(&gone, &server.url).await;
    assert!(stream.contains("cannot reach the proxy"), "{stream}");
    assert!(rest.to_lowercase().contains("refused"), "{rest}");

    // Plain http servers go through it too (the stream as a tunnel).
    let plain_db = TestDb::sqlite();
    let plain = TestServer::start(test_config(&plain_db)).await;
    let via_plain = transport(None, Some(&format!("http://127.0.0.1:{}", open_proxy.port)));
    auth::server_auth(&via_plain, &plain.url)
        .await
        .expect("plain REST through the proxy");
    assert_eq!(snapshot_agents(&via_plain, &plain.url).await, 300);
    assert!(
        open_proxy
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", plain.addr.port())),
        "{}",
        open_proxy.log()
    );
    plain.stop().await.expect("stops");
    plain_db.drop_database().await;

    // An IPv6 literal, straight and through the tunnel.
    let v6_db = TestDb::sqlite();
    let v6 = TestServer::start_at("[::1]:0".parse().expect("addr"), test_config(&v6_db)).await;
    assert!(v6.url.starts_with("http://[::1]:"), "{}", v6.url);
    assert_eq!(snapshot_agents(&transport(None, None), &v6.url).await, 300);
    assert_eq!(snapshot_agents(&via_plain, &v6.url).await, 300);
    assert!(
        open_proxy
            .log()
            .contains(&format!("CONNECT [::1]:{}", v6.addr.port())),
        "{}",
        open_proxy.log()
    );
    v6.stop().await.expect("stops");
    v6_db.drop_database().await;
    server.stop().await.expect("stops");
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// nginx terminating TLS on a free port in front of `upstream` (plain http), forwarding the
/// client's address and scheme as a load balancer does.
async fn nginx_front(dir: &Path, cert: &ServerCert, upstream: &str) -> Option<Helper> {
    let Some(binary) = program("nginx") else {
        common::missing_service("nginx is not installed (Debian package nginx-light)");
        return None;
    };
    let port = free_port();
    let (cert_file, key_file) = cert.write(dir);
    let log = dir.join("nginx-error.log");
    for temp in ["body", "proxy"] {
        std::fs::create_dir_all(dir.join(temp)).expect("temp dir");
    }
    let conf = format!(
        r#"daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {log} info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/nginx-access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"#,
        dir = dir.display(),
        log = log.display(),
        cert = cert_file.display(),
        key = key_file.display(),
    );
    let conf_file = dir.join("nginx.conf");
    std::fs::write(&conf_file, conf).expect("write conf");
    let mut command = std::process::Command::new(binary);
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_file)
        .arg("-e")
        .arg(&log);
    Some(Helper::start(command, port, log).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_front_the_client_address_comes_only_from_the_trusted_proxy() {
    let dir = temp_dir("front");
    let ca = TestCa::new("MONTI Test CA");
    let ca_file = ca.write(&dir, "company-ca.pem");
    let db = TestDb::sqlite();
    let mut config = test_config(&db);
    config.server.trusted_proxies = vec!["127.0.0.1".into()];
    let server = TestServer::start(config).await;
    let Some(front) = nginx_front(&dir, &ca.server_cert(&["localhost"]), &server.url).await else {
        return;
    };
    let front_url = format!("https://localhost:{}", front.port);

    // The apps stream through the front over wss.
    let client = transport(Some(&ca_file), None);
    assert_eq!(snapshot_agents(&client, &front_url).await, 300);

    // A caller at 127.0.0.2: through the front it is named by the front's header, over https.
    let from_two = |forged: Option<&str>| {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(forged) = forged {
            headers.insert("x-forwarded-for", forged.parse().expect("header"));
            headers.insert("x-forwarded-proto", "https".parse().expect("header"));
        }
        reqwest::Client::builder()
            .local_address(Some("127.0.0.2".parse().expect("ip")))
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).expect("ca"))
            .default_headers(headers)
            .no_proxy()
            .build()
            .expect("client")
    };
    let through_front = me(&from_two(None), &front_url).await;
    assert_eq!(through_front.address.as_deref(), Some("127.0.0.2"));
    assert_eq!(through_front.https, Some(true));
    // Straight to the server, headers claiming another address and https are not believed.
    let forged = me(&from_two(Some("203.0.113.9")), &server.url).await;
    assert_eq!(forged.address.as_deref(), Some("127.0.0.2"));
    assert_eq!(forged.https, Some(false));
    drop(front);
    server.stop().await.expect("stops");
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(dir);
}
