//! The network thread: sign-in, the live stream and the REST calls, on a thread of its own with
//! its own tokio runtime, so that the UI thread never waits on the network.
//!
//! The UI talks to it through a [`Net`] handle: it reads the [`Session`] (a short lock, once per
//! frame) and the floor (which the thread's [`Follower`] folds into under a lock held only for one
//! message), and sends [`Request`]s. Everything the thread learns ends with a repaint request.
//!
//! The thread runs one *session* per server: ask the server how it signs callers in, sign in
//! (a stored refresh token silently, else the device flow), follow the subscription with
//! reconnects and resyncs, renew the access token on the open connection before it expires, and
//! refetch the thresholds and the team and site lists now and then. A changed server URL starts
//! a new session.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use monti_client::auth::{self, AuthError, DeviceCode, Provider, TokenStore, Tokens};
use monti_client::connection::{ClientError, now_ms};
use monti_client::follow::{Backoff, Follower, Link, Step};
use monti_client::transport::{Transport, TransportOptions};
use monti_protocol::access::{VIEW_AS_HEADER, ViewAs};
use monti_protocol::floor::Floor;
use monti_protocol::ingest::{ContactLegJson, HistoryEntryJson, HistoryPageJson};
use monti_protocol::message::{ErrorCode, Subscription};
use monti_protocol::rest::{MeJson, SiteJson, TeamJson, Thresholds, TrendJson, WallboardConfig};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// What the UI asks of the network thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Use another server, or reach it differently (a new session).
    Connect {
        /// The server's URL.
        server: String,
        /// Its CA file and proxy.
        transport: TransportOptions,
    },
    /// Follow another subscription (filters changed).
    Subscribe(Subscription),
    /// Start the device flow.
    SignIn,
    /// Stop waiting for the device flow.
    CancelSignIn,
    /// Forget the stored sign-in and show the sign-in screen.
    SignOut,
    /// Read one agent's stored history (the answer lands in [`Session::history`]).
    History(HistoryWanted),
    /// Replace the server's thresholds (the answer lands in [`Session::thresholds_saved`]).
    SetThresholds(Thresholds),
    /// Read agents per state over a period (the answer lands in [`Session::trend`]).
    Trend(TrendWanted),
    /// Read one agent's contacts (the answer lands in [`Session::contacts`]).
    Contacts(ContactsWanted),
    /// Any other REST call (administration, feedback); the answer lands in
    /// [`Session::replies`] under the call's key.
    Rest(RestCall),
    /// See the floor as a group or binding would (an administrator's test access), or as
    /// oneself again (`None`): a new session.
    ViewAs(Option<ViewAs>),
}

/// A REST call whose JSON answer the asking screen reads from [`Session::replies`].
#[derive(Clone, Debug, PartialEq)]
pub struct RestCall {
    /// Where the answer goes, for example `bindings`.
    pub key: &'static str,
    /// GET, PUT or POST.
    pub method: Method,
    /// The path, for example `/api/v1/access/bindings`.
    pub path: String,
    /// Query pairs.
    pub query: Vec<(String, String)>,
    /// A JSON body.
    pub body: Option<serde_json::Value>,
    /// Write the answer's bytes to this file instead (a screenshot); the reply is then
    /// `{"saved": path}`.
    pub save_to: Option<std::path::PathBuf>,
}

impl RestCall {
    /// A GET of `path` answered under `key`.
    pub fn get(key: &'static str, path: impl Into<String>) -> RestCall {
        RestCall {
            key,
            method: Method::Get,
            path: path.into(),
            query: Vec::new(),
            body: None,
            save_to: None,
        }
    }

    /// A POST of `path` without a body (an action), answered under `key`.
    pub fn post(key: &'static str, path: impl Into<String>) -> RestCall {
        RestCall {
            method: Method::Post,
            ..RestCall::get(key, path)
        }
    }

    /// A `method` of `path` with a JSON `body`, answered under `key`.
    pub fn send(
        key: &'static str,
        method: Method,
        path: impl Into<String>,
        body: serde_json::Value,
    ) -> RestCall {
        RestCall {
            key,
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            save_to: None,
        }
    }
}

/// The HTTP methods the app uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Read.
    Get,
    /// Replace.
    Put,
    /// Create or act.
    Post,
}

/// The answer to a [`RestCall`]: its JSON, or why there is none; `serial` grows with every
/// answer, so that a screen can tell a new one from the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// Counts answers under all keys.
    pub serial: u64,
    /// The JSON answer, or why there is none.
    pub answer: Result<serde_json::Value, String>,
}

impl Reply {
    /// The answer as `T`, or why not.
    pub fn parsed<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let json = self.answer.clone()?;
        serde_json::from_value(json)
            .map_err(|err| format!("the server's answer is not as expected: {err}"))
    }
}

/// The contacts the agent panel asks for: the agent's external id (the history names it), from
/// when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactsWanted {
    /// The agent's external id.
    pub agent: String,
    /// From when, server ms since the epoch.
    pub from_ms: u64,
}

/// What the server answered for a [`ContactsWanted`].
#[derive(Clone, Debug, PartialEq)]
pub struct Contacts {
    /// What was asked.
    pub wanted: ContactsWanted,
    /// The contacts' legs, oldest first, or why there are none.
    pub legs: Result<Vec<ContactLegJson>, String>,
}

/// The floor trend the Trend view asks for: the filter's teams, sites and reason codes by name
/// (empty: all), over a period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrendWanted {
    /// Team names.
    pub teams: Vec<String>,
    /// Site names.
    pub sites: Vec<String>,
    /// Reason codes.
    pub reasons: Vec<String>,
    /// The first point, server ms since the epoch.
    pub from_ms: u64,
    /// The end, server ms since the epoch.
    pub to_ms: u64,
}

/// What the server answered for a [`TrendWanted`].
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    /// What was asked.
    pub wanted: TrendWanted,
    /// Agents per state, or why there are none.
    pub counts: Result<TrendJson, String>,
}

/// The stored history the agent panel asks for: the agent by the names the app shows (the
/// floor's ids are each server's own), from when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryWanted {
    /// The agent's name.
    pub name: String,
    /// Their team's name.
    pub team: String,
    /// Their site's name.
    pub site: String,
    /// From when, server ms since the epoch.
    pub from_ms: u64,
}

/// What the server answered for a [`HistoryWanted`].
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// What was asked.
    pub wanted: HistoryWanted,
    /// The stored state changes, or why there are none.
    pub entries: Result<Vec<HistoryEntryJson>, String>,
}

/// Where signing in stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SignIn {
    /// Asking the server how it signs callers in.
    #[default]
    Checking,
    /// The server needs no sign-in (the embedded default).
    NotNeeded,
    /// Sign-in is needed; the person starts it.
    Needed {
        /// Why the last attempt ended, if it did.
        problem: Option<String>,
    },
    /// The device flow runs: show the code.
    Code(CodeScreen),
    /// The provider has no device flow: the sign-in page is open in the browser.
    Browser {
        /// The page, to open again.
        url: String,
    },
    /// Signed in.
    SignedIn,
}

/// What the device-flow screen shows.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeScreen {
    /// The code the person types, for example `WDJB-MJHT`.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// The same with the code filled in, for the QR code (the plain URI when the provider has
    /// none).
    pub qr_uri: String,
    /// When the code expires, ms since the epoch (local clock).
    pub expires_at_ms: u64,
}

impl CodeScreen {
    fn new(code: &DeviceCode) -> CodeScreen {
        CodeScreen {
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
            qr_uri: code
                .verification_uri_complete
                .clone()
                .unwrap_or_else(|| code.verification_uri.clone()),
            expires_at_ms: now_ms() + code.expires_in * 1000,
        }
    }
}

/// Everything the UI shows about the connection, and the data that is not on the stream.
#[derive(Clone, Debug)]
pub struct Session {
    /// The server's URL.
    pub server: String,
    /// Where signing in stands.
    pub sign_in: SignIn,
    /// The stream's state.
    pub link: Link,
    /// The server's name and version, once connected.
    pub server_name: Option<String>,
    /// When the last message arrived (local ms since the epoch; 0 before any).
    pub last_update_ms: u64,
    /// Server clock minus local clock.
    pub clock_offset_ms: i64,
    /// When the next reconnect starts (local ms), while reconnecting.
    pub retry_at_ms: Option<u64>,
    /// The last problem, with its detail (on hover, in logs).
    pub problem: Option<String>,
    /// The stream's last problem in a few plain words, while it is the problem shown.
    pub problem_words: Option<String>,
    /// While the server says its data may be out of date: why.
    pub degraded: Option<String>,
    /// Who is signed in.
    pub me: Option<MeJson>,
    /// Every team the caller may see (the stream only carries the filtered ones).
    pub teams: Vec<TeamJson>,
    /// Every site the caller may see.
    pub sites: Vec<SiteJson>,
    /// Time-in-state thresholds.
    pub thresholds: Thresholds,
    /// This wallboard's configuration from the server (wallboards only).
    pub wallboard: Option<WallboardConfig>,
    /// The floor as the stream has folded it.
    pub floor: Arc<Mutex<Floor>>,
    /// The last history read for the agent panel.
    pub history: Option<History>,
    /// How the last change of the thresholds went: saved, or why not.
    pub thresholds_saved: Option<Result<(), String>>,
    /// The last trend read for the Trend view.
    pub trend: Option<Trend>,
    /// The last contacts read for the agent panel.
    pub contacts: Option<Contacts>,
    /// When this app is older than the server supports: the version to update to.
    pub update: Option<Update>,
    /// Answers to [`Request::Rest`] calls, by key.
    pub replies: std::collections::BTreeMap<&'static str, Reply>,
    /// Whom the floor is seen as (an administrator's test access).
    pub view_as: Option<ViewAs>,
}

/// This app is older than the server supports (`GET /api/v1/auth`'s `clients`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The oldest version the server supports.
    pub version: String,
    /// Where to get it, if the server says.
    pub download_url: Option<String>,
}

impl Update {
    /// What the app says: "Update MONTI to 0.2.0 (this is 0.1.0)".
    pub fn text(&self) -> String {
        format!(
            "Update MONTI to {} (this is {})",
            self.version,
            env!("CARGO_PKG_VERSION")
        )
    }
}

impl Session {
    /// The state before anything is known about `server`.
    pub fn new(server: &str) -> Session {
        Session {
            server: server.to_owned(),
            sign_in: SignIn::Checking,
            link: Link::Connecting,
            server_name: None,
            last_update_ms: 0,
            clock_offset_ms: 0,
            retry_at_ms: None,
            problem: None,
            problem_words: None,
            degraded: None,
            me: None,
            teams: Vec::new(),
            sites: Vec::new(),
            thresholds: Thresholds::default(),
            wallboard: None,
            floor: Arc::new(Mutex::new(Floor::awaiting_snapshot())),
            history: None,
            thresholds_saved: None,
            trend: None,
            contacts: None,
            update: None,
            replies: std::collections::BTreeMap::new(),
            view_as: None,
        }
    }

    /// Files `answer` under `key`.
    pub fn reply(&mut self, key: &'static str, answer: Result<serde_json::Value, String>) {
        let serial = (self.replies.values())
            .map(|reply| reply.serial)
            .max()
            .unwrap_or(0)
            + 1;
        self.replies.insert(key, Reply { serial, answer });
    }

    /// Records that `request`, a REST read or write, got no answer, and why: the screen that
    /// asked shows it.
    fn unanswered(&mut self, request: Request, why: &str) {
        let why = why.to_owned();
        match request {
            Request::History(wanted) => {
                self.history = Some(History {
                    wanted,
                    entries: Err(why),
                })
            }
            Request::SetThresholds(_) => self.thresholds_saved = Some(Err(why)),
            Request::Trend(wanted) => {
                self.trend = Some(Trend {
                    wanted,
                    counts: Err(why),
                })
            }
            Request::Contacts(wanted) => {
                self.contacts = Some(Contacts {
                    wanted,
                    legs: Err(why),
                })
            }
            Request::Rest(call) => self.reply(call.key, Err(why)),
            Request::Connect { .. }
            | Request::Subscribe(_)
            | Request::SignIn
            | Request::CancelSignIn
            | Request::SignOut
            | Request::ViewAs(_) => {}
        }
    }

    /// Shows `problem` (none: the last one is over); its words are the text itself.
    pub fn set_problem(&mut self, problem: Option<String>) {
        self.problem = problem;
        self.problem_words = None;
    }
}

/// What the app says it is in the stream's hello (the Admin screen's devices show it).
pub const CLIENT_NAME: &str = concat!("monti-desktop ", env!("CARGO_PKG_VERSION"));

/// `request` with the bearer token, and the test access header when the floor is seen as
/// someone else (the server then answers as it would them).
fn authorized(
    mut request: reqwest::RequestBuilder,
    token: Option<&str>,
    view_as: Option<&ViewAs>,
) -> reqwest::RequestBuilder {
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(view_as) = view_as {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in view_as.query() {
            query.append_pair(key, &value);
        }
        request = request.header(VIEW_AS_HEADER, query.finish());
    }
    request
}

/// Why the server refused a request, from its JSON error body ("the server answered 403"
/// when it has none).
async fn refusal(answer: reqwest::Response) -> String {
    let status = answer.status();
    (answer.json::<serde_json::Value>().await.ok())
        .and_then(|body| body["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the server answered {status}"))
}

/// Why a REST read has no answer.
enum Refused {
    /// The server answered 404.
    NotFound,
    /// Anything else, in words.
    Other(String),
}

/// Locks a mutex; a panic elsewhere leaves data the next update replaces, so poison is ignored.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The UI's handle on the network thread.
pub struct Net {
    session: Arc<Mutex<Session>>,
    commands: mpsc::UnboundedSender<Request>,
}

impl Net {
    /// Starts the network thread for `server`, following `subscription`; `repaint` is called
    /// whenever something the UI shows has changed. A `wallboard` name makes the thread read
    /// that wallboard's configuration and sign in unattended: the device flow starts again by
    /// itself whenever a code expires or a sign-in ends.
    pub fn start(
        server: &str,
        transport: TransportOptions,
        subscription: Subscription,
        wallboard: Option<String>,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Net> {
        let (net, commands) = Net::detached(Session::new(server));
        let worker = Worker {
            session: net.session.clone(),
            commands,
            repaint: Arc::new(repaint),
            server: server.to_owned(),
            transport_options: transport,
            transport: None,
            subscription,
            wallboard,
            view_as: None,
        };
        std::thread::Builder::new()
            .name("monti-net".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        tracing::error!(%err, "cannot start the network runtime");
                        return;
                    }
                };
                runtime.block_on(worker.run());
            })?;
        Ok(net)
    }

    /// A handle with no thread behind it: tests set the session and read the commands.
    pub fn detached(session: Session) -> (Net, mpsc::UnboundedReceiver<Request>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let net = Net {
            session: Arc::new(Mutex::new(session)),
            commands: sender,
        };
        (net, receiver)
    }

    /// The current session. Hold it briefly: the network thread writes it.
    pub fn session(&self) -> MutexGuard<'_, Session> {
        lock(&self.session)
    }

    /// Asks the network thread to do something. A stopped thread is not an error for the UI:
    /// the session keeps showing what was last known.
    pub fn send(&self, request: Request) {
        if self.commands.send(request).is_err() {
            tracing::warn!("the network thread has stopped");
        }
    }
}

/// How a session ended.
enum Next {
    /// Start a session on `Worker::server` (which may have changed).
    Restart,
    /// The UI is gone.
    Quit,
}

/// A signed-in session's credentials.
struct Credentials {
    provider: Provider,
    /// `None` when the keyring cannot be used: the refresh token then lives in memory only.
    store: Option<TokenStore>,
    refresh_token: Option<String>,
}

impl Credentials {
    /// Fresh tokens from the refresh token in memory or in the keyring; the rotated refresh
    /// token is kept in both.
    async fn refresh(&mut self) -> Result<Tokens, AuthError> {
        let refresh_token = match (&self.refresh_token, &self.store) {
            (Some(token), _) => token.clone(),
            (None, Some(store)) => store.load().await?.ok_or(AuthError::NotSignedIn)?,
            (None, None) => return Err(AuthError::NotSignedIn),
        };
        let tokens = self.provider.refresh(&refresh_token).await?;
        if let Some(rotated) = &tokens.refresh_token {
            self.keep(rotated).await;
        }
        Ok(tokens)
    }

    async fn keep(&mut self, refresh_token: &str) {
        self.refresh_token = Some(refresh_token.to_owned());
        if let Some(store) = &self.store
            && let Err(err) = store.save(refresh_token).await
        {
            tracing::warn!(%err, "cannot keep the sign-in in the keyring");
        }
    }

    async fn forget(&mut self) {
        self.refresh_token = None;
        if let Some(store) = &self.store
            && let Err(err) = store.delete().await
        {
            tracing::warn!(%err, "cannot remove the sign-in from the keyring");
        }
    }
}

/// An access token and when to renew it.
struct Access {
    token: String,
    renew_at: Instant,
}

impl Access {
    fn new(tokens: Tokens) -> Access {
        // Renew at four fifths of the lifetime, and never in a busy loop.
        let lifetime = Duration::from_secs(tokens.expires_in.max(15));
        Access {
            token: tokens.access_token,
            renew_at: Instant::now() + lifetime.mul_f64(0.8),
        }
    }
}

/// Whether a sign-in failure means the person must sign in again (rather than retry later).
fn needs_person(err: &AuthError) -> bool {
    matches!(
        err,
        AuthError::NotSignedIn
            | AuthError::SignInEnded(_)
            | AuthError::Denied
            | AuthError::Expired
            | AuthError::Refused { .. }
    )
}

struct Worker {
    session: Arc<Mutex<Session>>,
    commands: mpsc::UnboundedReceiver<Request>,
    repaint: Arc<dyn Fn() + Send + Sync>,
    server: String,
    subscription: Subscription,
    /// The wallboard this app is, if it is one: nobody is there to press buttons.
    wallboard: Option<String>,
    /// How to reach the server: the CA file and proxy as set.
    transport_options: TransportOptions,
    /// TLS and proxy for REST and the stream, set up at the start of each session.
    transport: Option<Transport>,
    /// Whom the floor is seen as (an administrator's test access): the stream's `as_*` query
    /// and every REST call's `monti-view-as` header.
    view_as: Option<ViewAs>,
}

/// How often thresholds and the team and site lists are read again.
const DETAILS_EVERY: Duration = Duration::from_secs(60);

impl Worker {
    async fn run(mut self) {
        while let Next::Restart = self.session().await {}
    }

    fn update(&self, change: impl FnOnce(&mut Session)) {
        change(&mut lock(&self.session));
        (self.repaint)();
    }

    /// Handles a command that arrives while nothing session-specific waits for one. Returns
    /// how the session must end, if it must.
    fn idle_command(&mut self, command: Option<Request>) -> Option<Next> {
        match command? {
            Request::Connect { server, transport } => {
                self.server = server;
                self.transport_options = transport;
                Some(Next::Restart)
            }
            Request::Subscribe(subscription) => {
                self.subscription = subscription;
                None
            }
            Request::SignIn | Request::CancelSignIn | Request::SignOut => None,
            Request::ViewAs(view_as) => {
                self.view_as = view_as;
                Some(Next::Restart)
            }
            request @ (Request::History(_)
            | Request::SetThresholds(_)
            | Request::Trend(_)
            | Request::Contacts(_)
            | Request::Rest(_)) => {
                self.update(|session| session.unanswered(request, "not connected to the server"));
                None
            }
        }
    }

    async fn session(&mut self) -> Next {
        let server = self.server.clone();
        let view_as = self.view_as.clone();
        self.update(|session| {
            *session = Session::new(&server);
            session.view_as = view_as;
        });
        let transport = match Transport::new(&self.transport_options) {
            Ok(transport) => transport,
            Err(err) => {
                // A missing CA file or a malformed proxy: only new settings can help.
                self.update(|session| session.set_problem(Some(err.to_string())));
                self.transport = None;
                return self.until_connect().await;
            }
        };
        self.transport = Some(transport.clone());
        let mut attempt = 0;
        let settings = loop {
            tokio::select! {
                answer = auth::server_auth(&transport, &server) => match answer {
                    Ok(settings) => break settings,
                    Err(err) => {
                        attempt += 1;
                        let wait = Backoff::default().delay(attempt, 1.0);
                        self.update(|session| {
                            session.set_problem(Some(err.to_string()));
                            session.retry_at_ms = Some(now_ms() + wait.as_millis() as u64);
                        });
                        if let Some(next) = self.wait(wait).await {
                            return next;
                        }
                    }
                },
                command = self.commands.recv() => match command {
                    None => return Next::Quit,
                    command => if let Some(next) = self.idle_command(command) { return next },
                },
            }
        };
        let update = (settings.clients.as_ref()).and_then(|clients| {
            let version = clients.update_needed(env!("CARGO_PKG_VERSION"))?;
            Some(Update {
                version: version.to_owned(),
                download_url: clients.download_url.clone(),
            })
        });
        self.update(|session| session.update = update);
        match settings.mode.as_str() {
            "oidc" => {
                let Some(settings) = auth::SignInSettings::from_server(settings) else {
                    self.update(|session| {
                        session.set_problem(Some(
                            "the server's sign-in settings are incomplete".into(),
                        ))
                    });
                    return self.until_connect().await;
                };
                self.signed_in_session(&settings).await
            }
            _ => {
                self.update(|session| session.sign_in = SignIn::NotNeeded);
                // Without credentials the session only ends for good reasons; a server that now
                // wants sign-in is asked again.
                self.follow(None).await.0.unwrap_or(Next::Restart)
            }
        }
    }

    /// Waits `wait`, handling commands meanwhile; returns early when the session must end.
    async fn wait(&mut self, wait: Duration) -> Option<Next> {
        let until = Instant::now() + wait;
        loop {
            tokio::select! {
                () = sleep_until(until) => return None,
                command = self.commands.recv() => match command {
                    None => return Some(Next::Quit),
                    command => if let Some(next) = self.idle_command(command) { return Some(next) },
                },
            }
        }
    }

    /// Waits for a new server URL (nothing else can help).
    async fn until_connect(&mut self) -> Next {
        loop {
            match self.commands.recv().await {
                None => return Next::Quit,
                command => {
                    if let Some(next) = self.idle_command(command) {
                        return next;
                    }
                }
            }
        }
    }

    async fn signed_in_session(&mut self, settings: &auth::SignInSettings) -> Next {
        let mut attempt = 0;
        let provider = loop {
            let Some(transport) = self.transport.clone() else {
                return self.until_connect().await;
            };
            match Provider::discover(&transport, settings).await {
                Ok(provider) => break provider,
                Err(err) => {
                    attempt += 1;
                    let wait = Backoff::default().delay(attempt, 1.0);
                    self.update(|session| session.set_problem(Some(err.to_string())));
                    if let Some(next) = self.wait(wait).await {
                        return next;
                    }
                }
            }
        };
        // Asked before anyone is sent through a sign-in whose result could not be kept.
        let store = match TokenStore::new(&self.server, settings) {
            Ok(store) => match store.probe().await {
                Ok(()) => Ok(store),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let mut no_keyring = None;
        let store = match store {
            Ok(store) => Some(store),
            Err(err) => {
                tracing::warn!(%err, "no keyring: the sign-in lasts until the app closes");
                no_keyring = Some(format!(
                    "This computer has no keyring MONTI can use ({err}): a sign-in now lasts \
                     until MONTI closes. Sign in anyway?"
                ));
                None
            }
        };
        let mut credentials = Credentials {
            provider,
            store,
            refresh_token: None,
        };
        // A stored sign-in is used silently; without one the device flow starts at once, unless
        // the person should first know that it will not be kept (a wallboard goes ahead).
        let mut start_flow = no_keyring.is_none() || self.wallboard.is_some();
        loop {
            let access = match credentials.refresh().await {
                Ok(tokens) => Access::new(tokens),
                Err(AuthError::Keyring(err)) => {
                    tracing::warn!(%err, "cannot read the keyring");
                    credentials.store = None;
                    continue;
                }
                Err(err) if needs_person(&err) => {
                    let problem = match err {
                        AuthError::NotSignedIn => {
                            tracing::info!("no stored sign-in: a person signs in");
                            no_keyring.take()
                        }
                        err => {
                            tracing::warn!(%err, "the stored sign-in was not accepted");
                            Some(format!("the stored sign-in was not accepted: {err}"))
                        }
                    };
                    match self
                        .device_flow(&mut credentials, start_flow, problem)
                        .await
                    {
                        Ok(access) => access,
                        Err(next) => return next,
                    }
                }
                Err(err) => {
                    self.update(|session| session.set_problem(Some(err.to_string())));
                    if let Some(next) = self.wait(Duration::from_secs(10)).await {
                        return next;
                    }
                    continue;
                }
            };
            self.update(|session| {
                session.sign_in = SignIn::SignedIn;
                session.set_problem(None);
            });
            let (next, signed_out) = self.follow(Some((&mut credentials, access))).await;
            match next {
                Some(next) => return next,
                None if signed_out => {
                    credentials.forget().await;
                    start_flow = false;
                    // Nothing of this person's view may stay for the next one.
                    let server = self.server.clone();
                    self.update(|session| {
                        *session = Session::new(&server);
                        session.sign_in = SignIn::Needed { problem: None };
                    });
                }
                // The sign-in was refused on the way: sign in again, right away.
                None => start_flow = true,
            }
        }
    }

    /// Runs the device flow until tokens arrive. With `start` false it first waits for the
    /// person to ask for it.
    async fn device_flow(
        &mut self,
        credentials: &mut Credentials,
        mut start: bool,
        mut problem: Option<String>,
    ) -> Result<Access, Next> {
        loop {
            if problem.is_some() && self.wallboard.is_some() {
                // Unattended: show the problem for a moment, then a fresh code.
                tracing::info!(problem = ?problem, "signing in again");
                self.update(|session| session.set_problem(problem.take()));
                if let Some(next) = self.wait(Duration::from_secs(5)).await {
                    return Err(next);
                }
                start = true;
            }
            if !start {
                self.update(|session| {
                    session.sign_in = SignIn::Needed {
                        problem: problem.take(),
                    }
                });
                loop {
                    match self.commands.recv().await {
                        None => return Err(Next::Quit),
                        Some(Request::SignIn) => break,
                        command => {
                            if let Some(next) = self.idle_command(command) {
                                return Err(next);
                            }
                        }
                    }
                }
            }
            start = false;
            self.update(|session| session.sign_in = SignIn::Checking);
            let outcome = if credentials.provider.has_device_flow() {
                let code = match credentials.provider.start().await {
                    Ok(code) => code,
                    Err(err) => {
                        problem = Some(err.to_string());
                        continue;
                    }
                };
                // The code is on the screen anyway; the log line lets an operator (and the
                // end-to-end test) complete a wallboard's sign-in from elsewhere.
                tracing::info!(user_code = %code.user_code, uri = %code.verification_uri, "sign-in code shown");
                self.update(|session| session.sign_in = SignIn::Code(CodeScreen::new(&code)));
                let provider = credentials.provider.clone();
                let poll = provider.poll(&code);
                match self.until_signed_in(poll).await {
                    Ok(outcome) => outcome,
                    Err(next) => return Err(next),
                }
            } else {
                // No device flow (Amazon Cognito): the authorization code flow in the browser.
                let attempt = match credentials.provider.browser_sign_in().await {
                    Ok(attempt) => attempt,
                    Err(err) => {
                        problem = Some(err.to_string());
                        continue;
                    }
                };
                let url = attempt.url.clone();
                tracing::info!(%url, "sign-in page opened in the browser");
                if let Err(err) = open::that_detached(&url) {
                    tracing::warn!(%err, "cannot open a browser; the page is on the screen");
                }
                self.update(|session| session.sign_in = SignIn::Browser { url });
                match self
                    .until_signed_in(attempt.finish(Duration::from_secs(600)))
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(next) => return Err(next),
                }
            };
            match outcome {
                None if self.wallboard.is_some() => start = true,
                None => problem = None,
                Some(Ok(tokens)) => {
                    match &tokens.refresh_token {
                        Some(refresh_token) => credentials.keep(refresh_token).await,
                        None => tracing::warn!(
                            "the provider issued no refresh token; sign-in lasts one token"
                        ),
                    }
                    return Ok(Access::new(tokens));
                }
                Some(Err(err)) => problem = Some(err.to_string()),
            }
        }
    }

    /// Waits for a sign-in to finish, handling commands meanwhile: `Ok(None)` when the person
    /// cancelled it, `Err` when the session must end.
    async fn until_signed_in(
        &mut self,
        sign_in: impl std::future::Future<Output = Result<Tokens, AuthError>>,
    ) -> Result<Option<Result<Tokens, AuthError>>, Next> {
        tokio::pin!(sign_in);
        loop {
            tokio::select! {
                outcome = &mut sign_in => return Ok(Some(outcome)),
                command = self.commands.recv() => match command {
                    None => return Err(Next::Quit),
                    Some(Request::CancelSignIn) => return Ok(None),
                    command => if let Some(next) = self.idle_command(command) {
                        return Err(next);
                    },
                },
            }
        }
    }

    /// Follows the subscription until the session ends (`Some`) or the sign-in is gone
    /// (`None`, with whether the person signed out).
    async fn follow(
        &mut self,
        mut signed_in: Option<(&mut Credentials, Access)>,
    ) -> (Option<Next>, bool) {
        let mut follower = self.follower();
        if let Some((_, access)) = &signed_in {
            follower = follower.with_token(&access.token);
        }
        let floor = follower.shared_floor();
        self.update(|session| session.floor = floor);
        let mut details_at = Instant::now() + DETAILS_EVERY;
        loop {
            let renew_at = signed_in.as_ref().map(|(_, access)| access.renew_at);
            tokio::select! {
                event = follower.next() => {
                    let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                    match event {
                        Ok(step) => self.followed(&follower, step, token.as_deref()).await,
                        Err(ClientError::Refused { code: ErrorCode::Unauthorized, message })
                            if signed_in.is_some() =>
                        {
                            tracing::info!(%message, "the server refused the token; renewing");
                            let Some((credentials, access)) = &mut signed_in else { continue };
                            match credentials.refresh().await {
                                Ok(tokens) => {
                                    *access = Access::new(tokens);
                                    follower = follower.with_token(&access.token);
                                }
                                Err(_) => return (None, false),
                            }
                        }
                        Err(err) => {
                            // Retrying the same cannot help (a version or permission problem):
                            // say so and wait for another subscription, server or sign-in.
                            self.update(|session| {
                                session.set_problem(Some(err.to_string()));
                                session.link = Link::Connecting;
                            });
                            loop {
                                match self.commands.recv().await {
                                    None => return (Some(Next::Quit), false),
                                    Some(Request::Subscribe(subscription)) => {
                                        self.subscription = subscription;
                                        break;
                                    }
                                    Some(Request::SignOut) if signed_in.is_some() => {
                                        return (None, true);
                                    }
                                    command => if let Some(next) = self.idle_command(command) {
                                        return (Some(next), false);
                                    },
                                }
                            }
                            follower = self.follower();
                            if let Some((_, access)) = &signed_in {
                                follower = follower.with_token(&access.token);
                            }
                            let floor = follower.shared_floor();
                            self.update(|session| session.floor = floor);
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    None => return (Some(Next::Quit), false),
                    Some(Request::Subscribe(subscription)) => {
                        self.subscription = subscription.clone();
                        follower.resubscribe(subscription).await;
                    }
                    Some(Request::SignOut) if signed_in.is_some() => return (None, true),
                    Some(Request::History(wanted)) => {
                        let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                        self.fetch_history(wanted, token);
                    }
                    Some(Request::SetThresholds(thresholds)) => {
                        let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                        self.save_thresholds(thresholds, token);
                    }
                    Some(Request::Trend(wanted)) => {
                        let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                        self.fetch_trend(wanted, token);
                    }
                    Some(Request::Contacts(wanted)) => {
                        let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                        self.fetch_contacts(wanted, token);
                    }
                    Some(Request::Rest(call)) => {
                        let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                        self.rest(call, token);
                    }
                    command => if let Some(next) = self.idle_command(command) {
                        return (Some(next), false);
                    },
                },
                () = sleep_until(renew_at.unwrap_or(details_at)), if renew_at.is_some() => {
                    let Some((credentials, access)) = &mut signed_in else { continue };
                    match credentials.refresh().await {
                        Ok(tokens) => {
                            *access = Access::new(tokens);
                            tracing::info!("access token renewed on the open connection");
                            if let Err(err) = follower.renew_token(&access.token).await {
                                tracing::debug!(%err, "renewal not sent; the reconnect uses it");
                            }
                        }
                        Err(err) if needs_person(&err) => return (None, false),
                        Err(err) => {
                            tracing::warn!(%err, "cannot renew the sign-in yet");
                            access.renew_at = Instant::now() + Duration::from_secs(15);
                        }
                    }
                }
                () = sleep_until(details_at) => {
                    details_at = Instant::now() + DETAILS_EVERY;
                    let token = signed_in.as_ref().map(|(_, access)| access.token.clone());
                    self.fetch_details(token.as_deref()).await;
                }
            }
        }
    }

    /// A follower of the subscription on the server, through the session's transport.
    fn follower(&self) -> Follower {
        let follower = Follower::new(&self.server, CLIENT_NAME, self.subscription.clone())
            .with_view_as(self.view_as.clone());
        match &self.transport {
            Some(transport) => follower.with_transport(transport.clone()),
            None => follower,
        }
    }

    /// Shows what one step of the follower did.
    async fn followed(&mut self, follower: &Follower, step: Step, token: Option<&str>) {
        let link = follower.link().clone();
        let last_update_ms = follower.last_update_ms();
        let clock_offset_ms = follower.clock_offset_ms();
        match step {
            Step::Connected { server_name } => {
                tracing::info!(server = %self.server, %server_name, "connected");
                self.update(|session| {
                    session.degraded = None;
                    session.server_name = Some(server_name);
                    session.clock_offset_ms = clock_offset_ms;
                    session.link = link;
                    session.retry_at_ms = None;
                    session.set_problem(None);
                });
                self.fetch_details(token).await;
            }
            Step::Lost {
                reason,
                words,
                retry_in,
            } => {
                tracing::info!(%reason, ?retry_in, "connection lost");
                self.update(|session| {
                    session.link = link;
                    session.set_problem(Some(reason));
                    session.problem_words = Some(words);
                    session.retry_at_ms = Some(now_ms() + retry_in.as_millis() as u64);
                })
            }
            Step::Health(health) => {
                tracing::info!(degraded = health.degraded, reason = %health.reason, "server health");
                self.update(|session| {
                    session.degraded = health.degraded.then_some(health.reason);
                })
            }
            Step::Snapshot { .. } | Step::Delta { .. } | Step::Progress => self.update(|session| {
                session.link = link;
                session.last_update_ms = last_update_ms;
            }),
        }
    }

    /// Reads who is signed in, the thresholds and the team and site lists. A failure keeps
    /// what was known and is only logged: the stream matters more.
    async fn fetch_details(&self, token: Option<&str>) {
        let me = self.get::<MeJson>("/api/v1/me", token).await;
        let thresholds = self
            .get::<Thresholds>("/api/v1/config/thresholds", token)
            .await;
        let teams = self.get::<Vec<TeamJson>>("/api/v1/teams", token).await;
        let sites = self.get::<Vec<SiteJson>>("/api/v1/sites", token).await;
        let wallboard = match &self.wallboard {
            Some(name) => {
                self.get::<WallboardConfig>(&format!("/api/v1/config/wallboards/{name}"), token)
                    .await
            }
            None => None,
        };
        self.update(|session| {
            if let Some(me) = me {
                session.me = Some(me);
            }
            if let Some(thresholds) = thresholds {
                session.thresholds = thresholds;
            }
            if let Some(teams) = teams {
                session.teams = teams;
            }
            if let Some(sites) = sites {
                session.sites = sites;
            }
            if wallboard.is_some() {
                session.wallboard = wallboard;
            }
        });
    }

    /// Reads an agent's history in a task of its own, so that the stream is not held up.
    fn fetch_history(&self, wanted: HistoryWanted, token: Option<String>) {
        let query = vec![
            ("name", wanted.name.clone()),
            ("team", wanted.team.clone()),
            ("site", wanted.site.clone()),
            ("from_ms", wanted.from_ms.to_string()),
            ("limit", "10000".to_owned()),
        ];
        self.spawn_get::<HistoryPageJson>("/api/v1/history", query, token, |session, answer| {
            let entries = answer.map(|page| page.entries).map_err(|err| match err {
                Refused::NotFound => "no history: the server does not know this agent".to_owned(),
                Refused::Other(why) => why,
            });
            session.history = Some(History { wanted, entries });
        });
    }

    /// Reads the floor trend in a task of its own.
    fn fetch_trend(&self, wanted: TrendWanted, token: Option<String>) {
        let mut query = vec![
            ("from_ms", wanted.from_ms.to_string()),
            ("to_ms", wanted.to_ms.to_string()),
        ];
        let named = [
            ("team", &wanted.teams),
            ("site", &wanted.sites),
            ("reason", &wanted.reasons),
        ];
        for (key, names) in named {
            query.extend(names.iter().map(|name| (key, name.clone())));
        }
        self.spawn_get::<TrendJson>("/api/v1/trend", query, token, |session, answer| {
            let counts = answer.map_err(|err| match err {
                Refused::NotFound => "this server keeps no trend (it is older)".to_owned(),
                Refused::Other(why) => why,
            });
            session.trend = Some(Trend { wanted, counts });
        });
    }

    /// Reads an agent's contacts in a task of its own.
    fn fetch_contacts(&self, wanted: ContactsWanted, token: Option<String>) {
        let query = vec![
            ("agent", wanted.agent.clone()),
            ("from", wanted.from_ms.to_string()),
        ];
        self.spawn_get::<Vec<ContactLegJson>>(
            "/api/v1/contacts",
            query,
            token,
            |session, answer| {
                let legs = answer.map_err(|err| match err {
                    Refused::NotFound => "the server does not know this agent".to_owned(),
                    Refused::Other(why) => why,
                });
                session.contacts = Some(Contacts { wanted, legs });
            },
        );
    }

    /// GETs `path` in a task of its own (the stream is not held up) and hands the answer to
    /// `done` under the session's lock, then repaints.
    fn spawn_get<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
        token: Option<String>,
        done: impl FnOnce(&mut Session, Result<T, Refused>) + Send + 'static,
    ) {
        let Some(transport) = self.transport.clone() else {
            return;
        };
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let (session, repaint) = (self.session.clone(), self.repaint.clone());
        let view_as = self.view_as.clone();
        tokio::spawn(async move {
            let request = transport.http().get(&url).query(&query);
            let request = authorized(request, token.as_deref(), view_as.as_ref());
            let answer = match request.send().await {
                Ok(answer) if answer.status().is_success() => match answer.json::<T>().await {
                    Ok(value) => Ok(value),
                    Err(err) => Err(Refused::Other(transport.describe(&err).await)),
                },
                Ok(answer) if answer.status().as_u16() == 404 => Err(Refused::NotFound),
                Ok(answer) => Err(Refused::Other(refusal(answer).await)),
                Err(err) => Err(Refused::Other(transport.describe(&err).await)),
            };
            done(&mut lock(&session), answer);
            repaint();
        });
    }

    /// Makes `call` in a task of its own; its JSON answer (or why there is none) lands in
    /// [`Session::replies`].
    fn rest(&self, call: RestCall, token: Option<String>) {
        let Some(transport) = self.transport.clone() else {
            self.update(|session| {
                session.reply(call.key, Err("not connected to the server".into()))
            });
            return;
        };
        let url = format!("{}{}", self.server.trim_end_matches('/'), call.path);
        let (session, repaint) = (self.session.clone(), self.repaint.clone());
        let view_as = self.view_as.clone();
        tokio::spawn(async move {
            let http = transport.http();
            let request = match call.method {
                Method::Get => http.get(&url),
                Method::Put => http.put(&url),
                Method::Post => http.post(&url),
            }
            .query(&call.query);
            let request = match &call.body {
                Some(body) => request.json(body),
                None => request,
            };
            let request = authorized(request, token.as_deref(), view_as.as_ref());
            let answer = match request.send().await {
                Ok(answer) if answer.status().is_success() => match &call.save_to {
                    Some(path) => match answer.bytes().await {
                        Ok(bytes) => std::fs::write(path, &bytes)
                            .map(|()| serde_json::json!({"saved": path.display().to_string()}))
                            .map_err(|err| format!("cannot write {}: {err}", path.display())),
                        Err(err) => Err(transport.describe(&err).await),
                    },
                    None => match answer.json::<serde_json::Value>().await {
                        Ok(value) => Ok(value),
                        Err(err) => Err(transport.describe(&err).await),
                    },
                },
                Ok(answer) => Err(refusal(answer).await),
                Err(err) => Err(transport.describe(&err).await),
            };
            lock(&session).reply(call.key, answer);
            repaint();
        });
    }

    /// Sends new thresholds in a task of its own; the server's answer replaces the session's.
    fn save_thresholds(&self, thresholds: Thresholds, token: Option<String>) {
        let Some(transport) = self.transport.clone() else {
            return;
        };
        let url = format!(
            "{}/api/v1/config/thresholds",
            self.server.trim_end_matches('/')
        );
        let (session, repaint) = (self.session.clone(), self.repaint.clone());
        let view_as = self.view_as.clone();
        tokio::spawn(async move {
            let request = transport.http().put(&url).json(&thresholds);
            let request = authorized(request, token.as_deref(), view_as.as_ref());
            let saved = match request.send().await {
                Ok(answer) if answer.status().is_success() => {
                    match answer.json::<Thresholds>().await {
                        Ok(stored) => Ok(stored),
                        Err(err) => Err(transport.describe(&err).await),
                    }
                }
                Ok(answer) => Err(refusal(answer).await),
                Err(err) => Err(transport.describe(&err).await),
            };
            {
                let mut session = lock(&session);
                session.thresholds_saved = Some(saved.as_ref().map(|_| ()).map_err(Clone::clone));
                if let Ok(stored) = saved {
                    session.thresholds = stored;
                }
            }
            repaint();
        });
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Option<T> {
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let transport = self.transport.as_ref()?;
        let request = authorized(transport.http().get(&url), token, self.view_as.as_ref());
        let answer = async { request.send().await?.error_for_status()?.json::<T>().await };
        match answer.await {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::warn!(%url, err = transport.describe(&err).await, "cannot read");
                None
            }
        }
    }
}
