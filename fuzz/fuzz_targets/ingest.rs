//! Arbitrary bytes as an event batch, taken the way the server takes one: whatever passes the
//! API's checks goes onto a floor under the server's name rule, is cut into a delta and a
//! snapshot, encoded, and decoded and folded by a client. Whatever the API accepts, a client
//! reads: nothing may be refused by the decoder, fail to fold, or differ after the fold.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use monti_protocol::codec::{decode_server, encode_server};
use monti_protocol::floor::Floor;
use monti_protocol::ingest::{EventBatchJson, EventWindow};
use monti_protocol::message::{ServerMsg, Subscription};
use monti_protocol::model::{
    AgentId, AgentInfo, AgentStatus, ReasonCode, ReasonId, Site, SiteId, Team, TeamId,
};
use monti_protocol::names::shown_name;
use monti_protocol::scope::Scope;
use monti_protocol::tick::{Pending, RosterUpdate};

const NOW: u64 = 1_800_000_000_000;

/// Interns names as dense ids, as the server's catalog does.
#[derive(Default)]
struct Ids(HashMap<String, u32>);

impl Ids {
    fn id(&mut self, name: &str) -> (u32, bool) {
        let next = self.0.len() as u32;
        let id = *self.0.entry(name.to_owned()).or_insert(next);
        (id, id == next)
    }
}

/// The client's view of a message: encoded by the server, decoded as a client does.
fn wire(msg: &ServerMsg) -> ServerMsg {
    let frame = encode_server(msg).expect("a server message encodes");
    decode_server(&frame).expect("whatever the server sends, a client decodes")
}

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = serde_json::from_slice::<EventBatchJson>(data) else {
        return;
    };
    let mut server = Floor::new();
    let mut client = Floor::awaiting_snapshot();
    for chunk in server.snapshot(&Subscription::default(), &Scope::Everything, 64) {
        client.apply(&wire(&ServerMsg::Snapshot(chunk))).expect("the empty floor folds");
    }
    let (mut teams, mut sites, mut reasons, mut agents) =
        (Ids::default(), Ids::default(), Ids::default(), Ids::default());
    let mut pending = Pending::default();
    for event in batch.events.iter().take(2_000) {
        let Ok(state) = event.check(NOW, &EventWindow::default()) else {
            continue;
        };
        let team_name = event.team.as_deref().unwrap_or("Unassigned");
        let (team, new) = teams.id(team_name);
        if new {
            let name = shown_name(team_name);
            pending.roster(RosterUpdate::Team(Team { id: TeamId(team as u16), name }));
        }
        let site_name = event.site.as_deref().unwrap_or("Unassigned");
        let (site, new) = sites.id(site_name);
        if new {
            let name = shown_name(site_name);
            pending.roster(RosterUpdate::Site(Site { id: SiteId(site as u16), name }));
        }
        let reason = event.reason.as_deref().map(|code| {
            let (id, new) = reasons.id(code);
            if new {
                pending.roster(RosterUpdate::Reason(ReasonCode {
                    id: ReasonId(id as u16),
                    code: shown_name(code),
                    label: shown_name(code),
                }));
            }
            ReasonId(id as u16)
        });
        let (agent, _) = agents.id(&event.agent);
        pending.roster(RosterUpdate::Agent(AgentInfo {
            id: AgentId(agent),
            name: shown_name(event.name.as_deref().unwrap_or(&event.agent)),
            team: TeamId(team as u16),
            site: SiteId(site as u16),
        }));
        pending.set_status(AgentId(agent), AgentStatus::of(state, reason), event.since_ms);
    }
    // The live path: one tick's delta, as every full-floor viewer gets it.
    let tick = pending.commit(&mut server, NOW);
    let delta = tick.delta_for(&Subscription::default(), &Scope::Everything);
    client.apply(&wire(&ServerMsg::Delta(delta))).expect("the delta folds");
    // A new viewer: the snapshot.
    let mut fresh = Floor::awaiting_snapshot();
    for chunk in server.snapshot(&Subscription::default(), &Scope::Everything, 64) {
        fresh.apply(&wire(&ServerMsg::Snapshot(chunk))).expect("the snapshot folds");
    }
    assert!(client == fresh, "snapshot and deltas tell the same floor");
});
