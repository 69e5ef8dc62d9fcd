//! `monti-cli`: watch a MONTI floor in the terminal, or put load on a server and measure it.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use monti_client::auth;
use monti_client::connection::now_ms;
use monti_client::follow::{Follower, Link, Step};
use monti_client::load::{self, LoadOptions, LoadReport};
use monti_client::{Transport, TransportOptions};
use monti_protocol::floor::Floor;
use monti_protocol::message::{Detail, Subscription};
use monti_protocol::model::{Grouping, SiteId, StateKind, StateSet, TeamId};
use monti_protocol::rest::{FloorSummaryJson, GroupJson};
use monti_protocol::scope::Scope;

/// MONTI command-line client.
#[derive(Debug, Parser)]
#[command(name = "monti-cli", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Follow the floor live as a table of groups (Ctrl-C to stop).
    Watch(WatchArgs),
    /// Open many viewer connections and measure latency, traffic and server usage.
    Load(LoadArgs),
    /// Follow many viewers as the apps do (backoff and jitter) and measure how long each takes
    /// to be live again when the server restarts during the window.
    Storm(StormArgs),
    /// Read the whole floor through the REST API as often as asked with many pollers, as users
    /// of vendors' real-time APIs do: the baseline the stream is compared with.
    Poll(PollArgs),
    /// Sign in to the server's identity provider (device flow); the refresh token is kept in the
    /// operating system's keyring for later commands.
    Login(ServerArgs),
    /// Forget the stored sign-in for the server.
    Logout(ServerArgs),
    /// Read the feedback people sent from the apps (administrators).
    #[command(subcommand)]
    Feedback(FeedbackCommand),
}

/// Which server, and how to reach it.
#[derive(Debug, Args)]
struct ServerArgs {
    /// Server address: http://host:port, or https://host for a server behind TLS.
    #[arg(long, env = "MONTI_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A CA certificate file (PEM) to trust beside the operating system's store, for a company
    /// CA that IT has not installed on this machine.
    #[arg(long, env = "MONTI_CA_FILE", value_name = "FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// A proxy for every connection, http://[user:password@]host:port. [default: HTTPS_PROXY,
    /// HTTP_PROXY and NO_PROXY from the environment, else the system's settings]
    #[arg(long, env = "MONTI_PROXY", value_name = "URL")]
    proxy: Option<String>,
}

impl ServerArgs {
    fn transport(&self) -> anyhow::Result<Transport> {
        Ok(Transport::new(&TransportOptions {
            ca_file: self.ca_file.clone(),
            proxy: self.proxy.clone(),
        })?)
    }
}

/// What to subscribe to.
#[derive(Debug, Args)]
struct ViewArgs {
    #[command(flatten)]
    connect: ServerArgs,
    /// Group by team, site or team_site.
    #[arg(long, default_value = "team", value_parser = parse_grouping)]
    group_by: Grouping,
    /// Only this team id (repeatable).
    #[arg(long = "team")]
    teams: Vec<u16>,
    /// Only this site id (repeatable).
    #[arg(long = "site")]
    sites: Vec<u16>,
    /// Only agents in this state (repeatable): offline, available, ringing, on_call, on_hold,
    /// wrap_up, not_ready.
    #[arg(long = "state", value_parser = parse_state)]
    states: Vec<StateKind>,
    /// Ask for group summaries only instead of every agent.
    #[arg(long)]
    summary: bool,
    /// Also receive the queues (contacts waiting, the oldest wait, service level, answered
    /// and abandoned today and over the server's rolling window).
    #[arg(long)]
    queues: bool,
}

impl ViewArgs {
    fn subscription(&self) -> Subscription {
        Subscription {
            grouping: self.group_by,
            detail: if self.summary {
                Detail::Summary
            } else {
                Detail::Agents
            },
            teams: self.teams.iter().copied().map(TeamId).collect(),
            sites: self.sites.iter().copied().map(SiteId).collect(),
            states: if self.states.is_empty() {
                StateSet::ALL
            } else {
                StateSet::of(self.states.iter().copied())
            },
            known_roster: None,
            queues: self.queues,
        }
    }
}

#[derive(Debug, Args)]
struct WatchArgs {
    #[command(flatten)]
    view: ViewArgs,
    /// Print once, as soon as the snapshot is in, and exit.
    #[arg(long)]
    once: bool,
    /// Print JSON (with --once: one document summarising the snapshot).
    #[arg(long)]
    json: bool,
    /// Sign in for this run only, keeping the sign-in in memory (for a computer without a
    /// keyring).
    #[arg(long)]
    no_keyring: bool,
}

/// `monti-cli feedback ...`
#[derive(Debug, Subcommand)]
enum FeedbackCommand {
    /// The newest feedback first: when, who, the app, the view, the words.
    List(FeedbackListArgs),
}

#[derive(Debug, Args)]
struct FeedbackListArgs {
    #[command(flatten)]
    connect: ServerArgs,
    /// How many, newest first (at most 1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print the server's JSON as it is.
    #[arg(long)]
    json: bool,
    /// Sign in for this run only, keeping the sign-in in memory.
    #[arg(long)]
    no_keyring: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    view: ViewArgs,
    /// Number of viewer connections.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// How long to measure, for example 60s or 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// How many viewers decode every frame and measure latency; the rest count bytes and
    /// frames only, so that the load generator is not the bottleneck.
    #[arg(long, default_value_t = 20)]
    sample: usize,
    /// The decoding viewers also weigh what they receive as JSON: what the same stream would
    /// cost a dashboard that pushes JSON (their latency reads a little higher for it).
    #[arg(long)]
    json_weight: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StormArgs {
    #[command(flatten)]
    view: ViewArgs,
    /// Number of viewers.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How long to watch once every viewer is live (restart the server in it), e.g. 40s.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    duration: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PollArgs {
    #[command(flatten)]
    connect: ServerArgs,
    /// Number of polling viewers.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// How often each reads the whole floor, for example 1s or 15s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    every: Duration,
    /// How long to measure, for example 60s or 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

async fn run_poll(args: PollArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.every.is_zero() {
        bail!("--clients and --every must be above zero");
    }
    let transport = args.connect.transport()?;
    let token = match Session::open(&transport, &args.connect.server, true).await? {
        Some(mut session) => Some(session.access().await?.0),
        None => None,
    };
    let report = load::poll(load::PollOptions {
        server: args.connect.server.clone(),
        clients: args.clients,
        every: args.every,
        duration: args.duration,
        token,
        transport,
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "pollers                  {} reading {} agents every {:.1} s",
            report.clients, report.agents, report.every_s
        );
        println!(
            "window                   {:.1} s, {} whole-floor reads",
            report.duration_s, report.reads
        );
        println!(
            "read p50 / p99 / max     {:.0} / {:.0} / {:.0} ms (every page)",
            report.read_ms.p50, report.read_ms.p99, report.read_ms.max
        );
        println!(
            "age shown p50 / p99 / max {:.0} / {:.0} / {:.0} ms",
            report.age_ms.p50, report.age_ms.p99, report.age_ms.max
        );
        println!(
            "bytes per viewer second  {:.0}",
            report.bytes_per_client_per_second
        );
        print_usage(&report.server, report.load_cpu_percent, &report.failures);
    }
    if report.reads == 0 {
        bail!("no whole-floor read completed: {:?}", report.failures);
    }
    Ok(())
}

async fn run_storm(args: StormArgs) -> anyhow::Result<()> {
    let transport = args.view.connect.transport()?;
    let token = match Session::open(&transport, &args.view.connect.server, true).await? {
        Some(mut session) => Some(session.access().await?.0),
        None => None,
    };
    let report = monti_client::load::storm(monti_client::load::LoadOptions {
        server: args.view.connect.server.clone(),
        clients: args.clients,
        duration: args.duration,
        subscription: args.view.subscription(),
        token,
        transport,
        sample: 0,
        weigh_json: false,
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "viewers                  {} live of {}",
        report.live_before, report.clients
    );
    println!(
        "lost / live again        {} / {}",
        report.lost, report.recovered
    );
    let recovery = &report.recovery_ms;
    println!(
        "loss to live p50 / p99 / max  {:.0} / {:.0} / {:.0} ms",
        recovery.p50, recovery.p99, recovery.max
    );
    println!(
        "all live again after     {}",
        report
            .all_live_again_ms
            .map_or("not all".to_owned(), |ms| format!(
                "{ms:.0} ms from the first loss"
            ))
    );
    println!("failed attempts          {}", report.failed_attempts);
    Ok(())
}

fn parse_grouping(text: &str) -> Result<Grouping, String> {
    Grouping::from_name(text).ok_or_else(|| format!("{text:?} is not one of team, site, team_site"))
}

fn parse_state(text: &str) -> Result<StateKind, String> {
    StateKind::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = StateKind::ALL.iter().map(|kind| kind.name()).collect();
        format!("{text:?} is not one of {}", names.join(", "))
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 60s or 2m"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use ms, s, m or h"
            ));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MONTI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Watch(args) => watch(args).await,
        Command::Load(args) => run_load(args).await,
        Command::Storm(args) => run_storm(args).await,
        Command::Poll(args) => run_poll(args).await,
        Command::Login(args) => login(&args.transport()?, &args.server).await,
        Command::Logout(args) => logout(&args.transport()?, &args.server).await,
        Command::Feedback(FeedbackCommand::List(args)) => feedback_list(args).await,
    }
}

/// Prints the feedback people sent, newest first.
async fn feedback_list(args: FeedbackListArgs) -> anyhow::Result<()> {
    let transport = args.connect.transport()?;
    let server = args.connect.server.trim_end_matches('/');
    let mut request = transport
        .http()
        .get(format!("{server}/api/v1/feedback"))
        .query(&[("limit", args.limit)]);
    if let Some(mut session) = Session::open(&transport, server, !args.no_keyring).await? {
        let (token, _) = session.access().await?;
        request = request.bearer_auth(token);
    }
    let answer = request.send().await?;
    let status = answer.status();
    let body = answer.text().await?;
    if !status.is_success() {
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| json["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        anyhow::bail!("the server answered {status}: {why}");
    }
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let list: Vec<monti_protocol::access::FeedbackJson> =
        serde_json::from_str(&body).context("the server's feedback list is not as expected")?;
    if list.is_empty() {
        println!("no feedback yet");
    }
    for feedback in list {
        let when = chrono::DateTime::from_timestamp_millis(feedback.created_ms as i64)
            .map(|at| {
                at.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        let screenshot = if feedback.has_screenshot {
            format!(
                " [screenshot: {server}/api/v1/feedback/{}/screenshot]",
                feedback.id
            )
        } else {
            String::new()
        };
        // What people typed reaches a terminal: no escape sequences through.
        let plain = |text: &str| -> String {
            (text.chars())
                .map(|c| {
                    if c.is_control() && c != '\n' {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect()
        };
        println!(
            "#{} {when} {} ({}; {}){screenshot}",
            feedback.id,
            plain(&feedback.subject),
            plain(&feedback.client),
            plain(&feedback.context)
        );
        for line in plain(&feedback.text).lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

/// A command's sign-in to one server: the refresh token in the keyring, or (with
/// `--no-keyring`) in memory for this run only.
struct Session {
    provider: auth::Provider,
    store: Option<auth::TokenStore>,
    refresh_token: Option<String>,
}

impl Session {
    /// The server's sign-in; `None` when it needs none. Without the keyring, the person signs
    /// in now.
    async fn open(
        transport: &Transport,
        server: &str,
        keyring: bool,
    ) -> anyhow::Result<Option<Session>> {
        let server_auth = auth::server_auth(transport, server).await?;
        warn_if_outdated(&server_auth);
        let Some(settings) = auth::SignInSettings::from_server(server_auth) else {
            return Ok(None);
        };
        let provider = auth::Provider::discover(transport, &settings).await?;
        if keyring {
            let store = auth::TokenStore::new(server, &settings)?;
            return Ok(Some(Session {
                provider,
                store: Some(store),
                refresh_token: None,
            }));
        }
        let refresh_token = device_sign_in(&provider).await?;
        Ok(Some(Session {
            provider,
            store: None,
            refresh_token: Some(refresh_token),
        }))
    }

    /// A fresh access token, with when to renew it; the rotated refresh token is kept.
    async fn access(&mut self) -> anyhow::Result<(String, Instant)> {
        let tokens = match &self.store {
            Some(store) => auth::refresh_stored(&self.provider, store).await?,
            None => {
                let refresh_token = self.refresh_token.clone().context("not signed in")?;
                let tokens = self.provider.refresh(&refresh_token).await?;
                if let Some(rotated) = &tokens.refresh_token {
                    self.refresh_token = Some(rotated.clone());
                }
                tokens
            }
        };
        // Renew when four fifths of the token's life have passed.
        let renew_at = Instant::now() + Duration::from_secs(tokens.expires_in.max(10) * 4 / 5);
        Ok((tokens.access_token, renew_at))
    }
}

/// Signs in from the terminal: the device flow, or the browser where the provider has none;
/// returns the refresh token.
async fn device_sign_in(provider: &auth::Provider) -> anyhow::Result<String> {
    if !provider.has_device_flow() {
        let attempt = provider.browser_sign_in().await?;
        println!(
            "To sign in, open this page in a browser on this computer:\n  {}",
            attempt.url
        );
        if let Err(err) = open::that_detached(&attempt.url) {
            println!("(no browser could be opened: {err})");
        }
        println!("Waiting for the sign-in to finish (up to 10 minutes)...");
        let tokens = attempt.finish(Duration::from_secs(600)).await?;
        return tokens.refresh_token.context(
            "the provider issued no refresh token; is offline_access allowed for this client \
             (and among [auth] scopes)?",
        );
    }
    let code = provider.start().await?;
    println!(
        "To sign in, open {} and enter the code {}",
        code.verification_uri, code.user_code
    );
    if let Some(complete) = &code.verification_uri_complete {
        println!("(or open {complete})");
    }
    println!(
        "Waiting for the sign-in to finish (the code expires in {} minutes)...",
        code.expires_in / 60
    );
    let tokens = provider.poll(&code).await?;
    tokens.refresh_token.context(
        "the provider issued no refresh token; is offline_access allowed for this client \
         (and among [auth] scopes)?",
    )
}

/// Says so on stderr when this monti-cli is older than the server supports.
fn warn_if_outdated(server_auth: &monti_protocol::rest::AuthJson) {
    let clients = server_auth.clients.as_ref();
    let Some(version) = clients.and_then(|c| c.update_needed(env!("CARGO_PKG_VERSION"))) else {
        return;
    };
    let link = (clients.and_then(|c| c.download_url.as_deref()))
        .map(|url| format!(": {url}"))
        .unwrap_or_default();
    eprintln!(
        "update MONTI to {version} (this monti-cli is {}){link}",
        env!("CARGO_PKG_VERSION")
    );
}

async fn login(transport: &Transport, server: &str) -> anyhow::Result<()> {
    let server_auth = auth::server_auth(transport, server).await?;
    warn_if_outdated(&server_auth);
    let Some(settings) = auth::SignInSettings::from_server(server_auth) else {
        println!("{server} needs no sign-in.");
        return Ok(());
    };
    let provider = auth::Provider::discover(transport, &settings).await?;
    let store = auth::TokenStore::new(server, &settings)?;
    // Before anyone approves a code on their phone: could the result be kept?
    if let Err(err) = store.probe().await {
        bail!(
            "this computer has no keyring MONTI can use ({err}), so a sign-in could not be kept; \
             sign in for one run with `monti-cli watch --no-keyring`"
        );
    }
    let refresh = device_sign_in(&provider).await?;
    store.save(&refresh).await?;
    println!("Signed in. The sign-in is kept in this computer's keyring, for {server} only.");
    Ok(())
}

/// Forgets the sign-in for `server` and ends it at the provider. Needs the provider, not the
/// server: the keyring keeps where it signed in.
async fn logout(transport: &Transport, server: &str) -> anyhow::Result<()> {
    let store = auth::TokenStore::for_server(server)?;
    let (settings, refresh_token, store) = match store.stored().await? {
        Some((settings, token)) => (settings, token, store),
        // An earlier version kept the token by provider: the server says which.
        None => {
            let settings = match auth::server_auth(transport, server).await {
                Ok(auth) => auth::SignInSettings::from_server(auth),
                Err(_) => None,
            };
            let Some(settings) = settings else {
                println!("Not signed in to {server}.");
                return Ok(());
            };
            let store = auth::TokenStore::new(server, &settings)?;
            let Some(token) = store.load().await? else {
                println!("Not signed in to {server}.");
                return Ok(());
            };
            (settings, token, store)
        }
    };
    let revoked = match auth::Provider::discover(transport, &settings).await {
        Ok(provider) => provider.revoke(&refresh_token).await,
        Err(err) => Err(err),
    };
    store.delete().await?;
    match revoked {
        Ok(true) => println!("Signed out of {server}; the provider ended the sign-in."),
        Ok(false) => println!(
            "Signed out of {server} here. The provider offers no revocation: the sign-in ends \
             there when it expires."
        ),
        Err(err) => println!(
            "Signed out of {server} here, but the provider could not end the sign-in ({err}); \
             it ends there when it expires."
        ),
    }
    Ok(())
}

async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let grouping = args.view.group_by;
    let transport = args.view.connect.transport()?;
    let server = &args.view.connect.server;
    let mut follower = Follower::new(server, "monti-cli watch", args.view.subscription())
        .with_transport(transport.clone());
    let mut renew_at = None;
    let mut session = Session::open(&transport, server, !args.no_keyring).await?;
    if let Some(session) = &mut session {
        let (token, at) = session.access().await?;
        follower = follower.with_token(&token);
        renew_at = Some(at);
    }
    if args.once {
        // Give up after a few failed attempts rather than retrying forever.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let step = tokio::time::timeout_at(deadline.into(), follower.next())
                .await
                .context("no snapshot from the server within 30 s")??;
            match step {
                Step::Snapshot { .. } => break,
                Step::Lost { reason, .. } => eprintln!("monti-cli: {reason}; retrying"),
                _ => {}
            }
        }
        let summary = FloorSummaryJson::from_floor(&follower.floor(), grouping, &Scope::Everything);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", render(&follower.floor(), &summary, &Link::Live, 0));
        }
        return Ok(());
    }
    let mut last_draw = Instant::now() - Duration::from_secs(1);
    loop {
        if renew_at.is_some_and(|at| Instant::now() >= at)
            && let Some(session) = &mut session
        {
            let (token, at) = session.access().await?;
            follower.renew_token(&token).await?;
            renew_at = Some(at);
        }
        let step = follower.next().await?;
        match &step {
            Step::Lost {
                reason, retry_in, ..
            } => {
                eprintln!("monti-cli: {reason}; reconnecting in {retry_in:.1?}");
            }
            Step::Health(health) if health.degraded => {
                eprintln!(
                    "monti-cli: the server says data may be stale: {}",
                    health.reason
                );
            }
            Step::Health(_) => eprintln!("monti-cli: the server's data is complete again"),
            _ => {}
        }
        if last_draw.elapsed() >= Duration::from_millis(500)
            || matches!(step, Step::Snapshot { .. })
        {
            last_draw = Instant::now();
            let summary =
                FloorSummaryJson::from_floor(&follower.floor(), grouping, &Scope::Everything);
            if args.json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                let age = now_ms().saturating_sub(follower.last_update_ms());
                let mut out = std::io::stdout().lock();
                // Clear the screen and draw from the top left.
                write!(
                    out,
                    "\x1b[2J\x1b[H{}",
                    render(&follower.floor(), &summary, follower.link(), age)
                )?;
                out.flush()?;
            }
        }
    }
}

const COLUMNS: [(StateKind, &str); StateKind::COUNT] = [
    (StateKind::Available, "avail"),
    (StateKind::Ringing, "ring"),
    (StateKind::OnCall, "call"),
    (StateKind::OnHold, "hold"),
    (StateKind::WrapUp, "wrap"),
    (StateKind::NotReady, "notrdy"),
    (StateKind::Stale, "nosig"),
    (StateKind::Offline, "off"),
];

/// The table `watch` draws: one row per group, one column per state, and the longest break.
fn render(floor: &Floor, summary: &FloorSummaryJson, link: &Link, age_ms: u64) -> String {
    let link = match link {
        Link::Live if age_ms > 3_000 => format!("STALE ({} s old)", age_ms / 1000),
        Link::Live => "live".to_owned(),
        Link::Syncing => "syncing".to_owned(),
        Link::Connecting => "reconnecting".to_owned(),
    };
    let mut out = format!(
        "MONTI  {} agents  seq {}  {}\n\n{:<28}{:>7}",
        summary.n_agents,
        floor.seq(),
        link,
        "group",
        "agents"
    );
    for (_, label) in COLUMNS {
        out.push_str(&format!("{label:>8}"));
    }
    out.push_str("  longest not ready\n");
    let row = |name: &str,
               total: u32,
               counts: &std::collections::BTreeMap<String, u32>,
               longest: Option<u64>| {
        let mut line = format!("{:<28}{:>7}", truncate(name, 27), total);
        for (kind, _) in COLUMNS {
            line.push_str(&format!(
                "{:>8}",
                counts.get(kind.name()).copied().unwrap_or(0)
            ));
        }
        if let Some(ms) = longest {
            line.push_str(&format!("  {}:{:02}", ms / 60_000, ms / 1000 % 60));
        }
        line.push('\n');
        line
    };
    // Queues first, then the total, so both stay on screen when the groups do not fit.
    out = render_queues(summary, out);
    let total: u32 = summary.totals.values().sum();
    out.push_str(&row("ALL", total, &summary.totals, None));
    out.push('\n');
    for group in &summary.groups {
        let GroupJson {
            name,
            n_agents,
            counts,
            longest_ms,
            ..
        } = group;
        out.push_str(&row(
            name,
            *n_agents,
            counts,
            longest_ms.get(StateKind::NotReady.name()).copied(),
        ));
    }
    out
}

/// The queue table above the agents' (none without `--queues`): waiting, the oldest wait, and
/// today's figures with the service level against the queue's goal.
fn render_queues(summary: &FloorSummaryJson, mut out: String) -> String {
    if summary.queues.is_empty() {
        return out;
    }
    out.insert_str(
        out.find('\n').map_or(out.len(), |end| end + 1),
        &format!(
            "service level: {}\n",
            summary.service_level_formula.as_deref().unwrap_or("?")
        ),
    );
    out.push_str(&format!(
        "{:<28}{:>7}{:>8}{:>8}{:>8}{:>8}{:>10}{:>7}  today\n",
        "queue", "waiting", "oldest", "offered", "answer", "abandon", "SL", "ASA"
    ));
    for queue in &summary.queues {
        let today = &queue.today;
        let oldest = queue.oldest_waiting_secs.map_or("-".to_owned(), |secs| {
            format!("{}:{:02}", secs / 60, secs % 60)
        });
        let level = today.service_level.map_or("-".to_owned(), |level| {
            let mark = if level * 100.0 < f64::from(queue.goal_percent) {
                "!"
            } else {
                ""
            };
            format!("{mark}{:.0}%/{}%", level * 100.0, queue.goal_percent)
        });
        let asa = today
            .asa_secs
            .map_or("-".to_owned(), |secs| format!("{secs:.0}s"));
        out.push_str(&format!(
            "{:<28}{:>7}{:>8}{:>8}{:>8}{:>8}{:>10}{:>7}\n",
            truncate(&queue.name, 27),
            queue.waiting,
            oldest,
            today.offered,
            today.answered,
            today.abandoned,
            level,
            asa
        ));
    }
    out.push('\n');
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max - 1).chain(['…']).collect()
    }
}

async fn run_load(args: LoadArgs) -> anyhow::Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let transport = args.view.connect.transport()?;
    let token = match Session::open(&transport, &args.view.connect.server, true).await? {
        Some(mut session) => Some(session.access().await?.0),
        None => None,
    };
    let report = load::run(LoadOptions {
        token,
        transport,
        server: args.view.connect.server.clone(),
        clients: args.clients,
        duration: args.duration,
        subscription: args.view.subscription(),
        sample: args.sample,
        weigh_json: args.json_weight,
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.clients_live == 0 {
        bail!("no viewer received a snapshot: {:?}", report.failures);
    }
    Ok(())
}

fn print_report(report: &LoadReport) {
    println!(
        "viewers                  {} of {} live",
        report.clients_live, report.clients
    );
    println!("window                   {:.1} s", report.duration_s);
    println!(
        "latency p50 / p99 / max  {:.0} / {:.0} / {:.0} ms ({} samples, {} decoding viewers)",
        report.latency_ms.p50,
        report.latency_ms.p99,
        report.latency_ms.max,
        report.latency_ms.samples,
        report.sampled
    );
    if report.summary_latency_ms.samples > 0 {
        println!(
            "summaries p50 / p99 / max {:.0} / {:.0} / {:.0} ms tick to receipt ({} samples)",
            report.summary_latency_ms.p50,
            report.summary_latency_ms.p99,
            report.summary_latency_ms.max,
            report.summary_latency_ms.samples
        );
    }
    if let Some(server) = &report.server.change_to_send {
        println!(
            "server change to send    p50 <= {:.0} ms, p99 <= {:.0} ms, {:.2} % over 256 ms, \
             {:.2} % over 2 s ({} sends)",
            server.p50_at_most_ms,
            server.p99_at_most_ms,
            server.over_256_ms * 100.0,
            server.over_2_s * 100.0,
            server.samples
        );
    }
    println!(
        "connect p50 / p99 / max  {:.0} / {:.0} / {:.0} ms (TCP, TLS, upgrade, hello)",
        report.connect_ms.p50, report.connect_ms.p99, report.connect_ms.max
    );
    println!(
        "changes per second       {:.1} per viewer",
        report.changes_per_second
    );
    println!(
        "bytes per viewer second  {:.0}",
        report.bytes_per_client_per_second
    );
    println!(
        "bytes per agent change   {:.2}",
        report.bytes_per_agent_change
    );
    if report.queue_changes_per_second > 0.0 {
        println!(
            "queue changes            {:.1} per viewer second, {:.1} bytes each",
            report.queue_changes_per_second, report.bytes_per_queue_change
        );
    }
    println!(
        "snapshot                 {} bytes in {} chunks",
        report.snapshot_bytes, report.snapshot_chunks
    );
    println!(
        "snapshot, roster known   {} bytes",
        report.live_snapshot_bytes
    );
    println!("resyncs                  {}", report.resyncs);
    if report.json_ratio > 0.0 {
        println!(
            "as JSON                  {:.0} bytes per viewer second, {:.1} x what was sent",
            report.json_bytes_per_client_per_second, report.json_ratio
        );
    }
    print_usage(&report.server, report.load_cpu_percent, &report.failures);
}

/// The server's and the load generator's usage over the window, and the first failures.
fn print_usage(server: &load::ServerUsage, load_cpu_percent: Option<f64>, failures: &[String]) {
    let mib = |bytes: Option<u64>| {
        bytes.map_or("?".to_owned(), |bytes| {
            format!("{:.1} MiB", bytes as f64 / 1048576.0)
        })
    };
    println!(
        "server CPU / memory      {} / {} (start {})",
        server
            .cpu_percent
            .map_or("?".to_owned(), |cpu| format!("{cpu:.1} %")),
        mib(server.rss_end_bytes),
        mib(server.rss_start_bytes)
    );
    println!(
        "load generator CPU       {}",
        load_cpu_percent.map_or("?".to_owned(), |cpu| format!("{cpu:.1} % of a core"))
    );
    for failure in failures {
        println!("failure                  {failure}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monti_protocol::queue::{QueueCounts, ServiceLevelRule};
    use monti_protocol::rest::{QueueCountsJson, QueueLiveJson};

    fn queue(name: &str, waiting: u32, oldest: Option<u64>, in_target: u64) -> QueueLiveJson {
        let counts = QueueCounts {
            offered: 100,
            answered: 90,
            answered_in_target: in_target,
            abandoned: 10,
            answered_wait_ms: 90 * 15_000,
            ..QueueCounts::default()
        };
        let counts = QueueCountsJson::of(&counts, ServiceLevelRule::AnsweredAndAbandoned);
        QueueLiveJson {
            name: name.to_owned(),
            channel: "voice".to_owned(),
            target_secs: 20,
            goal_percent: 80,
            waiting,
            oldest_waiting_secs: oldest,
            staffed: None,
            available: None,
            today: counts.clone(),
            recent: counts,
        }
    }

    #[test]
    fn watch_draws_the_queues_above_the_groups_with_a_mark_below_the_goal() {
        let summary = FloorSummaryJson {
            seq: 7,
            time_ms: 0,
            n_agents: 0,
            grouping: "team".to_owned(),
            totals: Default::default(),
            groups: Vec::new(),
            queues: vec![
                queue("Billing Voice", 4, Some(75), 60),
                queue("Sales Voice", 0, None, 85),
            ],
            service_level_formula: Some(ServiceLevelRule::AnsweredAndAbandoned.formula().into()),
            recent_minutes: Some(15),
        };
        let out = render_queues(&summary, "MONTI  header\n\n".to_owned());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            "service level: answered within target / (answered + abandoned)"
        );
        let billing = lines.iter().find(|line| line.starts_with("Billing Voice"));
        let billing = billing.expect("a row per queue");
        assert!(
            billing.contains("1:15") && billing.contains("!60%/80%"),
            "{billing}"
        );
        let sales = lines.iter().find(|line| line.starts_with("Sales Voice"));
        let sales = sales.expect("a row per queue");
        assert!(sales.contains(" - ") && sales.contains("85%/80%") && !sales.contains('!'));
        // Without queues nothing is added.
        let bare = FloorSummaryJson {
            queues: Vec::new(),
            ..summary
        };
        assert_eq!(render_queues(&bare, "x\n".to_owned()), "x\n");
    }
}
