//! The attack suite: hostile clients against a real `monti-server` process, each case checking
//! that the server stays up, keeps answering `/healthz`, and keeps an ordinary viewer beside the
//! attack served. Cases found by attack runs live here, so that they run in CI.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{ServerProcess, temp_dir};
use monti_client::connection::Connection;
use monti_protocol::message::{ServerMsg, Subscription};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `port` from the loopback address `from` (127.0.0.x: many clients).
async fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::from(from), 0))
        .expect("bind");
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect")
}

/// Whether the server closed `stream` (reading gives end of file or a reset) within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar before the close is fine; keep reading to the end.
            Ok(Ok(_)) => {}
        }
    }
}

/// The server answers `/healthz`, and a new viewer gets a snapshot.
async fn still_serving(server: &ServerProcess) {
    let health = tokio::time::timeout(Duration::from_secs(5), server.get("/healthz"))
        .await
        .expect("/healthz answers within 5 s");
    assert!(health.status().is_success());
    let mut viewer = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(&server.url, "beside the attack"),
    )
    .await
    .expect("a viewer connects within 5 s")
    .expect("connects");
    viewer
        .subscribe(&Subscription::default())
        .await
        .expect("subscribes");
    let first = tokio::time::timeout(Duration::from_secs(5), viewer.recv())
        .await
        .expect("a snapshot within 5 s")
        .expect("decodes");
    assert!(matches!(first, ServerMsg::Snapshot(_)), "{first:?}");
}

/// An ordinary viewer following the whole floor while an attack runs beside it.
struct Bystander {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<(u32, Vec<String>, u64)>,
}

impl Bystander {
    async fn start(url: &str) -> Bystander {
        let mut follower = monti_client::Follower::new(url, "bystander", Subscription::default());
        // Live before the attack begins.
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), follower.next())
                .await
                .expect("a snapshot within 30 s")
                .expect("follows");
            if let monti_client::Step::Snapshot { .. } = event {
                break;
            }
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let until = stop.clone();
        let task = tokio::spawn(async move {
            let (mut snapshots, mut lost) = (0, Vec::new());
            loop {
                let event = tokio::select! {
                    () = until.cancelled() => break,
                    event = follower.next() => event.expect("follows"),
                };
                match event {
                    monti_client::Step::Snapshot { .. } => snapshots += 1,
                    monti_client::Step::Lost { reason, .. } => lost.push(reason),
                    _ => {}
                }
            }
            (snapshots, lost, follower.floor().seq())
        });
        Bystander { stop, task }
    }

    /// Ends the watch: the bystander never lost its stream, needed no fresh snapshot and kept
    /// up with the floor.
    async fn saw_no_gap(self) {
        self.stop.cancel();
        let (snapshots, lost, seq) = self.task.await.expect("bystander");
        assert!(lost.is_empty(), "the bystander lost its stream: {lost:?}");
        assert_eq!(snapshots, 0, "the bystander had to resync");
        assert!(seq > 0, "the bystander followed the floor");
    }
}

/// A metric's value; fails when the server does not report it.
async fn metric(server: &ServerProcess, name: &str) -> f64 {
    let text = server.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("the server reports no metric {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_open_connections_hold_up_nobody_and_are_closed() {
    let data = temp_dir("slowloris");
    let db = format!("sqlite://{}/monti.db", data.display());
    let server = ServerProcess::start(
        &[
            "--database-url",
            &db,
            "--simulator-agents",
            "200",
            "--header-timeout-secs",
            "3",
        ],
        true,
    )
    .await;
    let bystander = Bystander::start(&server.url).await;
    // 1,000 connections from four addresses, each with half a request header.
    let mut attackers = Vec::new();
    for n in 0..1_000u32 {
        let from = [127, 0, 0, 2 + (n % 4) as u8];
        let mut stream = connect_from(from, server.port).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .expect("half a header");
        attackers.push(stream);
    }
    still_serving(&server).await;
    // Each is closed once its header deadline has passed (3 s here; 10 s by default).
    let started = tokio::time::Instant::now();
    for stream in &mut attackers {
        assert!(
            closed_within(stream, Duration::from_secs(15)).await,
            "a half-open connection was still open {:?} after the attack began",
            started.elapsed()
        );
    }
    // So is a connection that never says anything, and an idle kept-alive one.
    let mut silent = connect_from([127, 0, 0, 7], server.port).await;
    assert!(closed_within(&mut silent, Duration::from_secs(15)).await);
    let mut idle = connect_from([127, 0, 0, 7], server.port).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("a request");
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(closed_within(&mut idle, Duration::from_secs(15)).await);
    still_serving(&server).await;
    bystander.saw_no_gap().await;
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_only_so_many_connections() {
    let data = temp_dir("per-address");
    let db = format!("sqlite://{}/monti.db", data.display());
    let server = ServerProcess::start(
        &[
            "--database-url",
            &db,
            "--simulator-agents",
            "200",
            "--max-connections-per-address",
            "50",
        ],
        true,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(connect_from([127, 0, 0, 9], server.port).await);
    }
    // The 51st from that address is closed at once; others are not affected.
    let mut over = connect_from([127, 0, 0, 9], server.port).await;
    assert!(closed_within(&mut over, Duration::from_secs(5)).await);
    still_serving(&server).await;
    assert!(
        metric(
            &server,
            "monti_connections_refused_total{code=\"too_many_from_address\"}"
        )
        .await
            >= 1.0
    );
    // Closing some frees their places.
    held.truncate(40);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect_from([127, 0, 0, 9], server.port).await;
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("a request");
        let mut answer = Vec::new();
        let _ = again.read_to_end(&mut answer).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "places were not given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_too_slowly_gets_408_with_a_json_reason() {
    let data = temp_dir("slow-body");
    let db = format!("sqlite://{}/monti.db", data.display());
    let server = ServerProcess::start(
        &[
            "--database-url",
            &db,
            "--simulator-enabled",
            "false",
            "--request-timeout-secs",
            "2",
        ],
        true,
    )
    .await;
    let mut slow = connect_from([127, 0, 0, 11], server.port).await;
    slow.write_all(
        b"POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"events\": [",
    )
    .await
    .expect("the start of a body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("answered within 10 s");
    let _ = read;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\":\"timeout\""), "{text}");
    still_serving(&server).await;
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

/// A quiet floor of `agents` agents in every state over 10 teams, through the events API.
async fn quiet_floor(server: &ServerProcess, agents: usize) {
    let states = [
        "available",
        "on_call",
        "wrap_up",
        "ringing",
        "on_hold",
        "offline",
    ];
    let now = monti_server::core::clock::Clock::system().now_ms();
    let events: Vec<serde_json::Value> = (0..agents)
        .map(|n| {
            serde_json::json!({
                "event_id": format!("seed-{n}"),
                "agent": format!("agent-{n}"),
                "state": states[n % states.len()],
                "since_ms": now - (n as u64 % 600) * 1000,
                "name": format!("Agent Number {n}"),
                "team": format!("Team {}", n % 10),
                "site": format!("Site {}", n % 3),
            })
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/events", server.url))
        .json(&serde_json::json!({ "events": events }))
        .send()
        .await
        .expect("posted");
    assert!(response.status().is_success());
}

/// Subscription number `n` of many distinct ones.
fn distinct(n: usize) -> Subscription {
    use monti_protocol::message::Detail;
    use monti_protocol::model::{Grouping, StateSet, TeamId};
    Subscription {
        grouping: [Grouping::Team, Grouping::Site, Grouping::TeamSite][n % 3],
        detail: Detail::Agents,
        teams: match (n / 3) % 3 {
            0 => Vec::new(),
            team => vec![TeamId(team as u16 - 1)],
        },
        sites: Vec::new(),
        states: StateSet(1 + (n / 9 % 255) as u8),
        known_roster: None,
        queues: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_distinct_subscriptions_leave_memory_flat() {
    let data = temp_dir("subscriptions");
    let db = format!("sqlite://{}/monti.db", data.display());
    let server = ServerProcess::start(
        &["--database-url", &db, "--simulator-enabled", "false"],
        true,
    )
    .await;
    quiet_floor(&server, 10_000).await;
    // Warm up: one full snapshot, so that the floor's own memory is counted before.
    still_serving(&server).await;
    let bystander = Bystander::start(&server.url).await;
    let before = metric(&server, "monti_process_resident_memory_bytes").await;

    // 150 viewers x 20 distinct subscriptions each (the burst a viewer may send), reading
    // every snapshot they are sent.
    let mut received = 0usize;
    let mut viewers = Vec::new();
    for v in 0..150 {
        let url = server.url.clone();
        viewers.push(tokio::spawn(async move {
            let mut viewer = Connection::connect(&url, "flood").await.expect("connects");
            let mut bytes = 0usize;
            for s in 0..20 {
                viewer
                    .subscribe(&distinct(v * 20 + s))
                    .await
                    .expect("subscribes");
                loop {
                    let frame = viewer.recv_frame().await.expect("a frame");
                    bytes += frame.len();
                    if let ServerMsg::Snapshot(chunk) =
                        monti_protocol::codec::decode_server(&frame).expect("decodes")
                        && chunk.last
                    {
                        break;
                    }
                }
            }
            bytes
        }));
        // A few at a time: this is about memory, not about connecting.
        if viewers.len() % 10 == 0 {
            for viewer in viewers.drain(..) {
                received += viewer.await.expect("viewer");
            }
        }
    }
    for viewer in viewers {
        received += viewer.await.expect("viewer");
    }
    let after = metric(&server, "monti_process_resident_memory_bytes").await;
    let grown = (after - before) / 1_048_576.0;
    let sent = received as f64 / 1_048_576.0;
    eprintln!(
        "snapshots sent {sent:.0} MiB; server memory {:.0} -> {:.0} MiB",
        before / 1_048_576.0,
        after / 1_048_576.0
    );
    // Unbounded, every distinct snapshot stayed cached: memory grew by what was sent.
    assert!(
        sent > 200.0,
        "the attack should send well over the cache's bound: {sent:.0} MiB"
    );
    assert!(
        grown < 100.0,
        "server memory grew by {grown:.0} MiB while {sent:.0} MiB of snapshots were sent"
    );
    still_serving(&server).await;
    bystander.saw_no_gap().await;

    // One viewer subscribing without pause is told to stop after its burst.
    let mut greedy = Connection::connect(&server.url, "greedy")
        .await
        .expect("connects");
    let mut refused = None;
    for n in 0..40 {
        if greedy.subscribe(&distinct(n)).await.is_err() {
            break;
        }
    }
    for _ in 0..2_000 {
        match greedy.recv().await {
            Ok(_) => {}
            Err(err) => {
                refused = Some(err.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("refused");
    assert!(refused.contains("TooManySubscriptions"), "{refused}");
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sign_in_only_local_programs_are_answered() {
    let data = temp_dir("mode-none");
    let db = format!("sqlite://{}/monti.db", data.display());
    let server = ServerProcess::start(
        &["--database-url", &db, "--simulator-enabled", "false"],
        true,
    )
    .await;
    let events = format!("{}/api/v1/events", server.url);
    let body = r#"{"events": []}"#;
    let client = reqwest::Client::new();
    // A web page's form post: text/plain needs no CORS preflight, so it is refused as such.
    let plain = client
        .post(&events)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(plain.status().as_u16(), 415);
    let error: serde_json::Value = plain.json().await.expect("JSON");
    assert_eq!(error["error"], "unsupported_media_type");
    // Any request from a web page (it carries an Origin), even as JSON.
    let page = client
        .post(&events)
        .header("content-type", "application/json")
        .header("origin", "https://news.example.com")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status().as_u16(), 403);
    let error: serde_json::Value = page.json().await.expect("JSON");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("web page"),
        "{error}"
    );
    // A page that rebinds its own name to 127.0.0.1 still sends its name as Host.
    let rebound = client
        .get(format!("{}/api/v1/floor/summary", server.url))
        .header("host", format!("attacker.example.com:{}", server.port))
        .send()
        .await
        .expect("answered");
    assert_eq!(rebound.status().as_u16(), 403);
    // The stream too.
    let mut socket = connect_from([127, 0, 0, 1], server.port).await;
    socket
        .write_all(
            format!(
                "GET /api/v1/stream?protocol={} HTTP/1.1\r\nHost: localhost\r\nOrigin: https://x.example\r\n\
                 Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                monti_protocol::PROTOCOL_VERSION
            )
            .as_bytes(),
        )
        .await
        .expect("written");
    let mut head = [0u8; 12];
    socket.read_exact(&mut head).await.expect("answered");
    assert_eq!(&head, b"HTTP/1.1 403");
    // Oversized headers get a JSON 431.
    let big = client
        .get(format!("{}/api/v1/floor/summary", server.url))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .expect("answered");
    assert_eq!(big.status().as_u16(), 431);
    let error: serde_json::Value = big.json().await.expect("JSON");
    assert_eq!(error["error"], "headers_too_large");
    // What the apps send is answered.
    let fine = client
        .post(&events)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(fine.status().as_u16(), 200);
    still_serving(&server).await;
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

/// Sends `frames` on a fresh stream and returns the close code the server sent: `Some(None)`
/// when it dropped the connection without one, `None` when it was still open after 10 s.
async fn closed_after(
    url: &str,
    frames: Vec<tokio_tungstenite::tungstenite::Message>,
) -> Option<Option<u16>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!(
        "{}{}?protocol={}",
        url.replacen("http", "ws", 1),
        monti_protocol::STREAM_PATH,
        monti_protocol::PROTOCOL_VERSION
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    for frame in frames {
        if ws.send(frame).await.is_err() {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Some(frame.map(|frame| u16::from(frame.code)));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Some(None),
            Err(_) => return None,
        }
    }
}

fn hello_frame() -> tokio_tungstenite::tungstenite::Message {
    use monti_protocol::message::{ClientHello, ClientMsg};
    let hello = ClientMsg::Hello(ClientHello {
        protocol_version: monti_protocol::PROTOCOL_VERSION,
        client_name: "attack".into(),
    });
    let frame = monti_protocol::codec::encode_client(&hello).expect("encodes");
    tokio_tungstenite::tungstenite::Message::Binary(frame.into())
}

/// What an attack run found already refused cleanly, replayed in one go beside an ordinary
/// viewer: garbage and oversized frames, a length prefix claiming a huge collection, bodies over
/// the limit, deeply nested JSON and connection churn. Each gets its refusal; the server stays
/// up, its memory stays within a bound, and the viewer beside it sees no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_already_held_still_holds_beside_a_viewer() {
    use tokio_tungstenite::tungstenite::Message;
    let data = temp_dir("held");
    let db = format!("sqlite://{}/monti.db", data.display());
    let server = ServerProcess::start(
        &["--database-url", &db, "--simulator-enabled", "false"],
        true,
    )
    .await;
    quiet_floor(&server, 2_000).await;
    still_serving(&server).await;
    let bystander = Bystander::start(&server.url).await;
    let before = metric(&server, "monti_process_resident_memory_bytes").await;

    // Frames: each closes its own connection with the code WIRE.md gives.
    let bad_frame = 4400;
    // MONTI's limit, or the WebSocket layer's message size; a frame far over it may be cut off
    // by closing the connection while it is still being sent.
    let too_large = [Some(4413), Some(1009), None];
    // What is sent, and the close codes that count as its refusal (`None`: dropped).
    type Case = (&'static str, Vec<Message>, Vec<Option<u16>>);
    let cases: Vec<Case> = vec![
        (
            "garbage",
            vec![Message::Binary(vec![0xff, 0x13, 0x37, 0x00, 0x42].into())],
            vec![Some(bad_frame), Some(4402)],
        ),
        (
            "garbage after a hello",
            vec![hello_frame(), Message::Binary(vec![0x07; 64].into())],
            vec![Some(bad_frame), Some(4402)],
        ),
        (
            // Subscribe whose team list claims 2^63 entries in a 12-byte frame.
            "a huge length prefix",
            vec![
                hello_frame(),
                Message::Binary(
                    [&[1u8, 0, 0][..], &[0xff; 9][..], &[0x7f][..]]
                        .concat()
                        .into(),
                ),
            ],
            vec![Some(bad_frame), Some(4413)],
        ),
        (
            "a frame over the client limit",
            vec![hello_frame(), Message::Binary(vec![1; 1024 * 1024].into())],
            too_large.to_vec(),
        ),
        (
            "a 16 MiB frame",
            vec![Message::Binary(vec![0; 16 * 1024 * 1024].into())],
            too_large.to_vec(),
        ),
        (
            "a text frame",
            vec![Message::Text("hello".into())],
            vec![Some(1003)],
        ),
    ];
    for (what, frames, codes) in cases {
        let code = closed_after(&server.url, frames).await;
        assert!(
            code.is_some_and(|code| codes.contains(&code)),
            "{what}: closed with {code:?}, expected one of {codes:?}"
        );
    }

    // Bodies: over the limit, and nested deeper than any parser should follow.
    let http = reqwest::Client::new();
    let events = format!("{}/api/v1/events", server.url);
    let big = format!(
        "{{\"events\": [], \"pad\": \"{}\"}}",
        "x".repeat(20 * 1024 * 1024)
    );
    match http
        .post(&events)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
    {
        Ok(response) => {
            assert_eq!(response.status().as_u16(), 413, "a 20 MB body");
            let body: serde_json::Value = response.json().await.expect("a JSON reason");
            assert!(body["message"].is_string(), "{body}");
        }
        // The server may answer and close before the client finished sending.
        Err(err) => assert!(err.is_request() || err.is_body(), "a 20 MB body: {err}"),
    }
    let deep = format!(
        "{{\"events\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let response = http
        .post(&events)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("deep JSON answered");
    assert_eq!(response.status().as_u16(), 400, "100,000-deep JSON");
    let body: serde_json::Value = response.json().await.expect("a JSON reason");
    assert!(body["message"].is_string(), "{body}");

    // Churn: 500 viewers that connect, subscribe and vanish, 25 at a time.
    let mut churned = 0;
    for _ in 0..20 {
        let batch: Vec<_> = (0..25)
            .map(|_| {
                let url = server.url.clone();
                tokio::spawn(async move {
                    let mut viewer = Connection::connect(&url, "churn").await.expect("connects");
                    viewer
                        .subscribe(&Subscription::default())
                        .await
                        .expect("subscribes");
                    // Gone without reading its snapshot or closing.
                })
            })
            .collect();
        for task in batch {
            task.await.expect("churn");
            churned += 1;
        }
    }
    assert_eq!(churned, 500);

    still_serving(&server).await;
    let after = metric(&server, "monti_process_resident_memory_bytes").await;
    eprintln!(
        "server memory {:.0} -> {:.0} MiB",
        before / 1_048_576.0,
        after / 1_048_576.0
    );
    assert!(
        after - before < 64.0 * 1_048_576.0,
        "memory grew by {:.0} MiB",
        (after - before) / 1_048_576.0
    );
    bystander.saw_no_gap().await;
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}
