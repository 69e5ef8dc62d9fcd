//! Following a view of the floor for as long as it takes: connect, subscribe, fold, and on any
//! failure reconnect with exponential backoff and jitter, then resync with a fresh snapshot.
//!
//! [`Follower::next`] drives everything and returns after each step, so a caller (the CLI, a
//! test, the desktop's network thread) decides what to do with the floor in between. A sequence
//! gap or any other fold error is never skipped over: the follower subscribes again and waits for
//! a fresh snapshot.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use monti_protocol::access::ViewAs;
use monti_protocol::floor::Floor;
use monti_protocol::message::{ClientMsg, Detail, Health, ServerMsg, Subscription};
use monti_protocol::model::{SiteId, TeamId};

use crate::connection::{ClientError, Connection, now_ms};
use crate::transport::Transport;

/// Reconnect timing: the delay doubles from `initial` up to `max`, and each wait is drawn
/// uniformly between half the delay and the delay, so a crowd of clients does not reconnect in
/// lockstep after a server restart.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms doubling to 3 s: a wallboard is live again within about 5 s of its server's
    /// return, however long the server was away, and a crowd's attempts still spread over
    /// 1.5-3 s each.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(3),
        }
    }
}

impl Backoff {
    /// The wait before reconnect attempt `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let ceiling = exp.min(self.max);
        ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// What one call to [`Follower::next`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Connected and subscribed; a snapshot is on its way.
    Connected {
        /// The server's name and version.
        server_name: String,
    },
    /// A complete snapshot was folded in.
    Snapshot {
        /// Its sequence number.
        seq: u64,
    },
    /// A delta was folded in.
    Delta {
        /// Its sequence number.
        seq: u64,
        /// How many agent changes it carried.
        n_changes: usize,
    },
    /// The server said whether its floor may be out of date (see [`Follower::degraded`]).
    Health(Health),
    /// A chunk of a snapshot arrived, or a keepalive; nothing visible changed.
    Progress,
    /// The connection was lost or a resync is needed; the follower waits, then reconnects.
    Lost {
        /// Why, with the detail.
        reason: String,
        /// Why, in a few plain words ([`ClientError::words`]).
        words: String,
        /// How long it waits before reconnecting.
        retry_in: Duration,
    },
}

/// The state of the link, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not connected yet, or reconnecting.
    Connecting,
    /// Connected, waiting for the snapshot.
    Syncing,
    /// Connected and up to date.
    Live,
}

/// Follows one subscription, reconnecting forever (unless the server says retrying cannot help).
pub struct Follower {
    server: String,
    client_name: String,
    subscription: Subscription,
    backoff: Backoff,
    connection: Option<Connection>,
    /// Shared so that a UI thread can draw it while this follower waits on the network; the
    /// lock is only ever held for one fold, never across an await.
    floor: Arc<Mutex<Floor>>,
    link: Link,
    attempt: u32,
    /// When the next reconnect may start; kept across a cancelled [`Follower::next`].
    retry_at: Option<tokio::time::Instant>,
    /// When the last message from the server arrived (local clock, ms since the epoch).
    last_update_ms: u64,
    jitter: u64,
    /// The teams and sites of the subscription the floor's last snapshot answered.
    floor_scope: Option<RosterScope>,
    /// The teams and sites of the subscription last sent.
    sent_scope: Option<RosterScope>,
    /// Bearer token presented on connect, if the server wants one.
    token: Option<String>,
    /// TLS and proxy settings; the system's when `None`.
    transport: Option<Transport>,
    /// Set while the server says its floor may be out of date.
    degraded: Option<Health>,
    /// Whom an administrator sees the floor as (test access).
    view_as: Option<ViewAs>,
}

impl Follower {
    /// A follower of `subscription` on `server` (`http://host:port`).
    pub fn new(server: &str, client_name: &str, subscription: Subscription) -> Follower {
        Follower {
            server: server.to_owned(),
            client_name: client_name.to_owned(),
            subscription,
            backoff: Backoff::default(),
            connection: None,
            floor: Arc::new(Mutex::new(Floor::awaiting_snapshot())),
            link: Link::Connecting,
            attempt: 0,
            retry_at: None,
            last_update_ms: 0,
            jitter: now_ms() ^ u64::from(std::process::id()).rotate_left(32),
            floor_scope: None,
            sent_scope: None,
            token: None,
            transport: None,
            degraded: None,
            view_as: None,
        }
    }

    /// Sees the floor as `view_as` would (an administrator's test access).
    pub fn with_view_as(mut self, view_as: Option<ViewAs>) -> Follower {
        self.view_as = view_as;
        self
    }

    /// Connects through `transport` (its CA file and proxy) rather than the system's settings.
    pub fn with_transport(mut self, transport: Transport) -> Follower {
        self.transport = Some(transport);
        self
    }

    /// Uses other reconnect timing.
    pub fn with_backoff(mut self, backoff: Backoff) -> Follower {
        self.backoff = backoff;
        self
    }

    /// Presents `token` on every (re)connect from now on.
    pub fn with_token(mut self, token: &str) -> Follower {
        self.token = Some(token.to_owned());
        self
    }

    /// Presents a renewed token: sent on the open connection at once, and used on reconnects.
    pub async fn renew_token(&mut self, token: &str) -> Result<(), ClientError> {
        self.token = Some(token.to_owned());
        if let Some(connection) = &mut self.connection {
            connection
                .send(&ClientMsg::RenewToken(token.to_owned()))
                .await?;
        }
        Ok(())
    }

    /// The floor as folded so far. Before the first snapshot it is empty and not ready.
    ///
    /// Do not hold the guard across an await: the follower folds into the same floor.
    pub fn floor(&self) -> MutexGuard<'_, Floor> {
        lock(&self.floor)
    }

    /// The same floor for another thread to read, for example a UI drawing it every frame.
    pub fn shared_floor(&self) -> Arc<Mutex<Floor>> {
        self.floor.clone()
    }

    /// The state of the link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Why the server's floor may be out of date, while it says so (for example when it lost
    /// its link to the other servers); `None` when it is complete.
    pub fn degraded(&self) -> Option<&Health> {
        self.degraded.as_ref()
    }

    /// The server clock minus the local clock, as measured at the last handshake.
    pub fn clock_offset_ms(&self) -> i64 {
        self.connection
            .as_ref()
            .map_or(0, Connection::clock_offset_ms)
    }

    /// When the last message arrived, local ms since the epoch (0 before any).
    pub fn last_update_ms(&self) -> u64 {
        self.last_update_ms
    }

    /// Follows another subscription from now on (a fresh snapshot follows).
    pub async fn resubscribe(&mut self, subscription: Subscription) {
        self.subscription = subscription;
        if self.connection.is_some() {
            if self.send_subscription().await.is_err() {
                self.connection = None;
            } else {
                self.link = Link::Syncing;
            }
        }
    }

    /// Does the next step: waits out a backoff, connects, or receives and folds one message.
    /// Returns an error only when retrying cannot help.
    ///
    /// Cancel-safe between steps: dropping the future (in a `select!`) loses no message and
    /// keeps the backoff deadline.
    pub async fn next(&mut self) -> Result<Step, ClientError> {
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at).await;
            self.retry_at = None;
        }
        let step = match self.connection.as_mut() {
            None => self.connect().await,
            Some(connection) => match connection.recv().await {
                Ok(msg) => self.fold(msg).await,
                Err(err) => Err(err),
            },
        };
        match step {
            Ok(event) => Ok(event),
            Err(err) if err.is_fatal() => Err(err),
            Err(err) => Ok(self.lose(err.to_string(), err.words())),
        }
    }

    async fn connect(&mut self) -> Result<Step, ClientError> {
        self.link = Link::Connecting;
        let transport = match &self.transport {
            Some(transport) => transport.clone(),
            None => Transport::system().map_err(|err| ClientError::Io(err.to_string()))?,
        };
        let connection = Connection::connect_as(
            &transport,
            &self.server,
            &self.client_name,
            self.token.as_deref(),
            self.view_as.as_ref(),
        )
        .await?;
        let server_name = connection.hello().server_name.clone();
        self.connection = Some(connection);
        // A server says so after the snapshot when it is degraded; until then, assume not.
        self.degraded = None;
        self.send_subscription().await?;
        self.link = Link::Syncing;
        Ok(Step::Connected { server_name })
    }

    async fn fold(&mut self, msg: ServerMsg) -> Result<Step, ClientError> {
        self.last_update_ms = now_ms();
        let folded = lock(&self.floor).apply(&msg);
        if let Err(err) = folded {
            // Never skip: ask for a fresh snapshot on the same connection.
            tracing::debug!(%err, "fold failed; resubscribing");
            self.send_subscription().await?;
            self.link = Link::Syncing;
            return Ok(Step::Progress);
        }
        Ok(match msg {
            ServerMsg::Snapshot(chunk) if chunk.last => {
                self.floor_scope = self.sent_scope.clone();
                self.link = Link::Live;
                self.attempt = 0;
                Step::Snapshot { seq: chunk.seq }
            }
            ServerMsg::Delta(delta) => Step::Delta {
                seq: delta.seq,
                n_changes: delta.changes.len(),
            },
            ServerMsg::Health(health) => {
                self.degraded = health.degraded.then(|| health.clone());
                Step::Health(health)
            }
            _ => Step::Progress,
        })
    }

    /// Sends the current subscription on the open connection, claiming the roster only when the
    /// floor holds it for the same server instance and scope.
    async fn send_subscription(&mut self) -> Result<(), ClientError> {
        let Some(connection) = &mut self.connection else {
            return Ok(());
        };
        let instance = connection.hello().instance;
        let sub = subscription_for(
            &self.subscription,
            &lock(&self.floor),
            self.floor_scope.as_ref(),
            instance,
        );
        connection.subscribe(&sub).await?;
        self.sent_scope = Some(RosterScope {
            instance,
            teams: sub.teams,
            sites: sub.sites,
        });
        Ok(())
    }

    fn lose(&mut self, reason: String, words: String) -> Step {
        if let Some(connection) = self.connection.take() {
            // Dropping is enough; a polite close could block on a dead peer.
            drop(connection);
        }
        self.link = Link::Connecting;
        self.attempt += 1;
        self.jitter = self
            .jitter
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let jitter = (self.jitter >> 11) as f64 / (1u64 << 53) as f64;
        let retry_in = self.backoff.delay(self.attempt, jitter);
        self.retry_at = Some(tokio::time::Instant::now() + retry_in);
        Step::Lost {
            reason,
            words,
            retry_in,
        }
    }

    /// Runs until a complete snapshot has been folded in (or a fatal error).
    pub async fn until_live(&mut self) -> Result<(), ClientError> {
        while !matches!(self.next().await?, Step::Snapshot { .. }) {}
        Ok(())
    }
}

/// Locks a floor; a panic elsewhere while folding leaves a floor that the next snapshot replaces,
/// so a poisoned lock is used as it is.
fn lock(floor: &Mutex<Floor>) -> MutexGuard<'_, Floor> {
    floor.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server instance and the teams and sites a floor's roster was fetched for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RosterScope {
    instance: u64,
    teams: Vec<TeamId>,
    sites: Vec<SiteId>,
}

/// The subscription to send: the roster is asked for unless the floor holds it for the same
/// server instance, teams and sites.
fn subscription_for(
    sub: &Subscription,
    floor: &Floor,
    floor_scope: Option<&RosterScope>,
    instance: u64,
) -> Subscription {
    let same_scope = floor.is_ready()
        && floor.detail() == Detail::Agents
        && sub.detail == Detail::Agents
        && floor_scope.is_some_and(|scope| {
            scope.instance == instance && scope.teams == sub.teams && scope.sites == sub.sites
        });
    Subscription {
        known_roster: same_scope.then(|| floor.roster_version()),
        ..sub.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_is_claimed_only_for_the_same_instance_and_scope() {
        let mut floor = Floor::new();
        floor.set_roster_version(7);
        let sub = Subscription {
            teams: vec![TeamId(1)],
            ..Subscription::default()
        };
        let scope = RosterScope {
            instance: 42,
            teams: vec![TeamId(1)],
            sites: vec![],
        };
        assert_eq!(
            subscription_for(&sub, &floor, Some(&scope), 42).known_roster,
            Some(7)
        );
        assert_eq!(
            subscription_for(&sub, &floor, Some(&scope), 43).known_roster,
            None,
            "restarted server"
        );
        let other_team = Subscription {
            teams: vec![TeamId(2)],
            ..sub.clone()
        };
        assert_eq!(
            subscription_for(&other_team, &floor, Some(&scope), 42).known_roster,
            None
        );
        assert_eq!(
            subscription_for(&sub, &Floor::awaiting_snapshot(), Some(&scope), 42).known_roster,
            None
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_jitters_within_half() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(backoff.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff.delay(3, 0.0), Duration::from_millis(200));
        assert_eq!(backoff.delay(30, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn by_default_no_wait_is_longer_than_three_seconds_however_many_attempts_failed() {
        let backoff = Backoff::default();
        for attempt in 1..100 {
            for jitter in [0.0, 0.5, 1.0] {
                assert!(backoff.delay(attempt, jitter) <= Duration::from_secs(3));
            }
        }
        // Spread over half the ceiling, so a crowd does not come back in lockstep.
        assert_eq!(backoff.delay(50, 0.0), Duration::from_millis(1500));
    }
}
