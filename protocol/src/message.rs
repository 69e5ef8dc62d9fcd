//! The messages of the live stream, in both directions.
//!
//! Server-to-client messages state facts ([`ServerMsg::Delta`]), client-to-server messages are
//! imperatives ([`ClientMsg::Subscribe`]). The order on a connection is always: client `Hello`,
//! server `Hello`, client `Subscribe`, server snapshot chunks (the last one marked), then deltas
//! with consecutive sequence numbers, interleaved with keepalives. A client may subscribe again at
//! any time; the server answers with a fresh snapshot.
//!
//! This module only defines shapes. Encoding lives in [`crate::codec`], folding in
//! [`crate::floor`]. See `docs/WIRE.md` for the byte-level description.

use serde::{Deserialize, Serialize};

use crate::model::{
    AgentId, AgentInfo, AgentStatus, GroupKey, Grouping, ReasonCode, Site, SiteId, StateKind,
    StateSet, Team, TeamId,
};
use crate::queue::{QueueId, QueueInfo, QueueLive, QueueRules};

/// A message from a client to the server.
///
/// Append-only: new variants go at the end, retired ones stay with a comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// First message on every connection.
    Hello(ClientHello),
    /// Asks for a view of the floor; answered by a snapshot and then deltas.
    Subscribe(Subscription),
    /// A renewed access token for the open connection, sent before the current one expires.
    /// A connection whose token expires without renewal is closed with `Unauthorized`.
    RenewToken(String),
}

/// What a client says about itself when it connects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// Must equal the server's [`crate::PROTOCOL_VERSION`], or the server refuses the connection.
    pub protocol_version: u16,
    /// Free text such as `monti-cli 0.1.0`, for the server's logs.
    pub client_name: String,
}

/// The view of the floor a client asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subscription {
    /// How summaries are grouped.
    pub grouping: Grouping,
    /// Whether the client wants every agent or only group summaries.
    pub detail: Detail,
    /// Only these teams; empty means every team.
    pub teams: Vec<TeamId>,
    /// Only these sites; empty means every site.
    pub sites: Vec<SiteId>,
    /// Only agents in these states.
    pub states: StateSet,
    /// The roster version the client already holds for this same team and site filter, so the
    /// server can leave the names out of the snapshot. `None` asks for the roster.
    pub known_roster: Option<u64>,
    /// Whether the client wants the queues its viewer may see, with their live figures. They do
    /// not follow the team and site filter: a queue is the floor's, not a team's.
    pub queues: bool,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            grouping: Grouping::Team,
            detail: Detail::Agents,
            teams: Vec::new(),
            sites: Vec::new(),
            states: StateSet::ALL,
            known_roster: None,
            queues: false,
        }
    }
}

impl Subscription {
    /// Whether an agent of `team` at `site` is inside this subscription's scope.
    pub fn covers(&self, team: TeamId, site: SiteId) -> bool {
        (self.teams.is_empty() || self.teams.contains(&team))
            && (self.sites.is_empty() || self.sites.contains(&site))
    }

    /// Whether a group falls inside the scope: every team and site it names is selected.
    pub fn covers_group(&self, key: GroupKey) -> bool {
        key.team
            .is_none_or(|team| self.teams.is_empty() || self.teams.contains(&team))
            && key
                .site
                .is_none_or(|site| self.sites.is_empty() || self.sites.contains(&site))
    }
}

/// How much a subscription receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Detail {
    /// Every agent in scope with its state; the client computes summaries itself.
    Agents,
    /// Only group summaries, for wallboards and overviews.
    Summary,
}

/// A message from the server to a client.
///
/// Append-only: new variants go at the end, retired ones stay with a comment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Answer to the client's hello.
    Hello(ServerHello),
    /// One chunk of a snapshot.
    Snapshot(SnapshotChunk),
    /// What changed in one tick.
    Delta(Delta),
    /// Sent when nothing else was sent for a while, so clients can tell a quiet floor from a
    /// dead connection.
    Keepalive(Keepalive),
    /// Something went wrong; usually followed by a close with [`ErrorCode::close_code`].
    Error(ErrorMsg),
    /// Whether the server's floor is complete: sent whenever that changes, and after the first
    /// snapshot of a connection while degraded.
    /// While degraded, the server keeps streaming what it knows, which may be out of date.
    Health(Health),
}

/// The server's side of the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    /// The server's [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u16,
    /// The server's clock, milliseconds since the Unix epoch, so clients can correct for skew.
    pub server_time_ms: u64,
    /// The server's name and version, for display.
    pub server_name: String,
    /// The interval at which the server sends keepalives on a quiet connection. A client that
    /// hears nothing for three intervals treats the connection as dead.
    pub keepalive_ms: u32,
    /// Identifies this run of the server's floor. Sequence numbers and roster versions are only
    /// comparable within one instance: after a restart a client must not claim to know the
    /// roster, even if the version number matches.
    pub instance: u64,
    /// How this server identifies callers, so an app knows whether and where to sign in.
    pub auth: AuthInfo,
}

/// How a server identifies callers. Append-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthInfo {
    /// No sign-in: the server runs on a loopback address and everyone is its administrator.
    None,
    /// Sign in with the device flow at this OpenID Connect provider.
    Oidc {
        /// The provider's issuer URL (discovery starts here).
        issuer: String,
        /// The public client id to sign in with.
        client_id: String,
        /// The resource (audience) to ask tokens for.
        audience: String,
    },
}

/// One chunk of a snapshot of the subscribed view.
///
/// A snapshot is split so that no frame grows with the floor; the first chunk carries the
/// header, every chunk carries some agents, the last carries the group summaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The floor sequence number the snapshot shows. The first delta after it is `seq + 1`.
    pub seq: u64,
    /// Server time of that sequence number, milliseconds since the Unix epoch; every
    /// `since_ms_ago` in the snapshot counts back from it.
    pub time_ms: u64,
    /// Zero for the first chunk, then counting up.
    pub index: u32,
    /// Set on the last chunk of the snapshot.
    pub last: bool,
    /// Present on the first chunk only.
    pub header: Option<SnapshotHeader>,
    /// Roster entries of the agents in scope (only when the client did not hold this roster).
    pub roster: Vec<AgentInfo>,
    /// Current state of agents in scope and in the state filter.
    pub agents: Vec<AgentLive>,
    /// Group summaries (summary detail only; in the last chunk).
    pub groups: Vec<GroupSummary>,
    /// The queues' figures (subscriptions with queues; in the last chunk).
    pub queues: Vec<QueueLive>,
}

/// The first chunk's description of what follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The version of the roster the agents refer to: the sequence number of its last change.
    pub roster_version: u64,
    /// True when the chunks carry the roster, so the client must drop the one it held.
    pub full_roster: bool,
    /// The subscription this snapshot answers, echoed so the fold is self-contained.
    pub detail: Detail,
    /// See [`Subscription::grouping`].
    pub grouping: Grouping,
    /// See [`Subscription::states`].
    pub states: StateSet,
    /// Sites in scope.
    pub sites: Vec<Site>,
    /// Teams in scope.
    pub teams: Vec<Team>,
    /// Every reason code (they carry no personal data).
    pub reasons: Vec<ReasonCode>,
    /// The queues the viewer may see (subscriptions with queues), each naming only the serving
    /// teams the viewer may name.
    pub queues: Vec<QueueInfo>,
    /// How the queue figures are counted.
    pub queue_rules: QueueRules,
}

/// An agent's current state inside a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLive {
    /// Which agent.
    pub id: AgentId,
    /// Its state.
    pub status: AgentStatus,
    /// How long before the chunk's `time_ms` the state began.
    pub since_ms_ago: u64,
}

/// Everything that changed in the subscribed view during one tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// Exactly one more than the previous delta's (or the snapshot's) sequence number; anything
    /// else means the client missed something and must ask for a fresh snapshot.
    pub seq: u64,
    /// Milliseconds since the previous sequence number's time. Sending the step instead of the
    /// absolute time keeps a delta frame a few bytes long.
    pub time_step_ms: u64,
    /// State changes, at most one per agent (coalesced within the tick).
    pub changes: Vec<StatusChange>,
    /// Roster changes; when any are present the roster version becomes `seq`.
    pub roster: Vec<RosterChange>,
    /// New summaries of the groups that changed (summary detail only).
    pub groups: Vec<GroupSummary>,
    /// The queues whose figures changed, whole (subscriptions with queues).
    pub queues: Vec<QueueLive>,
}

/// One agent's new state. This is the hot item of the protocol: four to six bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// Which agent.
    pub agent: AgentId,
    /// Its new state. When the state is outside the subscription's state filter, the client
    /// drops the agent from its view.
    pub status: AgentStatus,
    /// How long before the delta's time the state began.
    pub since_ms_ago: u64,
}

/// A change to the roster inside the subscribed scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RosterChange {
    /// An agent joined the scope or changed name, team or site.
    AgentUpserted(AgentInfo),
    /// An agent left the scope (deactivated, or moved to a team or site outside it).
    AgentRemoved(AgentId),
    /// A team was added or renamed.
    TeamUpserted(Team),
    /// A site was added or renamed.
    SiteUpserted(Site),
    /// A reason code was added or relabelled.
    ReasonUpserted(ReasonCode),
    /// A team was removed; it has no agents left.
    TeamRemoved(TeamId),
    /// A site was removed; it has no agents left.
    SiteRemoved(SiteId),
    /// A queue came into view, or changed its name, target or serving teams.
    QueueUpserted(QueueInfo),
    /// A queue left the view (deactivated, or no longer served by a team the viewer may name).
    QueueRemoved(QueueId),
}

/// Counts and longest time in state of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Which group.
    pub key: GroupKey,
    /// Agents per state, indexed by [`StateKind::index`]. All zero means the group is gone.
    pub counts: [u32; StateKind::COUNT],
    /// Per state, how long before the message's time the longest-waiting agent entered it.
    pub longest_ms_ago: [Option<u64>; StateKind::COUNT],
}

/// Sent on a quiet connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keepalive {
    /// The last sequence number the server sent on this connection.
    pub seq: u64,
    /// The server's clock, milliseconds since the Unix epoch.
    pub server_time_ms: u64,
}

/// Whether the floor a server streams may be out of date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `true` while the server cannot learn every change (for example when it has lost the
    /// link it shares changes with other servers over): data may be stale.
    pub degraded: bool,
    /// Why, for a person; empty when not degraded.
    pub reason: String,
    /// Since when, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// A refusal or failure the client can match on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg {
    /// What went wrong, for the program.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

/// Machine-readable error kinds. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Client and server speak different protocol versions.
    VersionMismatch,
    /// A frame could not be decoded (garbage, truncated, or trailing bytes).
    BadFrame,
    /// A frame exceeded the size limit.
    FrameTooLarge,
    /// A frame carried a message tag this server does not know.
    UnknownMessage,
    /// A message arrived out of order, for example `Subscribe` before `Hello`.
    UnexpectedMessage,
    /// A subscription named a team that does not exist.
    UnknownTeam,
    /// A subscription named a site that does not exist.
    UnknownSite,
    /// The client could not keep up and was disconnected.
    TooSlow,
    /// The server is shutting down.
    ShuttingDown,
    /// The server has no room for another connection.
    TooManyConnections,
    /// The caller is not signed in.
    Unauthorized,
    /// The caller may not see what it asked for.
    Forbidden,
    /// The client sent a frame type the protocol does not use (text instead of binary).
    UnsupportedFrame,
    /// Something failed inside the server; details are in its log.
    Internal,
    /// The client changed its subscription more often than the server allows.
    TooManySubscriptions,
}

impl ErrorCode {
    /// The WebSocket close code sent with this error (4000-4999 is for applications).
    pub fn close_code(self) -> u16 {
        match self {
            ErrorCode::VersionMismatch => 4426,
            ErrorCode::BadFrame => 4400,
            ErrorCode::FrameTooLarge => 4413,
            ErrorCode::UnknownMessage => 4402,
            ErrorCode::UnexpectedMessage => 4409,
            ErrorCode::UnknownTeam => 4404,
            ErrorCode::UnknownSite => 4405,
            ErrorCode::TooSlow => 4408,
            ErrorCode::ShuttingDown => 1001,
            ErrorCode::TooManyConnections => 1013,
            ErrorCode::Unauthorized => 4401,
            ErrorCode::Forbidden => 4403,
            ErrorCode::UnsupportedFrame => 1003,
            ErrorCode::Internal => 1011,
            ErrorCode::TooManySubscriptions => 4429,
        }
    }
}
