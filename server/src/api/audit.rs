//! The audit log: sign-ins (the first use of a subject each day), refused attempts and
//! configuration changes, with who, what and when; admins read it through REST.
//!
//! Recording never waits for the database: events go into a bounded queue that a background task
//! writes in batches; when the queue is full, events are dropped and counted, so a flood of bad
//! tokens cannot slow sign-ins down. Tokens are never recorded.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::core::clock::Clock;
use crate::metrics::Metrics;
use crate::store::db::{AuditEvent, Db};

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Where the server records audit events.
pub struct Audit {
    events: mpsc::Sender<AuditEvent>,
    /// The subjects already recorded as signed in today (and which day that is).
    signed_in_today: Mutex<(u64, HashSet<String>)>,
    metrics: Arc<Metrics>,
    clock: Clock,
}

impl Audit {
    /// An audit log writing through `events`.
    pub fn new(events: mpsc::Sender<AuditEvent>, metrics: Arc<Metrics>, clock: Clock) -> Audit {
        Audit {
            events,
            signed_in_today: Mutex::new((0, HashSet::new())),
            metrics,
            clock,
        }
    }

    fn record(&self, subject: Option<&str>, kind: &str, detail: String) {
        let event = AuditEvent {
            created_at: self.clock.now_ms() as i64,
            subject: subject.map(str::to_owned),
            kind: kind.to_owned(),
            detail,
        };
        if self.events.try_send(event).is_err() {
            self.metrics.audit_dropped.inc();
        }
    }

    /// A request carried a valid token; recorded once per subject and day, with the client's
    /// address when known.
    pub fn signed_in(&self, subject: &str, roles: &str, from: Option<IpAddr>) {
        let today = self.clock.now_ms() / DAY_MS;
        {
            // Short section, no await: a std Mutex is right.
            let mut seen = self
                .signed_in_today
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if seen.0 != today {
                *seen = (today, HashSet::new());
            }
            if !seen.1.insert(subject.to_owned()) {
                return;
            }
        }
        self.record(
            Some(subject),
            "sign_in",
            format!("roles: {roles}{}", from_text(from)),
        );
    }

    /// Someone changed configuration.
    pub fn config_changed(&self, subject: &str, what: &str) {
        self.record(Some(subject), "config_change", what.to_owned());
    }

    /// Who may see what changed (`subject`: who changed it; none: the configuration file).
    pub fn access_changed(&self, subject: Option<&str>, what: &str) {
        self.record(subject, "access_change", what.to_owned());
    }

    /// An administrator opened the floor as someone else (test access).
    pub fn test_access(&self, subject: &str, what: &str) {
        self.record(Some(subject), "test_access", what.to_owned());
    }

    /// Someone sent feedback.
    pub fn feedback(&self, subject: &str, what: &str) {
        self.record(Some(subject), "feedback", what.to_owned());
    }

    /// A request was refused for its token (the subject is known only when the token was valid).
    pub fn refused(&self, subject: Option<&str>, reason: &str, from: Option<IpAddr>) {
        self.record(subject, "refused", format!("{reason}{}", from_text(from)));
    }
}

/// ` from ADDRESS`, or nothing when the address is not known.
fn from_text(from: Option<IpAddr>) -> String {
    from.map(|addr| format!(" from {addr}")).unwrap_or_default()
}

/// Writes queued audit events in batches until the queue closes; retries a failed batch once.
pub async fn write(db: Db, mut events: mpsc::Receiver<AuditEvent>, metrics: Arc<Metrics>) {
    let mut batch = Vec::new();
    while events.recv_many(&mut batch, 1_000).await > 0 {
        let mut result = db.write_audit(&batch).await;
        if result.is_err() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            result = db.write_audit(&batch).await;
        }
        if let Err(err) = result {
            tracing::warn!(
                error = format!("{err:#}"),
                events = batch.len(),
                "dropping audit events"
            );
            metrics.audit_dropped.inc_by(batch.len() as u64);
        }
        batch.clear();
    }
}
