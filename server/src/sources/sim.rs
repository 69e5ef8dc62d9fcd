//! The simulated call-center floor: a deterministic roster and a believable day per agent.
//!
//! Each agent has a shift (login between 07:00 and 12:00, eight and a half hours), two short
//! breaks and a lunch, occasional meetings, training and coaching, and in between a cycle of
//! contacts: available, ringing, on call (sometimes on hold), wrap-up. The same seed gives the
//! same roster and the same sequence of states in simulated time. Changes go through the ingest
//! writer ([`crate::sources::ingest::Ingest`]), the same path a telephony integration uses.
//!
//! The behaviour ([`Agent::step`]) is a pure function of the agent, its random stream and the
//! simulated clock; only [`run`] touches time and the floor.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use monti_protocol::ingest::{AgentEntryJson, GroupEntryJson, ReasonEntryJson, RosterSyncJson};
use monti_protocol::model::StateKind;
use tokio_util::sync::CancellationToken;

use crate::config::SimulatorConfig;
use crate::core::clock::Clock;
use crate::core::plan::{RosterSync, Unlisted};
use crate::sources::ingest::{Batch, Event, EventReason, Ingest, IngestError, Source};

/// External ids of simulated agents start with this.
pub const EXTERNAL_ID_PREFIX: &str = "sim-";

const SITES: [&str; 6] = ["Berlin", "Hamburg", "Leipzig", "Lisbon", "Kraków", "Dublin"];
const DEPARTMENTS: [&str; 10] = [
    "Billing",
    "Sales",
    "Tech Support",
    "Retentions",
    "Onboarding",
    "Claims",
    "Premium Care",
    "Collections",
    "Business Desk",
    "Returns",
];
const FIRST_NAMES: [&str; 40] = [
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Katrin",
    "Lukas", "Mia", "Noah", "Olga", "Paul", "Queenie", "Rafael", "Sofia", "Tim", "Ulla", "Vera",
    "Wojtek", "Xenia", "Yusuf", "Zoe", "Ahmet", "Beatriz", "Ciarán", "Dorota", "Emil", "Fatima",
    "Gonçalo", "Hanna", "Igor", "Jana", "Kofi", "Lena", "Marek", "Nina",
];
const LAST_NAMES: [&str; 40] = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Kowalski",
    "Nowak",
    "Silva",
    "Santos",
    "Ferreira",
    "Murphy",
    "Kelly",
    "Byrne",
    "Yilmaz",
    "Kaya",
    "Demir",
    "Lange",
    "Krüger",
    "Hartmann",
    "Walsh",
    "O'Brien",
    "Costa",
    "Wiśniewski",
    "Lewandowska",
    "Braun",
    "Zimmermann",
    "Vogel",
    "Sommer",
    "Roth",
];
/// Reason codes `(code, label)`; the simulator uses all of them.
pub const REASONS: [(&str, &str); 7] = [
    ("break", "Break"),
    ("lunch", "Lunch"),
    ("meeting", "Meeting"),
    ("training", "Training"),
    ("coaching", "Coaching"),
    ("admin", "Admin work"),
    ("technical", "Technical issue"),
];

/// A small, fast, well-distributed generator (SplitMix64). Written out here so that the
/// simulated floor of a seed never changes with a dependency's version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` and `stream` (for example an agent's index).
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low).max(1)
    }

    /// Exponentially distributed with the given mean, never below `min`.
    pub fn exp(&mut self, mean: f64, min: f64) -> u64 {
        let sample = -mean * (1.0 - self.unit()).ln();
        (sample.max(min) * 1000.0) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// The simulated roster for `config`: teams of uneven size at a handful of sites. Stored
/// through the writer like any roster sync; it deactivates the simulator's agents it does not
/// list (a smaller floor than last time), no one else's.
pub fn roster(config: &SimulatorConfig) -> RosterSync {
    let mut rng = Rng::new(config.seed, u64::MAX);
    let n_agents = config.agents as usize;
    let n_sites = (n_agents / 400).clamp(2, SITES.len());
    let sites: Vec<String> = SITES[..n_sites]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    // Teams of 8 to 60 agents until everyone has a team; each team has a home site where most
    // of its agents sit.
    let mut teams: Vec<(String, usize, usize)> = Vec::new();
    let mut assigned = 0;
    while assigned < n_agents {
        let size = (rng.range(8, 61) as usize).min(n_agents - assigned);
        let department = DEPARTMENTS[teams.len() % DEPARTMENTS.len()];
        let number = teams.len() / DEPARTMENTS.len() + 1;
        teams.push((
            format!("{department} {number}"),
            size,
            rng.range(0, n_sites as u64) as usize,
        ));
        assigned += size;
    }
    let mut agents = Vec::with_capacity(n_agents);
    for (team, size, home) in &teams {
        for _ in 0..*size {
            let idx = agents.len();
            let site = if rng.chance(0.85) {
                *home
            } else {
                rng.range(0, n_sites as u64) as usize
            };
            let first = FIRST_NAMES[rng.range(0, FIRST_NAMES.len() as u64) as usize];
            let last = LAST_NAMES[rng.range(0, LAST_NAMES.len() as u64) as usize];
            agents.push(AgentEntryJson {
                external_id: format!("{EXTERNAL_ID_PREFIX}{:06}", idx + 1),
                name: format!("{first} {last}"),
                team: team.clone(),
                site: sites[site].clone(),
                active: true,
            });
        }
    }
    let group = |name: String| GroupEntryJson {
        name,
        rename_to: None,
        active: true,
    };
    RosterSync {
        roster: RosterSyncJson {
            sites: sites.into_iter().map(group).collect(),
            teams: teams.into_iter().map(|(name, _, _)| group(name)).collect(),
            reasons: REASONS
                .iter()
                .map(|(code, label)| ReasonEntryJson {
                    code: (*code).to_owned(),
                    label: (*label).to_owned(),
                })
                .collect(),
            agents,
            deactivate_missing_agents: false,
        },
        unlisted: Unlisted::DeactivateWithPrefix(EXTERNAL_ID_PREFIX.to_owned()),
    }
}

const DAY_MS: u64 = 24 * 3600 * 1000;
const MINUTE_MS: u64 = 60 * 1000;

/// Reason indices into [`REASONS`].
const BREAK: usize = 0;
const LUNCH: usize = 1;

/// One simulated agent's day plan and current state.
#[derive(Clone, Debug)]
pub struct Agent {
    rng: Rng,
    /// Shift start, ms after midnight.
    shift_start: u64,
    /// Planned pauses `(start ms after midnight, length ms, reason index)`, in order.
    pauses: [(u64, u64, usize); 3],
    /// The state the agent is in.
    pub status: Status,
    /// Remaining talk time to resume after a hold, ms.
    talk_left: u64,
    /// Index of the next planned pause today.
    next_pause: usize,
}

/// A simulated state; `NotReady` carries an index into [`REASONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Logged out.
    Offline,
    /// Waiting for a call.
    Available,
    /// A call is offered.
    Ringing,
    /// Talking.
    OnCall,
    /// Customer on hold.
    OnHold,
    /// After-call work.
    WrapUp,
    /// Not ready for the reason at this index of [`REASONS`].
    NotReady(usize),
}

const SHIFT_MS: u64 = 8 * 3600 * 1000 + 30 * MINUTE_MS;

impl Agent {
    /// The agent with index `idx` of the floor of `seed`.
    pub fn new(seed: u64, idx: u64) -> Agent {
        let mut rng = Rng::new(seed, idx);
        let shift_start = 7 * 3600 * 1000 + rng.range(0, 21) * 15 * MINUTE_MS;
        let pauses = [
            (
                shift_start + 2 * 3600 * 1000 + rng.range(0, 30) * MINUTE_MS,
                15 * MINUTE_MS,
                BREAK,
            ),
            (
                shift_start + 4 * 3600 * 1000 + rng.range(0, 60) * MINUTE_MS,
                30 * MINUTE_MS,
                LUNCH,
            ),
            (
                shift_start + 6 * 3600 * 1000 + rng.range(15, 45) * MINUTE_MS,
                15 * MINUTE_MS,
                BREAK,
            ),
        ];
        Agent {
            rng,
            shift_start,
            pauses,
            status: Status::Offline,
            talk_left: 0,
            next_pause: 0,
        }
    }

    fn in_shift(&self, time_of_day: u64) -> bool {
        time_of_day >= self.shift_start && time_of_day < self.shift_start + SHIFT_MS
    }

    /// Puts the agent where it would plausibly be at simulated time `now` (ms since the
    /// simulation's midnight) and returns how long ago that state began and when its next event
    /// is due.
    pub fn start(&mut self, now: u64) -> (u64, u64) {
        let time_of_day = now % DAY_MS;
        self.next_pause = self
            .pauses
            .iter()
            .take_while(|(start, ..)| *start < time_of_day)
            .count();
        if !self.in_shift(time_of_day) {
            self.status = Status::Offline;
            let shift_end = (self.shift_start + SHIFT_MS) % DAY_MS;
            let offline_for = (time_of_day + DAY_MS - shift_end) % DAY_MS;
            return (offline_for, now + self.until_shift(time_of_day));
        }
        let roll = self.rng.unit();
        let (status, length) = if roll < 0.55 {
            (Status::OnCall, self.rng.exp(200.0, 30.0))
        } else if roll < 0.70 {
            (Status::WrapUp, self.rng.range(15_000, 75_000))
        } else if roll < 0.95 {
            (Status::Available, self.rng.exp(30.0, 2.0))
        } else {
            (Status::NotReady(5), self.rng.range(2, 10) * MINUTE_MS)
        };
        self.status = status;
        self.talk_left = 0;
        let elapsed = self.rng.range(0, length.max(1));
        (elapsed, now + (length - elapsed))
    }

    fn until_shift(&self, time_of_day: u64) -> u64 {
        (self.shift_start + DAY_MS - time_of_day) % DAY_MS
    }

    /// The agent's next state at simulated time `now`, and when the one after is due.
    pub fn step(&mut self, now: u64) -> u64 {
        let time_of_day = now % DAY_MS;
        let in_shift = self.in_shift(time_of_day);
        let until_shift = self.until_shift(time_of_day);
        let rng = &mut self.rng;
        let (status, length) = match self.status {
            Status::Offline => {
                if in_shift {
                    self.next_pause = 0;
                    (Status::Available, rng.exp(20.0, 1.0))
                } else {
                    (Status::Offline, until_shift.max(MINUTE_MS))
                }
            }
            Status::Ringing => {
                if rng.chance(0.04) {
                    (Status::Available, rng.exp(30.0, 2.0))
                } else {
                    let talk = rng.exp(200.0, 25.0);
                    if rng.chance(0.15) {
                        let before_hold = rng.range(10_000, talk.max(10_001));
                        self.talk_left = talk - before_hold.min(talk);
                        (Status::OnCall, before_hold)
                    } else {
                        self.talk_left = 0;
                        (Status::OnCall, talk)
                    }
                }
            }
            Status::OnCall => {
                if self.talk_left > 0 {
                    (Status::OnHold, rng.range(15_000, 120_000))
                } else {
                    (Status::WrapUp, rng.range(15_000, 75_000))
                }
            }
            Status::OnHold => (
                Status::OnCall,
                std::mem::take(&mut self.talk_left).max(5_000),
            ),
            Status::Available | Status::WrapUp | Status::NotReady(_) => {
                self.between_calls(time_of_day)
            }
        };
        self.status = status;
        now + length.max(500)
    }

    /// After a call, a pause or an idle spell: log out, take a due pause, or take the next call.
    fn between_calls(&mut self, time_of_day: u64) -> (Status, u64) {
        if !self.in_shift(time_of_day) {
            return (
                Status::Offline,
                self.until_shift(time_of_day).max(MINUTE_MS),
            );
        }
        let rng = &mut self.rng;
        if let Some(&(start, length, reason)) = self.pauses.get(self.next_pause)
            && time_of_day >= start
        {
            self.next_pause += 1;
            return (
                Status::NotReady(reason),
                length + rng.range(0, 3 * MINUTE_MS),
            );
        }
        if self.status == Status::WrapUp {
            // Now and then something else than the next call.
            let roll = rng.unit();
            if roll < 0.010 {
                return (Status::NotReady(2), rng.range(20, 45) * MINUTE_MS);
            } else if roll < 0.016 {
                return (Status::NotReady(3), rng.range(30, 60) * MINUTE_MS);
            } else if roll < 0.022 {
                return (Status::NotReady(4), rng.range(10, 25) * MINUTE_MS);
            } else if roll < 0.040 {
                return (Status::NotReady(5), rng.range(2, 10) * MINUTE_MS);
            } else if roll < 0.043 {
                return (Status::NotReady(6), rng.range(3, 15) * MINUTE_MS);
            }
            return (Status::Available, rng.exp(30.0, 1.0));
        }
        if self.status == Status::Available {
            return (Status::Ringing, rng.range(3_000, 13_000));
        }
        (Status::Available, rng.exp(30.0, 1.0))
    }
}

/// Converts a simulated state to an ingest state and reason code.
fn ingest_state(status: Status) -> (StateKind, Option<EventReason>) {
    match status {
        Status::Offline => (StateKind::Offline, None),
        Status::Available => (StateKind::Available, None),
        Status::Ringing => (StateKind::Ringing, None),
        Status::OnCall => (StateKind::OnCall, None),
        Status::OnHold => (StateKind::OnHold, None),
        Status::WrapUp => (StateKind::WrapUp, None),
        Status::NotReady(reason) => (
            StateKind::NotReady,
            REASONS.get(reason).map(|(code, label)| EventReason {
                code: code.to_string(),
                label: label.to_string(),
            }),
        ),
    }
}

/// Runs the simulated floor until `shutdown` (or the configured simulated duration) ends it.
pub async fn run(
    config: SimulatorConfig,
    ids: Vec<String>,
    ingest: Ingest,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let Ok(start_of_day) = config.start_second_of_day() else {
        return;
    };
    let sim_start = start_of_day * 1000;
    let sim_end =
        (config.duration_minutes > 0).then(|| sim_start + config.duration_minutes * MINUTE_MS);
    let mut agents: Vec<Agent> = (0..ids.len())
        .map(|idx| Agent::new(config.seed, idx as u64))
        .collect();
    let mut due = BinaryHeap::with_capacity(agents.len());
    let started = Instant::now();
    let wall_start = clock.now_ms();
    // Event ids are unique per run: a restarted simulator starts a new day.
    let mut events = EventIds {
        run: wall_start,
        next: 0,
    };
    let mut batch = Vec::with_capacity(agents.len());
    for (idx, agent) in agents.iter_mut().enumerate() {
        let (elapsed, next) = agent.start(sim_start);
        let since = wall_start.saturating_sub((elapsed as f64 / config.speed) as u64);
        batch.push(events.event(&ids[idx], agent.status, since));
        due.push(Reverse((next, idx)));
    }
    if !submit(&ingest, batch).await {
        return;
    }
    tracing::info!(agents = agents.len(), speed = config.speed, start = %config.start_time, "simulator started");
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        let sim_now = sim_start + (started.elapsed().as_secs_f64() * config.speed * 1000.0) as u64;
        let sim_now = sim_end.map_or(sim_now, |end| sim_now.min(end));
        let wall_now = clock.now_ms();
        let mut batch = Vec::new();
        while let Some(&Reverse((at, idx))) = due.peek() {
            if at > sim_now || sim_end.is_some_and(|end| at >= end) {
                break;
            }
            due.pop();
            let agent = &mut agents[idx];
            let before = agent.status;
            let next = agent.step(at);
            if agent.status != before {
                batch.push(events.event(&ids[idx], agent.status, wall_now));
            }
            due.push(Reverse((next, idx)));
        }
        if !batch.is_empty() && !submit(&ingest, batch).await {
            break;
        }
        if sim_end.is_some_and(|end| sim_now >= end) {
            tracing::info!("simulator reached its configured duration and stopped");
            break;
        }
    }
}

/// Numbers the simulator's events.
struct EventIds {
    run: u64,
    next: u64,
}

impl EventIds {
    fn event(&mut self, agent: &str, status: Status, since_ms: u64) -> Event {
        self.next += 1;
        let (state, reason) = ingest_state(status);
        Event {
            event_id: format!("sim-{:x}-{}", self.run, self.next),
            agent: agent.to_owned(),
            state,
            reason,
            since_ms,
            name: None,
            team: None,
            site: None,
        }
    }
}

/// Sends simulated events down the ingest path without waiting for their commit (the next
/// batch follows on the simulator's clock, not the disk's); `false` once the server is shutting
/// down. A batch the database refuses is logged: its changes are lost to the floor, like a
/// telephony system's events that were never acknowledged.
async fn submit(ingest: &Ingest, events: Vec<Event>) -> bool {
    let batch = Batch {
        source: Source::Simulator,
        events,
        heartbeats: Vec::new(),
    };
    match ingest.enqueue(batch).await {
        Ok(stored) => {
            tokio::spawn(async move {
                if let Err(err @ IngestError::Store(_)) = stored.await {
                    tracing::warn!(%err, "simulated events were not stored");
                }
            });
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_roster_and_another_seed_does_not() {
        let config = SimulatorConfig::default();
        let a = roster(&config).roster;
        let b = roster(&config).roster;
        assert_eq!(a.agents.len(), 2_000);
        assert_eq!(
            a.agents
                .iter()
                .map(|agent| (&agent.name, &agent.team, &agent.site))
                .collect::<Vec<_>>(),
            b.agents
                .iter()
                .map(|agent| (&agent.name, &agent.team, &agent.site))
                .collect::<Vec<_>>()
        );
        let other = roster(&SimulatorConfig { seed: 2, ..config }).roster;
        assert_ne!(
            a.agents.iter().map(|agent| &agent.name).collect::<Vec<_>>(),
            other
                .agents
                .iter()
                .map(|agent| &agent.name)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn teams_are_uneven_and_sites_are_a_handful() {
        let seed = roster(&SimulatorConfig::default()).roster;
        assert!((2..=6).contains(&seed.sites.len()));
        let mut sizes = std::collections::HashMap::new();
        for agent in &seed.agents {
            *sizes.entry(&agent.team).or_insert(0) += 1;
        }
        let min = sizes.values().min().copied().unwrap_or(0);
        let max = sizes.values().max().copied().unwrap_or(0);
        assert!(max - min >= 20, "team sizes {min}..{max}");
    }

    /// Runs one agent through a whole simulated day and checks it does what a day holds.
    #[test]
    fn an_agent_day_has_calls_breaks_lunch_and_ends_logged_out() {
        let mut agent = Agent::new(7, 3);
        let mut now = 0;
        let mut seen = std::collections::HashSet::new();
        let mut transitions = 0;
        while now < DAY_MS {
            let before = agent.status;
            now = agent.step(now);
            if agent.status != before {
                transitions += 1;
            }
            seen.insert(agent.status);
        }
        for status in [
            Status::Available,
            Status::Ringing,
            Status::OnCall,
            Status::WrapUp,
            Status::NotReady(BREAK),
            Status::NotReady(LUNCH),
            Status::Offline,
        ] {
            assert!(seen.contains(&status), "{status:?} never happened");
        }
        assert!(transitions > 200, "only {transitions} transitions in a day");
        assert_eq!(agent.status, Status::Offline);
    }
}
