//! `monti-server`: parses configuration, sets up logging and runs [`monti_server::run`] until
//! Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use monti_server::config::Cli;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// With the `heap-profile` feature every allocation is recorded (slowly) and the profile is
/// written to `dhat-heap.json` when the server shuts down.
#[cfg(feature = "heap-profile")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    #[cfg(feature = "heap-profile")]
    let _profile = dhat::Profiler::new_heap();
    let cli = Cli::parse();
    let config = cli.load()?;
    if cli.print_config {
        print!(
            "{}",
            toml::to_string_pretty(&config.redacted()).context("cannot print the configuration")?
        );
        return Ok(());
    }
    if cli.healthcheck {
        return healthcheck(&config.server);
    }
    if cli.check_auth {
        return check_auth(&config, cli.token.as_deref()).await;
    }
    let filter = EnvFilter::try_new(&config.log.filter)
        .with_context(|| format!("invalid log filter {:?}", config.log.filter))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.json {
        logs.json().init();
    } else {
        logs.init();
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    monti_server::run(listener, config, shutdown).await
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}

/// Prints each step of the sign-in check; fails if any step failed.
async fn check_auth(
    config: &monti_server::config::Config,
    token: Option<&str>,
) -> anyhow::Result<()> {
    use monti_server::api::auth_check::{self, Outcome};
    anyhow::ensure!(
        config.auth.mode == monti_server::config::AuthMode::Oidc,
        "[auth] mode is none: every caller on this machine is the administrator; nothing to check"
    );
    let mut steps = auth_check::provider(&config.auth).await;
    // The bindings in force (the Admin window's, where they stand) and their names, against
    // the stored roster when the database is reachable.
    let mut auth = config.auth.clone();
    match monti_server::store::db::Db::connect(&config.database).await {
        Ok(db) => {
            let (bindings, from) =
                monti_server::api::access::in_force(&db, &config.auth.bindings).await?;
            println!("info {} bindings in force, from {from}", bindings.len());
            auth.bindings = bindings;
            let stored = db.load_floor(0, 0, 0).await?;
            let named = |names: &[(i64, String)], wanted: &str| {
                names.iter().any(|(_, name)| name == wanted)
            };
            steps.extend(auth_check::bindings(
                &auth,
                |team| named(&stored.teams, team),
                |site| named(&stored.sites, site),
            ));
        }
        Err(err) => println!("warn cannot read the roster to check the bindings' names: {err:#}"),
    }
    if let Some(token) = token {
        steps.extend(auth_check::token(&auth, token).await);
    }
    for step in &steps {
        println!("{step}");
    }
    let failed = steps
        .iter()
        .filter(|step| step.outcome == Outcome::Fail)
        .count();
    anyhow::ensure!(failed == 0, "{failed} of {} checks failed", steps.len());
    Ok(())
}

/// `GET /readyz` on the configured address with a plain HTTP/1.0 request (over TLS when the
/// server serves it, accepting exactly its own certificate); Ok when it answers 200.
fn healthcheck(server: &monti_server::config::ServerConfig) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut addr = server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    let request = b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    let mut response = String::new();
    if server.tls() {
        let config =
            monti_server::net::tls::health_check_client(std::path::Path::new(&server.tls_cert))?;
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
        let mut tls = rustls::StreamOwned::new(connection, stream);
        tls.write_all(request)?;
        // A server closing without close_notify still sent the whole answer (HTTP/1.0).
        if let Err(err) = tls.read_to_string(&mut response)
            && err.kind() != std::io::ErrorKind::UnexpectedEof
        {
            return Err(err.into());
        }
    } else {
        stream.write_all(request)?;
        stream.read_to_string(&mut response)?;
    }
    let status = response.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status.split_whitespace().nth(1) == Some("200"),
        "not ready: {status}"
    );
    Ok(())
}
