//! Encoding and decoding of stream frames, with size limits.
//!
//! Every frame is one postcard-encoded [`ServerMsg`] or [`ClientMsg`] carried in one binary
//! WebSocket message. Postcard is used behind these functions, not directly by callers, so the
//! codec can change without touching them. Why postcard: it is maintained, its wire format is
//! specified (so another language can implement MONTI's protocol), and its varints make a state
//! change a handful of bytes. It is not self-describing, which is why enum variants in this
//! crate are append-only.
//!
//! Decoding never panics and never allocates without bound: a frame larger than the limit is
//! refused before decoding, every collection inside a frame costs at least one byte per element
//! (so it cannot exceed the frame), and [`Validate`] checks the explicit per-field limits after
//! decoding.

use serde::{Serialize, de::DeserializeOwned};

use crate::message::{
    ClientMsg, Delta, ErrorCode, ServerMsg, SnapshotChunk, SnapshotHeader, Subscription,
};

/// Largest frame a server accepts from a client. Client messages are small.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// Largest frame a client accepts from a server. Snapshots are chunked well below this.
pub const MAX_SERVER_FRAME: usize = 16 * 1024 * 1024;
/// Largest number of agents (roster entries or states) in one snapshot chunk.
pub const MAX_CHUNK_AGENTS: usize = 16 * 1024;
/// Largest number of teams or sites in one subscription filter.
pub const MAX_FILTER_IDS: usize = 4096;
/// Longest name, code or label in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest access token in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest URL (issuer, audience) in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Highest agent id a fold accepts: bounds the memory a hostile peer can make a client reserve.
pub const MAX_AGENT_ID: u32 = 1024 * 1024;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is larger than the limit for its direction.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame ended in the middle of a message.
    #[error("frame is truncated")]
    Truncated,
    /// The frame starts with (or contains) an enum tag this version does not know.
    #[error("unknown message tag")]
    UnknownTag,
    /// The bytes are not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A whole message was decoded but bytes were left over.
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
    /// A field exceeds its limit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(&'static str),
}

impl DecodeError {
    /// The error code to report to the peer that sent the frame.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeError::UnknownTag => ErrorCode::UnknownMessage,
            _ => ErrorCode::BadFrame,
        }
    }
}

/// Encoding failed; only possible for a message that breaks the limits it would be decoded with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode message: {0}")]
pub struct EncodeError(String);

/// Encodes a server message into one frame.
pub fn encode_server(msg: &ServerMsg) -> Result<Vec<u8>, EncodeError> {
    encode(msg)
}

/// Encodes a client message into one frame.
pub fn encode_client(msg: &ClientMsg) -> Result<Vec<u8>, EncodeError> {
    encode(msg)
}

/// Decodes a frame sent by a server.
pub fn decode_server(frame: &[u8]) -> Result<ServerMsg, DecodeError> {
    decode(frame, MAX_SERVER_FRAME, SERVER_MSG_VARIANTS)
}

/// What kind of message a server frame holds, read from its first byte without decoding it: for
/// a reader that only counts frames (the load generator's unsampled viewers). `None` for an empty
/// frame or a tag this protocol does not know.
pub fn server_msg_kind(frame: &[u8]) -> Option<ServerMsgKind> {
    // Postcard writes the variant index first, as a varint: one byte below 128.
    Some(match frame.first()? {
        0 => ServerMsgKind::Hello,
        1 => ServerMsgKind::Snapshot,
        2 => ServerMsgKind::Delta,
        3 => ServerMsgKind::Keepalive,
        4 => ServerMsgKind::Error,
        5 => ServerMsgKind::Health,
        _ => return None,
    })
}

/// The variants of [`ServerMsg`], without their contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMsgKind {
    /// [`ServerMsg::Hello`]
    Hello,
    /// [`ServerMsg::Snapshot`]
    Snapshot,
    /// [`ServerMsg::Delta`]
    Delta,
    /// [`ServerMsg::Keepalive`]
    Keepalive,
    /// [`ServerMsg::Error`]
    Error,
    /// [`ServerMsg::Health`]
    Health,
}

impl ServerMsgKind {
    /// The kind of a decoded message.
    pub fn of(msg: &ServerMsg) -> ServerMsgKind {
        match msg {
            ServerMsg::Hello(_) => ServerMsgKind::Hello,
            ServerMsg::Snapshot(_) => ServerMsgKind::Snapshot,
            ServerMsg::Delta(_) => ServerMsgKind::Delta,
            ServerMsg::Keepalive(_) => ServerMsgKind::Keepalive,
            ServerMsg::Error(_) => ServerMsgKind::Error,
            ServerMsg::Health(_) => ServerMsgKind::Health,
        }
    }
}

/// Decodes a frame sent by a client.
pub fn decode_client(frame: &[u8]) -> Result<ClientMsg, DecodeError> {
    decode(frame, MAX_CLIENT_FRAME, CLIENT_MSG_VARIANTS)
}

/// How many variants [`ServerMsg`] has; a frame whose tag is beyond them is a message from a
/// newer protocol (or garbage).
const SERVER_MSG_VARIANTS: u32 = 6;
/// How many variants [`ClientMsg`] has.
const CLIENT_MSG_VARIANTS: u32 = 3;

fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, EncodeError> {
    postcard::to_allocvec(msg).map_err(|err| EncodeError(err.to_string()))
}

fn decode<T: DeserializeOwned + Validate>(
    frame: &[u8],
    max: usize,
    n_variants: u32,
) -> Result<T, DecodeError> {
    if frame.len() > max {
        return Err(DecodeError::TooLarge {
            len: frame.len(),
            max,
        });
    }
    // Postcard encodes the enum tag as a leading varint; check it first so that a message from a
    // newer protocol is reported as unknown rather than as garbage.
    match postcard::take_from_bytes::<u32>(frame) {
        Ok((tag, _)) if tag >= n_variants => return Err(DecodeError::UnknownTag),
        Err(postcard::Error::DeserializeUnexpectedEnd) => return Err(DecodeError::Truncated),
        _ => {}
    }
    let (msg, rest) = postcard::take_from_bytes::<T>(frame).map_err(|err| match err {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        postcard::Error::DeserializeBadEnum => DecodeError::UnknownTag,
        other => DecodeError::Malformed(other.to_string()),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    let mut msg = msg;
    msg.validate()?;
    Ok(msg)
}

/// Limits checked after decoding, beyond what the frame size already bounds.
///
/// A client's message that breaks one is refused. A server's names are the exception: a name
/// over [`MAX_NAME_BYTES`] (from an older server, or stored before the limit held) is cut to fit
/// with [`crate::names::CUT_MARK`] at its end, so that the viewer sees the agent with a visibly
/// shortened name instead of losing the whole stream to one name.
pub trait Validate {
    /// Returns the first limit the value breaks; fits what may be fitted.
    fn validate(&mut self) -> Result<(), DecodeError>;
}

fn check(ok: bool, what: &'static str) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::LimitExceeded(what))
    }
}

fn check_name(name: &str) -> Result<(), DecodeError> {
    check(name.len() <= MAX_NAME_BYTES, "name longer than 256 bytes")
}

/// Cuts a name from a server to [`MAX_NAME_BYTES`] (see [`Validate`]).
fn fit(name: &mut String) {
    if name.len() > MAX_NAME_BYTES {
        *name = crate::names::shown_name(name);
    }
}

impl Validate for ClientMsg {
    fn validate(&mut self) -> Result<(), DecodeError> {
        match self {
            ClientMsg::Hello(hello) => check_name(&hello.client_name),
            ClientMsg::Subscribe(sub) => sub.validate(),
            ClientMsg::RenewToken(token) => {
                check(token.len() <= MAX_TOKEN_BYTES, "token longer than 16 KiB")
            }
        }
    }
}

impl Validate for Subscription {
    fn validate(&mut self) -> Result<(), DecodeError> {
        check(
            self.teams.len() <= MAX_FILTER_IDS,
            "too many teams in filter",
        )?;
        check(
            self.sites.len() <= MAX_FILTER_IDS,
            "too many sites in filter",
        )
    }
}

impl Validate for ServerMsg {
    fn validate(&mut self) -> Result<(), DecodeError> {
        match self {
            ServerMsg::Hello(hello) => {
                check_name(&hello.server_name)?;
                if let crate::message::AuthInfo::Oidc {
                    issuer,
                    client_id,
                    audience,
                } = &hello.auth
                {
                    check(
                        issuer.len() <= MAX_URL_BYTES,
                        "issuer longer than 2048 bytes",
                    )?;
                    check_name(client_id)?;
                    check(
                        audience.len() <= MAX_URL_BYTES,
                        "audience longer than 2048 bytes",
                    )?;
                }
                Ok(())
            }
            ServerMsg::Snapshot(chunk) => chunk.validate(),
            ServerMsg::Delta(delta) => delta.validate(),
            ServerMsg::Keepalive(_) => Ok(()),
            ServerMsg::Error(_) | ServerMsg::Health(_) => Ok(()),
        }
    }
}

impl Validate for SnapshotChunk {
    fn validate(&mut self) -> Result<(), DecodeError> {
        check(
            self.roster.len() <= MAX_CHUNK_AGENTS,
            "too many roster entries in chunk",
        )?;
        check(
            self.agents.len() <= MAX_CHUNK_AGENTS,
            "too many agents in chunk",
        )?;
        for info in &mut self.roster {
            fit(&mut info.name);
            check(info.id.0 <= MAX_AGENT_ID, "agent id out of range")?;
        }
        for live in &self.agents {
            check(live.id.0 <= MAX_AGENT_ID, "agent id out of range")?;
        }
        if let Some(header) = &mut self.header {
            header.validate()?;
        }
        Ok(())
    }
}

impl Validate for SnapshotHeader {
    fn validate(&mut self) -> Result<(), DecodeError> {
        for site in &mut self.sites {
            fit(&mut site.name);
        }
        for team in &mut self.teams {
            fit(&mut team.name);
        }
        for reason in &mut self.reasons {
            fit(&mut reason.code);
            fit(&mut reason.label);
        }
        for queue in &mut self.queues {
            queue.validate()?;
        }
        Ok(())
    }
}

impl Validate for crate::queue::QueueInfo {
    fn validate(&mut self) -> Result<(), DecodeError> {
        fit(&mut self.name);
        check(
            self.teams.len() <= MAX_FILTER_IDS,
            "too many teams serving a queue",
        )?;
        check(self.goal_percent <= 100, "service-level goal over 100 %")
    }
}

impl Validate for Delta {
    fn validate(&mut self) -> Result<(), DecodeError> {
        for change in &self.changes {
            check(change.agent.0 <= MAX_AGENT_ID, "agent id out of range")?;
        }
        for change in &mut self.roster {
            use crate::message::RosterChange;
            match change {
                RosterChange::AgentUpserted(info) => {
                    fit(&mut info.name);
                    check(info.id.0 <= MAX_AGENT_ID, "agent id out of range")?;
                }
                RosterChange::AgentRemoved(id) => {
                    check(id.0 <= MAX_AGENT_ID, "agent id out of range")?;
                }
                RosterChange::TeamUpserted(team) => fit(&mut team.name),
                RosterChange::SiteUpserted(site) => fit(&mut site.name),
                RosterChange::TeamRemoved(_) | RosterChange::SiteRemoved(_) => {}
                RosterChange::ReasonUpserted(reason) => {
                    fit(&mut reason.code);
                    fit(&mut reason.label);
                }
                RosterChange::QueueUpserted(queue) => queue.validate()?,
                RosterChange::QueueRemoved(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Health, Keepalive};

    /// The variant counts above must follow the enums; this fails when a variant is appended
    /// without updating them.
    #[test]
    fn variant_counts_match_the_enums() {
        let last_server = ServerMsg::Health(Health {
            degraded: false,
            reason: String::new(),
            since_ms: 0,
        });
        let frame = encode_server(&last_server).expect("encodes");
        assert_eq!(u32::from(frame[0]) + 1, SERVER_MSG_VARIANTS);
        let keepalive = ServerMsg::Keepalive(Keepalive {
            seq: 0,
            server_time_ms: 0,
        });
        assert!(decode_server(&encode_server(&keepalive).expect("encodes")).is_ok());
        let last_client = ClientMsg::RenewToken(String::new());
        let frame = encode_client(&last_client).expect("encodes");
        assert_eq!(u32::from(frame[0]) + 1, CLIENT_MSG_VARIANTS);
    }
}
