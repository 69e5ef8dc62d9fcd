//! A contact's life in queues, folded from its events, without IO.
//!
//! Sources report contacts as events that may arrive late, twice or out of order (Firehose and
//! EventBridge promise neither order nor exactly-once). The writer therefore never updates a
//! contact in place: it stores each new event (a repeated event id is a duplicate) and folds
//! *all* of the contact's events again, in the order they happened, into its legs: one leg per
//! stay in a queue. The same events give the same legs whatever order they came in; the queue
//! figures (offered, answered, abandoned, waits) are counted from legs.
//!
//! The rules, in time order (ties in the order the events were stored):
//! - `queued` into a queue opens a leg there. A leg still open in another queue closes: as
//!   `answered` if it was connected (the agent transferred the contact), else `transferred`
//!   (moved on unanswered, not abandoned). `queued` into the queue of the open, unanswered leg
//!   changes nothing.
//! - `offered` marks the open leg ringing at that agent (the last offer counts: an agent who
//!   lets it ring out and the next one who takes it).
//! - `connected` marks the open leg answered by that agent, once.
//! - `ended` closes the open leg: `answered` if it was connected, else `abandoned` (while
//!   waiting or ringing); the contact is over, later events open nothing.
//! - `offered`, `connected` and `ended` with no open leg (a contact that never queued, such
//!   as an outbound call) make no leg.
//! - `transferred` says the contact went on under another id (Amazon Connect gives a transfer a
//!   new contact): its last leg, if abandoned, was transferred instead, whatever the order of the
//!   `ended` and the `transferred` (a source may stamp them a moment apart either way). An
//!   answered leg stays answered.

use monti_protocol::ingest::{ContactEventJson, ContactEventKind, EventWindow};

use crate::core::plan::Source;

/// One checked contact event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactEvent {
    /// The source's id for the event.
    pub event_id: String,
    /// The source's id for the contact.
    pub contact: String,
    /// What happened.
    pub kind: ContactEventKind,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The queue, with `queued`.
    pub queue: Option<String>,
    /// The channel of a queue this event creates.
    pub channel: &'static str,
    /// The agent's external id, with `offered` and `connected`.
    pub agent: Option<String>,
}

impl ContactEvent {
    /// Checks a JSON event.
    pub fn from_json(
        json: ContactEventJson,
        now_ms: u64,
        window: &EventWindow,
    ) -> Result<ContactEvent, String> {
        let kind = json.check(now_ms, window)?;
        let channel = (monti_protocol::ingest::CHANNELS.iter())
            .find(|&&name| Some(name) == json.channel.as_deref())
            .copied()
            .unwrap_or("voice");
        Ok(ContactEvent {
            event_id: json.event_id,
            contact: json.contact,
            kind,
            at_ms: json.at_ms,
            queue: json.queue,
            channel,
            agent: json.agent,
        })
    }
}

/// Contact events from one source.
#[derive(Clone, Debug)]
pub struct ContactBatch {
    /// Where they come from.
    pub source: Source,
    /// The events, in any order.
    pub events: Vec<ContactEvent>,
}

/// One stored event of a contact, as the fold reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactStep {
    /// What happened.
    pub kind: ContactEventKind,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The queue (with `queued`).
    pub queue_id: Option<i64>,
    /// The agent's external id (with `offered` and `connected`).
    pub agent: Option<String>,
}

/// How a leg stands or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegOutcome {
    /// In the queue, not yet offered.
    Waiting,
    /// Offered to an agent, not yet answered.
    Ringing,
    /// Answered, still going on.
    Connected,
    /// Answered and over (ended, or passed on to another queue after the answer).
    Answered,
    /// The customer hung up before an answer.
    Abandoned,
    /// Moved to another queue before an answer.
    Transferred,
}

impl LegOutcome {
    /// Its name in JSON and in the database.
    pub fn name(self) -> &'static str {
        match self {
            LegOutcome::Waiting => "waiting",
            LegOutcome::Ringing => "ringing",
            LegOutcome::Connected => "connected",
            LegOutcome::Answered => "answered",
            LegOutcome::Abandoned => "abandoned",
            LegOutcome::Transferred => "transferred",
        }
    }

    fn is_open(self) -> bool {
        matches!(
            self,
            LegOutcome::Waiting | LegOutcome::Ringing | LegOutcome::Connected
        )
    }
}

/// One stay of a contact in one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    /// The queue.
    pub queue_id: i64,
    /// When it entered the queue.
    pub queued_ms: u64,
    /// When it was last offered to an agent.
    pub offered_ms: Option<u64>,
    /// When it was answered.
    pub connected_ms: Option<u64>,
    /// When it closed.
    pub ended_ms: Option<u64>,
    /// The agent offered to or answering.
    pub agent: Option<String>,
    /// How it stands or ended.
    pub outcome: LegOutcome,
}

/// The legs of a contact whose events are `steps`, in any order (a stable sort by time keeps
/// the given order among equal times).
pub fn legs(steps: &[ContactStep]) -> Vec<Leg> {
    let mut ordered: Vec<&ContactStep> = steps.iter().collect();
    ordered.sort_by_key(|step| step.at_ms);
    let mut legs: Vec<Leg> = Vec::new();
    let mut over = false;
    for step in ordered {
        if over {
            break;
        }
        let open = legs.last_mut().filter(|leg| leg.outcome.is_open());
        match (step.kind, open) {
            (ContactEventKind::Queued, open) => {
                let Some(queue_id) = step.queue_id else {
                    continue;
                };
                if let Some(leg) = open {
                    if leg.queue_id == queue_id && leg.outcome != LegOutcome::Connected {
                        continue;
                    }
                    leg.outcome = if leg.outcome == LegOutcome::Connected {
                        LegOutcome::Answered
                    } else {
                        LegOutcome::Transferred
                    };
                    leg.ended_ms = Some(step.at_ms);
                }
                legs.push(Leg {
                    queue_id,
                    queued_ms: step.at_ms,
                    offered_ms: None,
                    connected_ms: None,
                    ended_ms: None,
                    agent: None,
                    outcome: LegOutcome::Waiting,
                });
            }
            (ContactEventKind::Offered, Some(leg)) => {
                if leg.outcome != LegOutcome::Connected {
                    leg.offered_ms = Some(step.at_ms);
                    leg.agent = step.agent.clone();
                    leg.outcome = LegOutcome::Ringing;
                }
            }
            (ContactEventKind::Connected, Some(leg)) => {
                if leg.outcome != LegOutcome::Connected {
                    leg.offered_ms.get_or_insert(step.at_ms);
                    leg.connected_ms = Some(step.at_ms);
                    leg.agent = step.agent.clone();
                    leg.outcome = LegOutcome::Connected;
                }
            }
            (ContactEventKind::Ended, open) => {
                if let Some(leg) = open {
                    leg.outcome = if leg.outcome == LegOutcome::Connected {
                        LegOutcome::Answered
                    } else {
                        LegOutcome::Abandoned
                    };
                    leg.ended_ms = Some(step.at_ms);
                }
                over = true;
            }
            (ContactEventKind::Offered | ContactEventKind::Connected, None) => {}
            (ContactEventKind::Transferred, _) => {}
        }
    }
    if steps
        .iter()
        .any(|step| step.kind == ContactEventKind::Transferred)
        && let Some(last) = legs.last_mut()
        && last.outcome == LegOutcome::Abandoned
    {
        last.outcome = LegOutcome::Transferred;
    }
    legs
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContactEventKind::*;

    fn step(kind: ContactEventKind, at_ms: u64) -> ContactStep {
        ContactStep {
            kind,
            at_ms,
            queue_id: None,
            agent: None,
        }
    }

    fn queued(at_ms: u64, queue: i64) -> ContactStep {
        ContactStep {
            queue_id: Some(queue),
            ..step(Queued, at_ms)
        }
    }

    fn by(kind: ContactEventKind, at_ms: u64, agent: &str) -> ContactStep {
        ContactStep {
            agent: Some(agent.to_owned()),
            ..step(kind, at_ms)
        }
    }

    fn outcomes(steps: &[ContactStep]) -> Vec<(i64, LegOutcome)> {
        legs(steps)
            .into_iter()
            .map(|leg| (leg.queue_id, leg.outcome))
            .collect()
    }

    #[test]
    fn each_rule() {
        type Case = (&'static str, Vec<ContactStep>, Vec<(i64, LegOutcome)>);
        let cases: Vec<Case> = vec![
            (
                "queued only: waiting",
                vec![queued(1, 7)],
                vec![(7, LegOutcome::Waiting)],
            ),
            (
                "offered: ringing",
                vec![queued(1, 7), by(Offered, 2, "a")],
                vec![(7, LegOutcome::Ringing)],
            ),
            (
                "answered and ended",
                vec![
                    queued(1, 7),
                    by(Offered, 2, "a"),
                    by(Connected, 3, "a"),
                    step(Ended, 9),
                ],
                vec![(7, LegOutcome::Answered)],
            ),
            (
                "hung up while waiting",
                vec![queued(1, 7), step(Ended, 5)],
                vec![(7, LegOutcome::Abandoned)],
            ),
            (
                "hung up while ringing",
                vec![queued(1, 7), by(Offered, 2, "a"), step(Ended, 5)],
                vec![(7, LegOutcome::Abandoned)],
            ),
            (
                "overflow to another queue unanswered, answered there",
                vec![
                    queued(1, 7),
                    queued(30, 8),
                    by(Connected, 40, "b"),
                    step(Ended, 90),
                ],
                vec![(7, LegOutcome::Transferred), (8, LegOutcome::Answered)],
            ),
            (
                "answered, then transferred by the agent and abandoned",
                vec![
                    queued(1, 7),
                    by(Connected, 3, "a"),
                    queued(60, 8),
                    step(Ended, 70),
                ],
                vec![(7, LegOutcome::Answered), (8, LegOutcome::Abandoned)],
            ),
            (
                "queued twice into the same queue: one leg",
                vec![queued(1, 7), queued(2, 7)],
                vec![(7, LegOutcome::Waiting)],
            ),
            (
                "never queued (outbound): no leg",
                vec![by(Connected, 3, "a"), step(Ended, 9)],
                vec![],
            ),
            (
                "moved on under another id before an answer: transferred",
                vec![queued(1, 7), step(Ended, 30), step(Transferred, 29)],
                vec![(7, LegOutcome::Transferred)],
            ),
            (
                "the same, the transfer stamped after the end",
                vec![queued(1, 7), step(Ended, 30), step(Transferred, 31)],
                vec![(7, LegOutcome::Transferred)],
            ),
            (
                "transferred after an answer: still answered",
                vec![
                    queued(1, 7),
                    by(Connected, 3, "a"),
                    step(Transferred, 50),
                    step(Ended, 50),
                ],
                vec![(7, LegOutcome::Answered)],
            ),
            (
                "nothing after the end",
                vec![queued(1, 7), step(Ended, 5), queued(6, 8)],
                vec![(7, LegOutcome::Abandoned)],
            ),
        ];
        for (name, steps, expected) in cases {
            assert_eq!(outcomes(&steps), expected, "{name}");
        }
    }

    #[test]
    fn times_and_agent_are_kept() {
        let legs = legs(&[
            queued(1_000, 7),
            by(Offered, 4_000, "a"),
            by(Offered, 9_000, "b"),
            by(Connected, 11_000, "b"),
            step(Ended, 200_000),
        ]);
        assert_eq!(
            legs,
            vec![Leg {
                queue_id: 7,
                queued_ms: 1_000,
                offered_ms: Some(9_000),
                connected_ms: Some(11_000),
                ended_ms: Some(200_000),
                agent: Some("b".to_owned()),
                outcome: LegOutcome::Answered,
            }]
        );
    }

    /// Events in any order give the same legs as in the order they happened.
    #[test]
    fn the_order_events_arrive_in_does_not_matter() {
        let steps = vec![
            queued(1, 7),
            by(Offered, 2, "a"),
            by(Connected, 3, "a"),
            queued(50, 8),
            by(Offered, 55, "c"),
            step(Ended, 60),
        ];
        let expected = legs(&steps);
        // Every rotation and the reverse.
        for shift in 0..steps.len() {
            let mut rotated = steps.clone();
            rotated.rotate_left(shift);
            assert_eq!(legs(&rotated), expected, "rotated by {shift}");
        }
        let mut reversed = steps.clone();
        reversed.reverse();
        assert_eq!(legs(&reversed), expected);
    }
}
