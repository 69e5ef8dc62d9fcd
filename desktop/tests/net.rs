//! The app's network layer against a real `monti-server` process on loopback: it follows the
//! simulated floor until its model equals the server's, narrows to a team on request, and after
//! the server is killed and started again it reconnects and resyncs to the new floor.

mod common;

use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{free_port, server_binary};
use monti_client::follow::{Follower, Link};
use monti_desktop::net::{Net, Request, SignIn, lock};
use monti_protocol::floor::Floor;
use monti_protocol::message::Subscription;
use monti_protocol::model::TeamId;

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(port: u16, data: &Path, seed: u64) -> Server {
        Server::start_with(port, data, seed, &[])
    }

    /// Like [`Server::start`], with more flags.
    fn start_with(port: u16, data: &Path, seed: u64, flags: &[&str]) -> Server {
        let child = Process::new(server_binary())
            .args(flags)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--database-url",
                &format!("sqlite://{}/monti.db", data.display()),
            ])
            .args(["--simulator-agents", "300", "--simulator-speed", "600"])
            .args(["--simulator-duration-minutes", "20"])
            .args(["--simulator-seed", &seed.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the server starts");
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Like `kill -9`: no goodbye to the viewers.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a viewer connecting now receives.
async fn fresh_view(url: &str, sub: &Subscription) -> Option<Floor> {
    let mut follower = Follower::new(url, "test fresh view", sub.clone());
    tokio::time::timeout(Duration::from_secs(10), follower.until_live())
        .await
        .ok()?
        .ok()?;
    let floor = follower.floor().clone();
    Some(floor)
}

/// A copy of the floor the app shows.
fn app_floor(net: &Net) -> Floor {
    let floor = net.session().floor.clone();
    lock(&floor).clone()
}

/// Waits until the app's floor equals a fresh view of the server, or panics after `limit`.
async fn until_equal(net: &Net, url: &str, sub: &Subscription, limit: Duration) -> Floor {
    let started = Instant::now();
    loop {
        let app_floor = app_floor(net);
        if app_floor.is_ready()
            && let Some(server_floor) = fresh_view(url, sub).await
            && app_floor == server_floor
        {
            return app_floor;
        }
        assert!(
            started.elapsed() < limit,
            "the app's floor never matched the server's (link {:?}, {} agents)",
            net.session().link,
            app_floor.n_agents()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn until(net: &Net, what: &str, limit: Duration, check: impl Fn(&Net) -> bool) {
    let started = Instant::now();
    while !check(net) {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_follows_the_server_and_resyncs_after_a_restart() {
    let data = std::env::temp_dir().join(format!("monti-desktop-net-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data dir");
    let port = free_port();
    let server = Server::start(port, &data, 1);
    let url = server.url.clone();
    let repaints = Arc::new(AtomicUsize::new(0));
    let counter = repaints.clone();
    let wallboard = Some("hall-1".to_owned());
    let net = Net::start(
        &url,
        Default::default(),
        Subscription::default(),
        wallboard,
        move || {
            counter.fetch_add(1, Ordering::Relaxed);
        },
    )
    .expect("network thread");

    until(&net, "the first snapshot", Duration::from_secs(30), |net| {
        net.session().link == Link::Live
    })
    .await;
    {
        let session = net.session();
        assert_eq!(session.sign_in, SignIn::NotNeeded);
        assert!(session.server_name.is_some());
    }
    let everything = Subscription::default();
    let before = until_equal(&net, &url, &everything, Duration::from_secs(30)).await;
    assert_eq!(before.n_agents(), 300);
    assert!(repaints.load(Ordering::Relaxed) > 0, "the UI is told");
    until(
        &net,
        "who is signed in and the lists",
        Duration::from_secs(10),
        |net| {
            let session = net.session();
            session.me.as_ref().is_some_and(|me| me.subject == "local") && !session.teams.is_empty()
        },
    )
    .await;
    assert_eq!(
        net.session().wallboard,
        Some(monti_protocol::rest::WallboardConfig::default()),
        "the wallboard's configuration is read"
    );

    // The agent panel's history, read from the server by the names the app shows: an agent
    // whose name is unique in their team and site (the simulator's names may repeat) and whose
    // state came from an event (the simulator's roster makes every agent offline, without
    // history, before its opening states are stored).
    let from_an_event = |record: &monti_protocol::floor::AgentRecord| {
        record
            .live
            .is_some_and(|live| live.status != monti_protocol::model::AgentStatus::Offline)
    };
    until(
        &net,
        "the simulator's opening states",
        Duration::from_secs(10),
        |net| app_floor(net).agents().any(from_an_event),
    )
    .await;
    let floor = app_floor(&net);
    let unique = floor
        .agents()
        .filter(|record| from_an_event(record))
        .find(|record| {
            (floor.agents())
                .filter(|other| {
                    other.info.name == record.info.name
                        && other.info.team == record.info.team
                        && other.info.site == record.info.site
                })
                .count()
                == 1
        })
        .expect("an agent with a unique name");
    let now = monti_client::connection::now_ms();
    let panel =
        monti_desktop::agent::AgentPanel::open(&floor, unique.info.id, now).expect("a known agent");
    net.send(Request::History(panel.wanted.clone()));
    until(
        &net,
        "the agent's history",
        Duration::from_secs(10),
        |net| net.session().history.is_some(),
    )
    .await;
    let history = net.session().history.clone().expect("an answer");
    assert_eq!(history.wanted, panel.wanted);
    let entries = history.entries.expect("the history is read");
    assert!(!entries.is_empty(), "the simulated day left history");
    assert!(entries.iter().all(|entry| entry.name == unique.info.name));

    // Thresholds saved through the network thread: the server's answer is the session's.
    let mut thresholds = net.session().thresholds.clone();
    let lunch = monti_protocol::rest::Limit {
        amber_secs: 1_800,
        red_secs: 2_400,
    };
    thresholds
        .default
        .insert("not_ready:lunch".to_owned(), lunch);
    net.send(Request::SetThresholds(thresholds.clone()));
    until(
        &net,
        "the thresholds saved",
        Duration::from_secs(10),
        |net| net.session().thresholds_saved.is_some(),
    )
    .await;
    assert_eq!(net.session().thresholds_saved, Some(Ok(())));
    assert_eq!(net.session().thresholds, thresholds);
    // A refusal says why.
    thresholds.default.insert("not_ready:".to_owned(), lunch);
    net.session().thresholds_saved = None;
    net.send(Request::SetThresholds(thresholds));
    until(&net, "the refusal", Duration::from_secs(10), |net| {
        net.session().thresholds_saved.is_some()
    })
    .await;
    let refused = net.session().thresholds_saved.clone().expect("an answer");
    assert!(
        refused
            .as_ref()
            .is_err_and(|why| why.contains("unknown state \"not_ready:\"")),
        "{refused:?}"
    );

    // A filter becomes a server-side subscription.
    let team = Subscription {
        teams: vec![TeamId(0)],
        ..Subscription::default()
    };
    net.send(Request::Subscribe(team.clone()));
    let narrowed = until_equal(&net, &url, &team, Duration::from_secs(30)).await;
    assert!(narrowed.n_agents() > 0 && narrowed.n_agents() < 300);
    assert!(
        narrowed
            .agents()
            .all(|record| record.info.team == TeamId(0))
    );
    net.send(Request::Subscribe(everything.clone()));
    until_equal(&net, &url, &everything, Duration::from_secs(30)).await;

    // Killed: the app keeps the last floor and says it is not live.
    server.kill();
    until(&net, "the loss to show", Duration::from_secs(10), |net| {
        net.session().link != Link::Live
    })
    .await;
    assert!(
        lock(&net.session().floor).is_ready(),
        "the last floor stays"
    );
    // Why, in plain words once a reconnect has failed (the first loss may read "connection
    // broken").
    until(
        &net,
        "the refused reconnect",
        Duration::from_secs(15),
        |net| net.session().problem_words.as_deref() == Some("server unreachable"),
    )
    .await;

    // Started again with another day: the app reconnects and resyncs to it.
    let server = Server::start(port, &data, 2);
    let after = until_equal(&net, &url, &everything, Duration::from_secs(60)).await;
    assert_ne!(
        after
            .agents()
            .map(|record| &record.info.name)
            .collect::<Vec<_>>(),
        before
            .agents()
            .map(|record| &record.info.name)
            .collect::<Vec<_>>(),
        "the floor is the restarted server's"
    );
    assert_eq!(net.session().link, Link::Live);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ca_file_is_shown_until_the_settings_change() {
    let data = std::env::temp_dir().join(format!("monti-desktop-ca-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data dir");
    let server = Server::start(free_port(), &data, 3);
    let missing = data.join("no-such-ca.pem");
    let transport = monti_client::TransportOptions {
        ca_file: Some(missing.clone()),
        proxy: None,
    };
    let net = Net::start(&server.url, transport, Subscription::default(), None, || {})
        .expect("network thread");
    until(
        &net,
        "the CA file problem",
        Duration::from_secs(30),
        |net| {
            net.session()
                .problem
                .as_deref()
                .is_some_and(|problem| problem.contains("no-such-ca.pem"))
        },
    )
    .await;
    assert_ne!(net.session().link, Link::Live);
    // Without the file the same server streams.
    net.send(Request::Connect {
        server: server.url.clone(),
        transport: Default::default(),
    });
    until(&net, "the stream", Duration::from_secs(30), |net| {
        net.session().link == Link::Live
    })
    .await;
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_supports_only_newer_apps_tells_the_app_to_update() {
    let data = std::env::temp_dir().join(format!("monti-desktop-update-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data dir");
    let flags = [
        "--clients-oldest-version",
        "999.0.0",
        "--clients-download-url",
        "https://monti.example.com/download",
    ];
    let server = Server::start_with(free_port(), &data, 5, &flags);
    let net = Net::start(
        &server.url,
        Default::default(),
        Subscription::default(),
        None,
        || {},
    )
    .expect("network thread");
    until(&net, "the update notice", Duration::from_secs(30), |net| {
        net.session().update.is_some()
    })
    .await;
    let update = net.session().update.clone().expect("an update");
    assert_eq!(update.version, "999.0.0");
    assert_eq!(
        update.download_url.as_deref(),
        Some("https://monti.example.com/download")
    );
    assert!(update.text().starts_with("Update MONTI to 999.0.0"));
    drop(net);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
