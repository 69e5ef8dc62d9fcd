//! The WebSocket stream at `/api/v1/stream`: handshake, subscribe, snapshot, deltas.
//!
//! One task per viewer selects over four things: the socket (subscriptions, pongs, close), the
//! tick broadcast (its bounded outbound queue), a keepalive timer, and shutdown. A viewer that
//! falls behind the broadcast is resynced with a fresh snapshot; one that needs too many resyncs,
//! or whose socket stays blocked, is disconnected with a reason. Every refusal closes only the
//! offending connection, with a close code from [`ErrorCode::close_code`], and is counted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use monti_protocol::PROTOCOL_VERSION;
use monti_protocol::access::ViewAs;
use monti_protocol::codec::decode_client;
use monti_protocol::message::{
    AuthInfo, ClientMsg, ErrorCode, ErrorMsg, Keepalive, ServerHello, ServerMsg, Subscription,
};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::api::access::Now;
use crate::api::auth::{Action, Authenticator, Caller, caller_of, can, test_access};
use crate::api::error::Error;
use crate::config::AuthMode;
use crate::core::clock::Clock;
use crate::floor::live::{Subscribed, SummaryViewer, TickFrame, ViewKey, encode};

/// How long a client has to say hello and to subscribe after connecting.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message the WebSocket layer reads at all; frames between [`MAX_CLIENT_FRAME`] and
/// this are read and refused with a clear reason, larger ones end the connection at once.
const MAX_WS_MESSAGE: usize = 1024 * 1024;
/// Initial read buffer per viewer.
const READ_BUFFER: usize = 4 * 1024;
const _: () = assert!(monti_protocol::codec::MAX_CLIENT_FRAME < MAX_WS_MESSAGE);

/// Query of the upgrade request: a client may state its protocol version up front, so that a
/// mismatch is refused before the upgrade (426) instead of after it.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    protocol: Option<u16>,
}

/// `GET /api/v1/stream`: upgrades to a WebSocket if the version fits and there is room. An
/// administrator may add `as_group` or `as_role` (with `as_team`, `as_site`) to see the floor
/// as that group or binding would (test access, [`ViewAs`]).
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    RawQuery(raw): RawQuery,
    peer: Option<axum::Extension<crate::net::peer::Peer>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return Error::BadRequest(rejection.body_text()).into_response(),
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let view_as = match ViewAs::from_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(view_as) => view_as,
        Err(why) => return Error::BadRequest(why).into_response(),
    };
    if let Some(version) = query
        .protocol
        .filter(|&version| version != PROTOCOL_VERSION)
    {
        state.metrics.refuse(ErrorCode::VersionMismatch);
        return (
            StatusCode::UPGRADE_REQUIRED,
            Error::body("version_mismatch", &version_mismatch(version)),
        )
            .into_response();
    }
    // A caller whose role may not stream (ingest) is refused before the upgrade, with a status.
    if !can(&caller, Action::Subscribe) {
        state.metrics.refuse(ErrorCode::Forbidden);
        return Error::Forbidden.into_response();
    }
    if let Some(view_as) = &view_as {
        if let Err(why) = test_access(&state, &caller, view_as) {
            state.metrics.refuse(ErrorCode::Forbidden);
            return Error::Refused(why).into_response();
        }
        (state.audit).test_access(
            &caller.subject,
            &format!("opened the floor as {}", view_as.text()),
        );
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return Error::BadRequest(rejection.body_text()).into_response(),
    };
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        state.metrics.refuse(ErrorCode::TooManyConnections);
        return Error::Unavailable("the server has no room for another viewer".into())
            .into_response();
    };
    let tasks = state.tasks.clone();
    ws.max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        // Clients send a few small messages, so the default 128 KiB read buffer per viewer
        // would be most of a viewer's memory; outbound frames are flushed one by one.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            tasks.track_future(async move {
                let _permit = permit;
                let address = peer.map(|peer| peer.addr.to_string());
                serve(socket, state, caller, view_as, address).await;
            })
        })
}

fn version_mismatch(client: u16) -> String {
    format!(
        "this server speaks MONTI protocol {PROTOCOL_VERSION} and the client speaks {client}; \
         install the client that matches the server"
    )
}

/// Why a connection is being closed by the server.
struct Closing {
    /// `None` when the peer is already gone: nothing to tell it, nothing to count.
    code: Option<ErrorCode>,
    message: String,
}

impl Closing {
    fn new(code: ErrorCode, message: impl Into<String>) -> Closing {
        Closing {
            code: Some(code),
            message: message.into(),
        }
    }

    /// The connection broke under us (the viewer went away mid-send).
    fn gone() -> Closing {
        Closing {
            code: None,
            message: String::new(),
        }
    }
}

/// Serves one viewer until it leaves or is closed.
async fn serve(
    mut socket: WebSocket,
    state: AppState,
    real: Caller,
    view_as: Option<ViewAs>,
    address: Option<String>,
) {
    state.metrics.connected_clients.inc();
    let caller = match &view_as {
        Some(view_as) => test_access(&state, &real, view_as).unwrap_or_else(|_| Caller {
            bindings: Vec::new(),
            ..real.clone()
        }),
        None => real.clone(),
    };
    let mut connection = Connection {
        state: state.clone(),
        bindings: state.access.watch(),
        real,
        view_as,
        caller,
        client: None,
        last_sent: Instant::now(),
        last_heard: Instant::now(),
        resyncs: VecDeque::new(),
        subscribe_tokens: SUBSCRIBE_BURST,
        subscribe_refilled: Instant::now(),
    };
    let outcome = connection.session(&mut socket, &address).await;
    if let Some(client) = &connection.client {
        let subject = &connection.real.subject;
        let now = state.clock.now_ms();
        (state.access).connection(&state.db, subject, client, address, false, now);
    }
    if let Err(Closing {
        code: Some(code),
        message,
    }) = outcome
    {
        if !matches!(code, ErrorCode::ShuttingDown) {
            tracing::debug!(?code, %message, "closing viewer");
        }
        state.metrics.refuse(code);
        let error = ServerMsg::Error(ErrorMsg {
            code,
            message: message.clone(),
        });
        let close = Message::Close(Some(CloseFrame {
            code: code.close_code(),
            reason: truncate_reason(&message).into(),
        }));
        let goodbye = async {
            socket.send(Message::Binary(encode(&error).into())).await?;
            socket.send(close).await
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }
    state.metrics.connected_clients.dec();
}

/// Resolves when a token expiring at `expires_at` (seconds since the epoch) has expired; never
/// for `None`.
async fn token_expiry(expires_at: Option<u64>, clock: &Clock) {
    match expires_at {
        Some(expires_at) => {
            let now_secs = clock.now_ms() / 1000;
            tokio::time::sleep(Duration::from_secs(expires_at.saturating_sub(now_secs))).await;
        }
        None => std::future::pending().await,
    }
}

/// A close reason must fit in 123 bytes.
fn truncate_reason(message: &str) -> String {
    let mut end = message.len().min(123);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

struct Connection {
    state: AppState,
    /// Told when administrators change who may see what.
    bindings: tokio::sync::watch::Receiver<std::sync::Arc<Now>>,
    /// Whose token opened the connection.
    real: Caller,
    /// Whom an administrator sees the floor as (test access).
    view_as: Option<ViewAs>,
    /// Who is watching (`real`, or whom it views the floor as); decides what each subscription
    /// may show.
    caller: Caller,
    /// The app and version it said hello with, once it did.
    client: Option<String>,
    last_sent: Instant,
    last_heard: Instant,
    /// When recent resyncs happened, to tell a briefly slow viewer from a hopeless one.
    resyncs: VecDeque<Instant>,
    /// Subscriptions this viewer may still send at once (see [`SUBSCRIBE_BURST`]).
    subscribe_tokens: f64,
    /// When `subscribe_tokens` was last topped up.
    subscribe_refilled: Instant,
}

/// Subscriptions a viewer may send in a burst (a person clicking through filters), and how many
/// a second after that. Each costs the server a snapshot; beyond this it is an attack.
const SUBSCRIBE_BURST: f64 = 20.0;
const SUBSCRIBES_PER_SECOND: f64 = 2.0;

/// The subscription a viewer currently follows.
struct Followed {
    /// The view's key: shared encoded deltas are looked up by it.
    key: ViewKey,
    seq: u64,
    ticks: tokio::sync::broadcast::Receiver<std::sync::Arc<TickFrame>>,
    /// Keeps summaries in the ticks while this view follows them.
    _summaries: Option<SummaryViewer>,
}

enum Inbound {
    Message(ClientMsg),
    Closed,
}

impl Connection {
    /// Takes one subscription from the viewer's allowance, or refuses it.
    fn may_subscribe(&mut self) -> Result<(), Closing> {
        let now = Instant::now();
        let earned =
            now.duration_since(self.subscribe_refilled).as_secs_f64() * SUBSCRIBES_PER_SECOND;
        self.subscribe_tokens = (self.subscribe_tokens + earned).min(SUBSCRIBE_BURST);
        self.subscribe_refilled = now;
        if self.subscribe_tokens < 1.0 {
            return Err(Closing::new(
                ErrorCode::TooManySubscriptions,
                format!(
                    "more than {SUBSCRIBE_BURST} subscriptions at once; at most \
                     {SUBSCRIBES_PER_SECOND} a second after that"
                ),
            ));
        }
        self.subscribe_tokens -= 1.0;
        Ok(())
    }

    async fn session(
        &mut self,
        socket: &mut WebSocket,
        address: &Option<String>,
    ) -> Result<(), Closing> {
        // A client still shaking hands must not hold up shutdown.
        let shutdown = self.state.shutdown.clone();
        let sub = tokio::select! {
            _ = shutdown.cancelled() => {
                return Err(Closing::new(ErrorCode::ShuttingDown, "the server is shutting down"));
            }
            sub = self.handshake(socket) => sub?,
        };
        let Some(sub) = sub else {
            return Ok(());
        };
        if let Some(client) = &self.client {
            let now = self.state.clock.now_ms();
            let (state, subject) = (&self.state, &self.real.subject);
            (state.access).connection(&state.db, subject, client, address.clone(), true, now);
        }
        let mut view = self.subscribe(socket, &sub).await?;
        self.follow(socket, &mut view).await
    }

    /// Hello in, hello out, the first subscription in; `None` when the client leaves first.
    async fn handshake(&mut self, socket: &mut WebSocket) -> Result<Option<Subscription>, Closing> {
        let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.receive(socket)).await {
            Ok(inbound) => inbound?,
            Err(_) => {
                return Err(Closing::new(
                    ErrorCode::UnexpectedMessage,
                    "no hello within 10 s",
                ));
            }
        };
        match hello {
            Inbound::Closed => return Ok(None),
            Inbound::Message(ClientMsg::Hello(hello))
                if hello.protocol_version == PROTOCOL_VERSION =>
            {
                tracing::debug!(client = %hello.client_name, "viewer said hello");
                // What a person typed in no field: still, keep the device list readable.
                let client: String = (hello.client_name.chars())
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect();
                self.client = Some(client);
            }
            Inbound::Message(ClientMsg::Hello(hello)) => {
                return Err(Closing::new(
                    ErrorCode::VersionMismatch,
                    version_mismatch(hello.protocol_version),
                ));
            }
            Inbound::Message(_) => {
                return Err(Closing::new(
                    ErrorCode::UnexpectedMessage,
                    "the first message must be Hello",
                ));
            }
        }
        let config = &self.state.config.server;
        let hello = ServerMsg::Hello(ServerHello {
            protocol_version: PROTOCOL_VERSION,
            server_time_ms: self.state.clock.now_ms(),
            server_name: format!("monti-server {}", env!("CARGO_PKG_VERSION")),
            keepalive_ms: (config.keepalive_secs * 1000) as u32,
            instance: self.state.live.instance,
            auth: match &self.state.config.auth.mode {
                AuthMode::None => AuthInfo::None,
                AuthMode::Oidc => AuthInfo::Oidc {
                    issuer: self.state.config.auth.issuer.clone(),
                    client_id: self.state.config.auth.client_id.clone(),
                    audience: self.state.config.auth.audience.clone(),
                },
            },
        });
        self.send(socket, encode(&hello).into()).await?;
        let sub = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.receive(socket)).await {
            Ok(Ok(Inbound::Message(ClientMsg::Subscribe(sub)))) => sub,
            Ok(Ok(Inbound::Message(_))) => {
                return Err(Closing::new(
                    ErrorCode::UnexpectedMessage,
                    "expected Subscribe after Hello",
                ));
            }
            Ok(Ok(Inbound::Closed)) => return Ok(None),
            Ok(Err(closing)) => return Err(closing),
            Err(_) => {
                return Err(Closing::new(
                    ErrorCode::UnexpectedMessage,
                    "no subscription within 10 s",
                ));
            }
        };
        Ok(Some(sub))
    }

    /// The main loop: deltas out, subscriptions in, keepalives, shutdown.
    async fn follow(&mut self, socket: &mut WebSocket, view: &mut Followed) -> Result<(), Closing> {
        let keepalive_every = self.state.config.server.keepalive();
        let mut keepalive = tokio::time::interval(keepalive_every);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.state.shutdown.clone();
        let clock = self.state.clock.clone();
        let mut health = self.state.live.health();
        // A clone keeps what the connection has seen: a change since the handshake counts.
        let mut bindings = self.bindings.clone();
        if health.borrow_and_update().degraded {
            let msg = ServerMsg::Health(health.borrow().clone());
            self.send(socket, encode(&msg).into()).await?;
        }
        loop {
            let expires_at = self.caller.expires_at;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    return Err(Closing::new(ErrorCode::ShuttingDown, "the server is shutting down"));
                }
                inbound = self.receive(socket) => match inbound? {
                    Inbound::Closed => return Ok(()),
                    Inbound::Message(ClientMsg::Subscribe(sub)) => {
                        self.may_subscribe()?;
                        *view = self.subscribe(socket, &sub).await?;
                    }
                    Inbound::Message(ClientMsg::Hello(_)) => {
                        return Err(Closing::new(ErrorCode::UnexpectedMessage, "Hello may only be sent once"));
                    }
                    Inbound::Message(ClientMsg::RenewToken(token)) => self.renew(socket, view, &token).await?,
                },
                Ok(()) = bindings.changed() => {
                    let now = bindings.borrow_and_update().clone();
                    if let Some(why) = now.refused(&self.real.subject, self.real.signed_in_ms)
                        && !matches!(*self.state.auth, Authenticator::None)
                    {
                        return Err(Closing::new(ErrorCode::Unauthorized, why));
                    }
                    let real = self.rebound();
                    self.rebind(socket, view, real).await?;
                }
                _ = token_expiry(expires_at, &clock) => {
                    return Err(Closing::new(
                        ErrorCode::Unauthorized,
                        "the access token expired; sign in again or renew it on the connection",
                    ));
                }
                tick = view.ticks.recv() => match tick {
                    Ok(frame) => self.forward(socket, view, &frame).await?,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "viewer fell behind; resyncing");
                        self.resync(socket, view).await?;
                    }
                    Err(RecvError::Closed) => {
                        return Err(Closing::new(ErrorCode::ShuttingDown, "the server is shutting down"));
                    }
                },
                Ok(()) = health.changed() => {
                    let msg = ServerMsg::Health(health.borrow_and_update().clone());
                    self.send(socket, encode(&msg).into()).await?;
                }
                _ = keepalive.tick() => {
                    if self.last_heard.elapsed() > keepalive_every * 3 {
                        tracing::debug!("viewer silent for three keepalive intervals; dropping");
                        return Ok(());
                    }
                    if self.last_sent.elapsed() >= keepalive_every {
                        let msg = ServerMsg::Keepalive(Keepalive { seq: view.seq, server_time_ms: self.state.clock.now_ms() });
                        self.send(socket, encode(&msg).into()).await?;
                    }
                    self.send_raw(socket, Message::Ping(Bytes::new())).await?;
                }
            }
        }
    }

    /// Takes a renewed token for the open connection. It must name the same person; if their
    /// groups changed what they may see, the view is resent under the new scope.
    async fn renew(
        &mut self,
        socket: &mut WebSocket,
        view: &mut Followed,
        token: &str,
    ) -> Result<(), Closing> {
        let state = &self.state;
        let caller = state
            .auth
            .caller_of_token(token, None, state)
            .await
            .map_err(|_| {
                Closing::new(
                    ErrorCode::Unauthorized,
                    "the renewed token was not accepted",
                )
            })?;
        if caller.subject != self.real.subject {
            return Err(Closing::new(
                ErrorCode::Forbidden,
                "a renewed token must name the same person",
            ));
        }
        self.rebind(socket, view, caller).await
    }

    /// The token's caller under the bindings in force now (the local administrator stays one).
    fn rebound(&self) -> Caller {
        if let Authenticator::None = *self.state.auth {
            return self.real.clone();
        }
        let bindings = &self.state.access.now().stored;
        let real = &self.real;
        let mut caller = self.state.live.read(|floor| {
            caller_of(
                &real.subject,
                &real.groups,
                real.expires_at,
                &bindings.bindings,
                floor,
            )
        });
        caller.signed_in_ms = real.signed_in_ms;
        caller
    }

    /// Takes `real` as the connection's caller (a renewed token, changed bindings): a view it
    /// may no longer see is closed with the reason, one whose scope changed is sent afresh.
    async fn rebind(
        &mut self,
        socket: &mut WebSocket,
        view: &mut Followed,
        real: Caller,
    ) -> Result<(), Closing> {
        let action = Action::to_view(view.key.sub.detail);
        let caller = match &self.view_as {
            None => real.clone(),
            Some(view_as) => test_access(&self.state, &real, view_as).map_err(|why| {
                Closing::new(ErrorCode::Forbidden, format!("test access ended: {why}"))
            })?,
        };
        self.real = real;
        if !can(&caller, Action::Subscribe) || !can(&caller, action) {
            return Err(Closing::new(
                ErrorCode::Forbidden,
                "an administrator changed who may see what: you may no longer see the floor",
            ));
        }
        let scope_changed = caller.scope(action) != self.caller.scope(action);
        self.caller = caller;
        if scope_changed {
            let sub = view.key.sub.clone();
            *view = self.subscribe(socket, &sub).await?;
        }
        Ok(())
    }

    /// Sends the delta of one tick, or resyncs if the tick does not follow the view.
    async fn forward(
        &mut self,
        socket: &mut WebSocket,
        view: &mut Followed,
        frame: &TickFrame,
    ) -> Result<(), Closing> {
        let seq = frame.tick.seq;
        if seq <= view.seq {
            return Ok(()); // Already in the snapshot.
        }
        if seq != view.seq + 1 {
            return self.resync(socket, view).await;
        }
        let bytes = frame.delta_frame(&view.key);
        self.send(socket, bytes).await?;
        view.seq = seq;
        (self.state.metrics).change_sent(frame.oldest_change.elapsed().as_secs_f64());
        Ok(())
    }

    /// Replaces the view with a fresh snapshot of the same subscription, unless the viewer has
    /// needed too many of those lately.
    async fn resync(&mut self, socket: &mut WebSocket, view: &mut Followed) -> Result<(), Closing> {
        let now = Instant::now();
        while self
            .resyncs
            .front()
            .is_some_and(|at| now.duration_since(*at) > Duration::from_secs(60))
        {
            self.resyncs.pop_front();
        }
        if self.resyncs.len() >= self.state.config.server.max_resyncs_per_minute {
            self.state.metrics.slow_clients_dropped.inc();
            return Err(Closing::new(
                ErrorCode::TooSlow,
                "the connection cannot keep up with the floor; reconnect on a faster link",
            ));
        }
        self.resyncs.push_back(now);
        self.state.metrics.resyncs.inc();
        let sub = view.key.sub.clone();
        *view = self.subscribe(socket, &sub).await?;
        Ok(())
    }

    /// Validates a subscription, sends its snapshot and returns the view that follows it.
    async fn subscribe(
        &mut self,
        socket: &mut WebSocket,
        sub: &Subscription,
    ) -> Result<Followed, Closing> {
        let action = Action::to_view(sub.detail);
        if !can(&self.caller, Action::Subscribe) || !can(&self.caller, action) {
            tracing::debug!(subject = %self.caller.subject, "subscription refused");
            return Err(Closing::new(
                ErrorCode::Forbidden,
                "you may not subscribe to this view",
            ));
        }
        let scope = self.caller.scope(action);
        let chunk_agents = self.state.config.server.snapshot_chunk_agents;
        let Subscribed {
            key,
            chunks,
            seq,
            ticks,
            summaries,
        } = self
            .state
            .live
            .subscribe(sub, &scope, chunk_agents)
            .map_err(|(code, message)| Closing::new(code, message))?;
        for chunk in chunks.iter() {
            self.send(socket, chunk.clone()).await?;
        }
        Ok(Followed {
            key,
            seq,
            ticks,
            _summaries: summaries,
        })
    }

    /// Reads the next client message; pings, pongs and oversized or undecodable frames are
    /// handled here.
    async fn receive(&mut self, socket: &mut WebSocket) -> Result<Inbound, Closing> {
        loop {
            let Some(message) = socket.recv().await else {
                return Ok(Inbound::Closed);
            };
            self.last_heard = Instant::now();
            match message {
                Ok(Message::Binary(frame)) => {
                    return decode_client(&frame)
                        .map(Inbound::Message)
                        .map_err(|err| Closing::new(err.code(), err.to_string()));
                }
                Ok(Message::Text(_)) => {
                    return Err(Closing::new(
                        ErrorCode::UnsupportedFrame,
                        "text frames are not part of the MONTI protocol; send binary frames",
                    ));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(Message::Close(_)) => return Ok(Inbound::Closed),
                Err(err) => {
                    // Oversized beyond what the WebSocket layer reads, or a broken connection.
                    tracing::debug!(%err, "viewer connection failed");
                    self.state.metrics.refuse(ErrorCode::BadFrame);
                    return Ok(Inbound::Closed);
                }
            }
        }
    }

    async fn send(&mut self, socket: &mut WebSocket, frame: Bytes) -> Result<(), Closing> {
        let len = frame.len() as u64;
        self.send_raw(socket, Message::Binary(frame)).await?;
        self.state.metrics.bytes_sent.inc_by(len);
        self.state.metrics.frames_sent.inc();
        self.last_sent = Instant::now();
        Ok(())
    }

    async fn send_raw(&mut self, socket: &mut WebSocket, message: Message) -> Result<(), Closing> {
        let timeout = Duration::from_secs(self.state.config.server.send_timeout_secs);
        match tokio::time::timeout(timeout, socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Closing::gone()),
            Err(_) => {
                self.state.metrics.slow_clients_dropped.inc();
                Err(Closing::new(
                    ErrorCode::TooSlow,
                    "sending to the viewer timed out",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_at_a_character_boundary() {
        let reason = truncate_reason(&"ü".repeat(100));
        assert!(reason.len() <= 123);
        assert!(reason.chars().all(|c| c == 'ü'));
    }
}
