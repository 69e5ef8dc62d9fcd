//! A made-up floor of any size, the same for the same seed: for the frame-time benchmark and the
//! UI tests, which must not depend on a server's timing.

use crate::net::{Session, SignIn};

use std::sync::{Arc, Mutex};

use monti_client::follow::Link;
use monti_protocol::floor::Floor;
use monti_protocol::model::{
    AgentId, AgentInfo, AgentStatus, ReasonCode, ReasonId, Site, SiteId, Team, TeamId,
};
use monti_protocol::rest::{SiteJson, TeamJson};

const SITES: [&str; 4] = ["Berlin", "Lisbon", "Dublin", "Kraków"];
const TEAMS: [&str; 6] = [
    "Billing",
    "Sales",
    "Tech Support",
    "Retentions",
    "Claims",
    "Onboarding",
];
const FIRST: [&str; 16] = [
    "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Katrin",
    "Lukas", "Mia", "Noah", "Olga", "Paul",
];
const LAST: [&str; 16] = [
    "Müller", "Schmidt", "Weber", "Meyer", "Wagner", "Becker", "Nowak", "Silva", "Santos",
    "Murphy", "Kelly", "Byrne", "Yilmaz", "Kaya", "Lange", "Krüger",
];
const REASONS: [(&str, &str); 4] = [
    ("break", "Break"),
    ("lunch", "Lunch"),
    ("training", "Training"),
    ("meeting", "Meeting"),
];

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A state drawn with a call center's usual mix, and how long it has lasted at most (ms).
pub fn status(rng: &mut Rng) -> (AgentStatus, u64) {
    let minute = 60_000;
    match rng.below(100) {
        0..=24 => (AgentStatus::Available, 5 * minute),
        25..=29 => (AgentStatus::Ringing, 30_000),
        30..=64 => (AgentStatus::OnCall, 15 * minute),
        65..=69 => (AgentStatus::OnHold, 3 * minute),
        70..=79 => (AgentStatus::WrapUp, 3 * minute),
        80..=93 => (
            AgentStatus::NotReady(Some(ReasonId(rng.below(REASONS.len() as u64) as u16))),
            25 * minute,
        ),
        _ => (AgentStatus::Offline, 60 * minute),
    }
}

/// A floor of `agents` agents in six teams at four sites, ready, as of `now_ms`.
pub fn floor(agents: u32, seed: u64, now_ms: u64) -> Floor {
    floor_with_teams(agents, TEAMS.len(), seed, now_ms)
}

/// A floor of `agents` agents in `teams` teams (numbered beyond six, like "Sales 3") at four
/// sites, ready, as of `now_ms`.
pub fn floor_with_teams(agents: u32, teams: usize, seed: u64, now_ms: u64) -> Floor {
    let teams = teams.clamp(1, usize::from(u16::MAX));
    let mut rng = Rng::new(seed);
    let mut floor = Floor::new();
    for (id, name) in SITES.iter().enumerate() {
        floor.upsert_site(Site {
            id: SiteId(id as u16),
            name: (*name).to_owned(),
        });
    }
    for id in 0..teams {
        let base = TEAMS[id % TEAMS.len()];
        let name = if teams <= TEAMS.len() {
            base.to_owned()
        } else {
            format!("{base} {}", id / TEAMS.len() + 1)
        };
        floor.upsert_team(Team {
            id: TeamId(id as u16),
            name,
        });
    }
    for (id, (code, label)) in REASONS.iter().enumerate() {
        floor.upsert_reason(ReasonCode {
            id: ReasonId(id as u16),
            code: (*code).to_owned(),
            label: (*label).to_owned(),
        });
    }
    for id in 0..agents {
        let first = FIRST[rng.below(FIRST.len() as u64) as usize];
        let last = LAST[rng.below(LAST.len() as u64) as usize];
        let info = AgentInfo {
            id: AgentId(id),
            name: format!("{first} {last}"),
            team: TeamId(rng.below(teams as u64) as u16),
            site: SiteId(rng.below(SITES.len() as u64) as u16),
        };
        // A fresh floor and ids below the protocol's maximum: neither call can fail.
        let _ = floor.upsert_agent(info);
        let (status, longest) = status(&mut rng);
        let since = now_ms.saturating_sub(rng.below(longest));
        let _ = floor.set_status(AgentId(id), status, since);
    }
    floor.advance(1, now_ms);
    floor
}

/// A moment the tests and screenshots of queues are drawn at: a weekday, 10:30 UTC.
pub const NOW_MS: u64 = 1_796_034_600_000;

/// [`floor`] of 120 agents with three queues as a busy morning leaves them: Billing Voice
/// (teams Billing and Claims) with 7 waiting, the oldest for 95 s; Sales Voice at 82 % against
/// its goal of 80 %; Chat Support (Tech Support) with nothing waiting but 60 % today.
pub fn floor_with_queues(now_ms: u64) -> Floor {
    use monti_protocol::queue::{Channel, QueueCounts, QueueId, QueueInfo, QueueNow, QueueRules};
    let mut floor = floor(120, 7, now_ms);
    floor.set_queue_rules(QueueRules {
        recent_minutes: 15,
        short_abandon_secs: 5,
        ..QueueRules::default()
    });
    let counts = |offered: u64, answered: u64, in_target: u64, abandoned: u64| QueueCounts {
        offered,
        answered,
        answered_in_target: in_target,
        abandoned,
        abandoned_short: abandoned / 4,
        answered_wait_ms: answered * 18_000,
        longest_wait_ms: 260_000,
        handled: answered,
        handle_ms: answered * 285_000,
    };
    let queues = [
        (
            "Billing Voice",
            Channel::Voice,
            vec![0, 4],
            7,
            Some(95_000),
            counts(412, 380, 301, 32),
            counts(41, 35, 22, 6),
        ),
        (
            "Sales Voice",
            Channel::Voice,
            vec![1],
            1,
            Some(6_000),
            counts(233, 229, 189, 4),
            counts(19, 19, 17, 0),
        ),
        (
            "Chat Support",
            Channel::Chat,
            vec![2],
            0,
            None,
            counts(96, 84, 53, 12),
            counts(8, 7, 4, 1),
        ),
    ];
    for (id, (name, channel, teams, waiting, waited_ms, today, recent)) in
        queues.into_iter().enumerate()
    {
        let id = QueueId(id as u16);
        floor.upsert_queue(QueueInfo {
            id,
            name: name.to_owned(),
            channel,
            target_secs: if channel == Channel::Chat { 60 } else { 20 },
            goal_percent: 80,
            teams: teams.into_iter().map(TeamId).collect(),
        });
        let now = QueueNow {
            waiting,
            oldest_waiting_since_ms: waited_ms.map(|ms: u64| now_ms - ms),
            today,
            recent,
        };
        let _ = floor.set_queue_now(id, now);
    }
    floor
}

/// Changes `changes` random agents' states as one tick at `now_ms`, as the server would.
pub fn tick(floor: &mut Floor, rng: &mut Rng, changes: u32, now_ms: u64) {
    let agents = floor.n_agents() as u64;
    if agents == 0 {
        return;
    }
    for _ in 0..changes {
        let (status, _) = status(rng);
        let _ = floor.set_status(AgentId(rng.below(agents) as u32), status, now_ms);
    }
    floor.advance(floor.seq() + 1, now_ms);
}

/// The session the network thread would show, live at `now_ms`, with `floor` just received from a
/// server that needs no sign-in.
pub fn live_session(floor: Floor, now_ms: u64) -> Session {
    let mut session = Session::new("http://monti.test:8080");
    session.sign_in = SignIn::NotNeeded;
    session.link = Link::Live;
    session.last_update_ms = now_ms;
    session.teams = floor
        .teams()
        .map(|team| TeamJson {
            id: team.id.0,
            name: team.name.clone(),
            n_agents: 0,
        })
        .collect();
    session.sites = floor
        .sites()
        .map(|site| SiteJson {
            id: site.id.0,
            name: site.name.clone(),
            n_agents: 0,
        })
        .collect();
    session.floor = Arc::new(Mutex::new(floor));
    session
}
