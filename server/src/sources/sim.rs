//! The simulated call center: a deterministic roster of teams at a handful of sites, the queues
//! they serve, and a day of contacts that puts every agent in the states a real floor shows.
//!
//! Each agent has a shift (login between 07:00 and 12:00, eight and a half hours), two short
//! breaks and a lunch; between them, the [`model`] routes contacts to it: they arrive per queue at
//! a rate that follows how many agents are scheduled (a time-of-day curve), wait, ring at the
//! longest-idle available agent, are talked (sometimes with a hold) and wrapped up, or are
//! abandoned. Meetings, training, coaching and the like come after a few contacts. The same seed
//! gives the same floor and the same day. Changes go through the ingest writer
//! ([`crate::sources::ingest::Ingest`]), the same path a telephony integration uses.
//!
//! The behaviour is the pure [`model::Model`], checked against queueing theory ([`erlang`]); only
//! [`run`] touches time and the floor. The contacts are stored through the writer as contact
//! events (`/api/v1/contacts` lists them); they do not reach the live floor yet, only the agents'
//! states they cause do.

pub mod erlang;
pub mod model;

use std::time::{Duration, Instant};

use monti_protocol::ingest::{
    AgentEntryJson, ContactEventKind, GroupEntryJson, QueueEntryJson, ReasonEntryJson,
    RosterSyncJson,
};
use monti_protocol::model::StateKind;
use tokio_util::sync::CancellationToken;

use self::model::{
    AgentSpec, ContactNote, ContactStep, DAY_MS, Day, Handling, INTERVAL_MS, MINUTE_MS, Model,
    QueueSpec, Setup, Shift, Status,
};
use crate::config::SimulatorConfig;
use crate::core::clock::Clock;
use crate::core::contact::{ContactBatch, ContactEvent};
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

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Reason indices into [`REASONS`].
const BREAK: usize = 0;
const LUNCH: usize = 1;

/// How busy the floor is meant to be: the arrival rate is this share of what the agents
/// scheduled (in shift and not on a planned pause) can handle.
const OCCUPANCY: f64 = 0.80;

/// A contact channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Phone calls.
    Voice,
    /// Web chat.
    Chat,
}

/// A simulated queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePlan {
    /// Its name, for example "Billing Voice 2".
    pub name: String,
    /// Its channel.
    pub channel: Channel,
}

/// The simulated floor: sites, teams (name, home site), agents (name, team, site), queues and
/// which queues each team serves.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Site names.
    pub sites: Vec<String>,
    /// Team names.
    pub teams: Vec<String>,
    /// Agents: name, team index, site index.
    pub agents: Vec<(String, usize, usize)>,
    /// The queues.
    pub queues: Vec<QueuePlan>,
    /// The queues each team serves, by team index.
    pub serves: Vec<Vec<u32>>,
}

/// The simulated floor of `config`: teams of 8 to 60 agents, each with a home site where most
/// of its agents sit; queues per department (mostly voice, every third one chat), each team
/// serving one of its department's queues and some teams a second one.
pub fn layout(config: &SimulatorConfig) -> Layout {
    let mut rng = Rng::new(config.seed, u64::MAX);
    let n_agents = config.agents as usize;
    let n_sites = (n_agents / 400).clamp(2, SITES.len());
    let sites: Vec<String> = SITES[..n_sites]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
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
    for (team, (_, size, home)) in teams.iter().enumerate() {
        for _ in 0..*size {
            let site = if rng.chance(0.85) {
                *home
            } else {
                rng.range(0, n_sites as u64) as usize
            };
            let first = FIRST_NAMES[rng.range(0, FIRST_NAMES.len() as u64) as usize];
            let last = LAST_NAMES[rng.range(0, LAST_NAMES.len() as u64) as usize];
            agents.push((format!("{first} {last}"), team, site));
        }
    }
    let (queues, serves) = queues(config, teams.len(), &mut rng);
    Layout {
        sites,
        teams: teams.into_iter().map(|(name, ..)| name).collect(),
        agents,
        queues,
        serves,
    }
}

/// The queues (per department, in turn) and the queues each team serves.
fn queues(
    config: &SimulatorConfig,
    n_teams: usize,
    rng: &mut Rng,
) -> (Vec<QueuePlan>, Vec<Vec<u32>>) {
    let wanted = match config.queues {
        0 => (config.agents as usize / 60).clamp(1, 1_000),
        n => n as usize,
    };
    let n_queues = wanted.min(n_teams).max(1);
    let mut queues: Vec<QueuePlan> = Vec::with_capacity(n_queues);
    let mut by_department: Vec<Vec<u32>> = vec![Vec::new(); DEPARTMENTS.len()];
    for idx in 0..n_queues {
        let department = idx % DEPARTMENTS.len();
        let within = by_department[department].len();
        let channel = if within % 3 == 2 {
            Channel::Chat
        } else {
            Channel::Voice
        };
        let label = match channel {
            Channel::Voice => "Voice",
            Channel::Chat => "Chat",
        };
        let same = (by_department[department].iter())
            .filter(|&&queue| queues[queue as usize].channel == channel)
            .count();
        let name = match same {
            0 => format!("{} {label}", DEPARTMENTS[department]),
            n => format!("{} {label} {}", DEPARTMENTS[department], n + 1),
        };
        by_department[department].push(idx as u32);
        queues.push(QueuePlan { name, channel });
    }
    let all: Vec<u32> = (0..n_queues as u32).collect();
    let serves = (0..n_teams)
        .map(|team| {
            let own = &by_department[team % DEPARTMENTS.len()];
            let candidates = if own.is_empty() { &all } else { own };
            let first = (team / DEPARTMENTS.len()) % candidates.len();
            let mut served = vec![candidates[first]];
            if candidates.len() > 1 && rng.chance(0.3) {
                served.push(candidates[(first + 1) % candidates.len()]);
            }
            served
        })
        .collect();
    (queues, serves)
}

/// The simulated roster for `config`. Stored through the writer like any roster sync; it
/// deactivates the simulator's agents it does not list (a smaller floor than last time), no
/// one else's.
pub fn roster(config: &SimulatorConfig) -> RosterSync {
    let layout = layout(config);
    let group = |name: &String| GroupEntryJson {
        name: name.clone(),
        rename_to: None,
        active: true,
    };
    let agents = (layout.agents.iter().enumerate())
        .map(|(idx, (name, team, site))| AgentEntryJson {
            external_id: external_id(idx),
            name: name.clone(),
            team: layout.teams[*team].clone(),
            site: layout.sites[*site].clone(),
            active: true,
        })
        .collect();
    RosterSync {
        roster: RosterSyncJson {
            sites: layout.sites.iter().map(group).collect(),
            teams: layout.teams.iter().map(group).collect(),
            reasons: REASONS
                .iter()
                .map(|(code, label)| ReasonEntryJson {
                    code: (*code).to_owned(),
                    label: (*label).to_owned(),
                })
                .collect(),
            agents,
            deactivate_missing_agents: false,
            queues: (layout.queues.iter().enumerate())
                .map(|(idx, queue)| QueueEntryJson {
                    name: queue.name.clone(),
                    channel: match queue.channel {
                        Channel::Voice => "voice",
                        Channel::Chat => "chat",
                    }
                    .to_owned(),
                    target_secs: 20,
                    goal_percent: 80,
                    teams: (layout.serves.iter().enumerate())
                        .filter(|(_, served)| served.contains(&(idx as u32)))
                        .map(|(team, _)| layout.teams[team].clone())
                        .collect(),
                    active: true,
                })
                .collect(),
        },
        unlisted: Unlisted::DeactivateWithPrefix(EXTERNAL_ID_PREFIX.to_owned()),
    }
}

/// The external id of the simulated agent with index `idx`.
pub fn external_id(idx: usize) -> String {
    format!("{EXTERNAL_ID_PREFIX}{:06}", idx + 1)
}

const SHIFT_MS: u64 = 8 * 3600 * 1000 + 30 * MINUTE_MS;

/// The shift of the agent with index `idx` of the floor of `seed`: it starts between 07:00
/// and 12:00 on the quarter hour, with a break, a lunch and a break.
pub fn shift(seed: u64, idx: u64) -> Shift {
    let mut rng = Rng::new(seed, idx);
    let start = 7 * 3600 * 1000 + rng.range(0, 21) * 15 * MINUTE_MS;
    Shift {
        start,
        length: SHIFT_MS,
        pauses: vec![
            (
                start + 2 * 3600 * 1000 + rng.range(0, 30) * MINUTE_MS,
                15 * MINUTE_MS,
                BREAK,
            ),
            (
                start + 4 * 3600 * 1000 + rng.range(0, 60) * MINUTE_MS,
                30 * MINUTE_MS,
                LUNCH,
            ),
            (
                start + 6 * 3600 * 1000 + rng.range(15, 45) * MINUTE_MS,
                15 * MINUTE_MS,
                BREAK,
            ),
        ],
    }
}

/// The model of the simulated floor: its queues, each agent's shift and queues, voice
/// handling, and arrivals per queue and quarter hour at [`OCCUPANCY`] of what the agents
/// scheduled then can handle.
pub fn setup(config: &SimulatorConfig, layout: &Layout) -> Setup {
    let handling = Handling::voice();
    let handle_ms = handling.mean_handle_ms();
    let intervals = (DAY_MS / INTERVAL_MS) as usize;
    let mut ready = vec![vec![0.0_f64; intervals]; layout.queues.len()];
    let agents: Vec<AgentSpec> = (layout.agents.iter().enumerate())
        .map(|(idx, (_, team, _))| {
            let shift = shift(config.seed, idx as u64);
            let queues = layout.serves[*team].clone();
            let share = 1.0 / queues.len() as f64;
            for (interval, slot) in (0..intervals).zip(0..) {
                let begin = slot * INTERVAL_MS;
                let present = scheduled_ms(&shift, begin, begin + INTERVAL_MS) as f64;
                for &queue in &queues {
                    ready[queue as usize][interval] += share * present / INTERVAL_MS as f64;
                }
            }
            AgentSpec {
                queues,
                day: Day::Shift(shift),
            }
        })
        .collect();
    let queues = ready
        .into_iter()
        .map(|ready| QueueSpec {
            arrivals_per_hour: ready
                .into_iter()
                .map(|agents| OCCUPANCY * agents * 3_600_000.0 / handle_ms)
                .collect(),
            target_secs: 20,
            short_abandon_secs: 5,
        })
        .collect();
    Setup {
        queues,
        agents,
        handling,
    }
}

/// How much of `[from, to)` (ms after midnight) the shift is in, outside its planned pauses.
fn scheduled_ms(shift: &Shift, from: u64, to: u64) -> u64 {
    let overlap = |start: u64, length: u64| to.min(start + length).saturating_sub(from.max(start));
    let paused: u64 = (shift.pauses.iter())
        .map(|&(start, length, _)| overlap(start, length))
        .sum();
    overlap(shift.start, shift.length).saturating_sub(paused)
}

/// How long the floor runs before the simulator shows it, so that it opens mid-morning with
/// contacts waiting and agents on calls, not everyone available at once.
const WARM_UP_MS: u64 = 60 * MINUTE_MS;

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
    // Day 1, so that the warm-up never reaches before the simulation's first midnight.
    let sim_start = DAY_MS + start_of_day * 1000;
    let sim_end =
        (config.duration_minutes > 0).then(|| sim_start + config.duration_minutes * MINUTE_MS);
    let layout = layout(&config);
    let setup = setup(&config, &layout);
    let shifts: Vec<Shift> = (setup.agents.iter())
        .filter_map(|agent| match &agent.day {
            Day::Shift(shift) => Some(shift.clone()),
            Day::AlwaysOn => None,
        })
        .collect();
    let warm_from = sim_start - WARM_UP_MS;
    let mut model = Model::new(setup, config.seed, warm_from);
    // When each agent's state began, simulated ms: logged-out agents since their last shift
    // ended, the rest since the warm-up began unless it changed during it.
    let mut since: Vec<u64> = (model.statuses().zip(&shifts))
        .map(|(status, shift)| match status {
            Status::Offline => last_shift_end(shift, warm_from),
            _ => warm_from,
        })
        .collect();
    // A minute at a time: an hour of 100,000 agents' changes at once held 160 MiB (a heap
    // profile's largest allocation, docs/PERFORMANCE.md) only to keep each agent's last one.
    let mut warm = warm_from;
    while warm < sim_start {
        warm = (warm + MINUTE_MS).min(sim_start);
        for change in model.advance(warm) {
            since[change.agent as usize] = change.at;
        }
    }
    // Simulated time runs from here, in step with the wall clock: changes due while the opening
    // states are stored are sent right after, with the times they began.
    let wall_start = clock.now_ms();
    let started = Instant::now();
    let wall = |at: u64| -> u64 {
        let offset = (at.abs_diff(sim_start) as f64 / config.speed) as u64;
        if at >= sim_start {
            wall_start + offset
        } else {
            wall_start.saturating_sub(offset)
        }
    };
    // Event ids are unique per run: a restarted simulator starts a new day.
    let mut events = EventIds {
        run: wall_start,
        next: 0,
    };
    let batch: Vec<Event> = (model.statuses().enumerate())
        .take(ids.len())
        .map(|(idx, status)| events.event(&ids[idx], status, wall(since[idx])))
        .collect();
    if !submit(&ingest, batch).await {
        return;
    }
    // Contacts from here on: one that began in the warm-up has no queued event and makes no
    // leg (core::contact).
    model.record_contacts();
    tracing::info!(
        agents = ids.len(),
        queues = layout.queues.len(),
        speed = config.speed,
        start = %config.start_time,
        "simulator started"
    );
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        let sim_now = sim_start + (started.elapsed().as_secs_f64() * config.speed * 1000.0) as u64;
        let sim_now = sim_end.map_or(sim_now, |end| sim_now.min(end));
        let batch: Vec<Event> = (model.advance(sim_now).into_iter())
            .filter(|change| (change.agent as usize) < ids.len())
            .map(|change| events.event(&ids[change.agent as usize], change.status, wall(change.at)))
            .collect();
        if !batch.is_empty() && !submit(&ingest, batch).await {
            break;
        }
        let contacts: Vec<ContactEvent> = (model.take_contacts().into_iter())
            .map(|note| events.contact(note, wall(note.at), &layout, &ids))
            .collect();
        if !contacts.is_empty() && !submit_contacts(&ingest, contacts).await {
            break;
        }
        if sim_end.is_some_and(|end| sim_now >= end) {
            tracing::info!("simulator reached its configured duration and stopped");
            break;
        }
    }
}

/// When the shift last ended before `at` (simulated ms).
fn last_shift_end(shift: &Shift, at: u64) -> u64 {
    let end_of_day = (shift.start + shift.length) % DAY_MS;
    let day_start = at - at % DAY_MS;
    if day_start + end_of_day <= at {
        day_start + end_of_day
    } else {
        (day_start + end_of_day).saturating_sub(DAY_MS)
    }
}

/// Numbers the simulator's events.
struct EventIds {
    run: u64,
    next: u64,
}

impl EventIds {
    /// A contact step as a contact event: the contact's id is unique per run, the queue and
    /// agent are named as the roster names them.
    fn contact(
        &mut self,
        note: ContactNote,
        at_ms: u64,
        layout: &Layout,
        ids: &[String],
    ) -> ContactEvent {
        self.next += 1;
        let queue = &layout.queues[note.queue as usize];
        let (kind, agent) = match note.step {
            ContactStep::Queued => (ContactEventKind::Queued, None),
            ContactStep::Offered(agent) => (ContactEventKind::Offered, Some(agent)),
            ContactStep::Connected(agent) => (ContactEventKind::Connected, Some(agent)),
            ContactStep::Ended => (ContactEventKind::Ended, None),
        };
        let queued = kind == ContactEventKind::Queued;
        ContactEvent {
            event_id: format!("sim-{:x}-{}", self.run, self.next),
            contact: format!("sim-{:x}-c{}", self.run, note.contact),
            kind,
            at_ms,
            queue: queued.then(|| queue.name.clone()),
            channel: match queue.channel {
                Channel::Voice => "voice",
                Channel::Chat => "chat",
            },
            agent: agent.and_then(|agent| ids.get(agent as usize).cloned()),
        }
    }

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

/// Sends simulated contact events down the ingest path without waiting for their commit, like
/// [`submit`].
async fn submit_contacts(ingest: &Ingest, events: Vec<ContactEvent>) -> bool {
    let batch = ContactBatch {
        source: Source::Simulator,
        events,
    };
    match ingest.enqueue_contacts(batch).await {
        Ok(stored) => {
            tokio::spawn(async move {
                if let Err(err @ IngestError::Store(_)) = stored.await {
                    tracing::warn!(%err, "simulated contacts were not stored");
                }
            });
            true
        }
        Err(_) => false,
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

    #[test]
    fn a_few_dozen_queues_by_default_each_served_by_its_department() {
        let floor = layout(&SimulatorConfig::default());
        assert_eq!(floor.queues.len(), 33);
        let names: std::collections::HashSet<&str> = floor
            .queues
            .iter()
            .map(|queue| queue.name.as_str())
            .collect();
        assert_eq!(names.len(), floor.queues.len(), "queue names are unique");
        assert!(
            names.contains("Billing Voice") && names.contains("Billing Chat"),
            "{names:?}"
        );
        let mut served = vec![0; floor.queues.len()];
        for (team, queues) in floor.serves.iter().enumerate() {
            assert!(!queues.is_empty());
            for &queue in queues {
                served[queue as usize] += 1;
                let department = floor.teams[team].rsplit_once(' ').map(|(name, _)| name);
                assert!(
                    floor.queues[queue as usize]
                        .name
                        .starts_with(department.unwrap_or("?")),
                    "{} serves {}",
                    floor.teams[team],
                    floor.queues[queue as usize].name
                );
            }
        }
        assert!(served.iter().all(|&teams| teams > 0), "{served:?}");
        let large = layout(&SimulatorConfig {
            agents: 100_000,
            queues: 1_000,
            ..SimulatorConfig::default()
        });
        assert_eq!(large.queues.len(), 1_000);
    }

    #[test]
    fn arrivals_follow_the_agents_scheduled() {
        let config = SimulatorConfig::default();
        let floor = layout(&config);
        let setup = setup(&config, &floor);
        let per_hour = |hour: usize| -> f64 {
            (setup.queues.iter())
                .map(|queue| queue.arrivals_per_hour[hour * 4])
                .sum()
        };
        assert_eq!(per_hour(3), 0.0, "nobody works at 03:00, nobody calls");
        assert!(
            per_hour(11) > 10.0 * per_hour(7),
            "{} vs {}",
            per_hour(11),
            per_hour(7)
        );
        // 2,000 agents, most of them in at 11:00, each good for about 10 contacts an hour.
        assert!(
            (10_000.0..20_000.0).contains(&per_hour(11)),
            "{}",
            per_hour(11)
        );
    }

    /// A simulated morning on the default floor: the figures a floor manager would expect, and
    /// agents in every state.
    #[test]
    fn a_simulated_morning_looks_like_a_call_center() {
        let config = SimulatorConfig::default();
        let floor = layout(&config);
        let mut model = Model::new(setup(&config, &floor), config.seed, DAY_MS + 9 * 3_600_000);
        model.advance(DAY_MS + 10 * 3_600_000);
        model.reset_figures();
        let changes = model.advance(DAY_MS + 11 * 3_600_000);
        let total = model.total();
        assert!(total.offered > 10_000, "{total:?}");
        let service_level = total.service_level();
        assert!((0.6..0.98).contains(&service_level), "{total:?}");
        assert!(total.abandon_rate() < 0.1, "{total:?}");
        assert!((200.0..450.0).contains(&total.aht_secs()), "{total:?}");
        let mut counts = std::collections::HashMap::new();
        for status in model.statuses() {
            *counts.entry(std::mem::discriminant(&status)).or_insert(0) += 1;
        }
        for status in [
            Status::Available,
            Status::Ringing,
            Status::OnCall,
            Status::OnHold,
            Status::WrapUp,
            Status::NotReady(0),
            Status::Offline,
        ] {
            assert!(
                counts.contains_key(&std::mem::discriminant(&status)),
                "nobody is {status:?}: {counts:?}"
            );
        }
        // About 8 changes per agent an hour: ring, talk, wrap-up, available...
        assert!(changes.len() > 8_000, "{}", changes.len());
    }

    #[test]
    fn a_logged_out_agent_has_been_so_since_its_last_shift() {
        let shift = shift(1, 0);
        let end = shift.start + shift.length;
        let morning = DAY_MS + 6 * 3_600_000;
        assert_eq!(last_shift_end(&shift, morning), end);
        let evening = DAY_MS + end + 3_600_000;
        assert_eq!(last_shift_end(&shift, evening), DAY_MS + end);
    }
}
