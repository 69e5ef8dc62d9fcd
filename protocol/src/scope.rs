//! What a viewer may see, whatever it subscribes to: the server's access decision, applied where
//! snapshots and deltas are cut, so that nothing outside it ever reaches the viewer.
//!
//! Not a wire type: the server derives a [`Scope`] from the viewer's identity and cuts with it;
//! clients only ever see its result.

use crate::message::Subscription;
use crate::model::{SiteId, TeamId};

/// Everything, or the union of [`Grant`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The whole floor.
    #[default]
    Everything,
    /// Only agents covered by at least one grant. No grants: nothing.
    Only(Vec<Grant>),
}

/// Agents of these teams at these sites; an empty list means any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Teams; empty for every team.
    pub teams: Vec<TeamId>,
    /// Sites; empty for every site.
    pub sites: Vec<SiteId>,
}

impl Grant {
    fn covers(&self, team: TeamId, site: SiteId) -> bool {
        (self.teams.is_empty() || self.teams.contains(&team))
            && (self.sites.is_empty() || self.sites.contains(&site))
    }
}

impl Scope {
    /// Whether an agent of `team` at `site` may be seen.
    pub fn covers(&self, team: TeamId, site: SiteId) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Only(grants) => grants.iter().any(|grant| grant.covers(team, site)),
        }
    }

    /// Whether the team may be named: a grant names it, or a grant for every team covers a site
    /// where the team has agents (`placed_at`). A site-scoped viewer thus learns the names of the
    /// teams working at its sites and of no other; a team-scoped viewer keeps its own teams'
    /// names even while they are empty.
    pub fn names_team(&self, team: TeamId, placed_at: impl Fn(SiteId) -> bool) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Only(grants) => grants.iter().any(|grant| {
                grant.teams.contains(&team)
                    || (grant.teams.is_empty()
                        && (grant.sites.is_empty() || grant.sites.iter().any(|&s| placed_at(s))))
            }),
        }
    }

    /// The serving teams of a queue that may be named (`placed_at(team, site)`: whether the
    /// team has agents at the site); `None` when the queue is out of view. A viewer who sees
    /// everything sees every queue, even one no team serves; any other viewer sees the queues
    /// served by a team it may name, and learns only those teams.
    pub fn queue_teams(
        &self,
        teams: &[TeamId],
        placed_at: impl Fn(TeamId, SiteId) -> bool,
    ) -> Option<Vec<TeamId>> {
        let named: Vec<TeamId> = (teams.iter().copied())
            .filter(|&team| self.names_team(team, |site| placed_at(team, site)))
            .collect();
        (*self == Scope::Everything || !named.is_empty()).then_some(named)
    }

    /// Whether the site may be named; see [`Scope::names_team`] (`has` tells whether a team
    /// has agents at the site).
    pub fn names_site(&self, site: SiteId, has: impl Fn(TeamId) -> bool) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Only(grants) => grants.iter().any(|grant| {
                grant.sites.contains(&site)
                    || (grant.sites.is_empty()
                        && (grant.teams.is_empty() || grant.teams.iter().any(|&t| has(t))))
            }),
        }
    }
}

/// A subscription as cut for one viewer: its own filter and the viewer's scope together.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// What the viewer asked for.
    pub sub: &'a Subscription,
    /// What the viewer may see.
    pub scope: &'a Scope,
}

impl<'a> View<'a> {
    /// A view of `sub` limited to `scope`.
    pub fn new(sub: &'a Subscription, scope: &'a Scope) -> View<'a> {
        View { sub, scope }
    }

    /// Whether an agent of `team` at `site` is in the view.
    pub fn covers(&self, team: TeamId, site: SiteId) -> bool {
        self.sub.covers(team, site) && self.scope.covers(team, site)
    }

    /// Whether the view names the team, given where it has agents; see [`Scope::names_team`].
    pub fn names_team(&self, team: TeamId, placed_at: impl Fn(SiteId) -> bool) -> bool {
        (self.sub.teams.is_empty() || self.sub.teams.contains(&team))
            && self.scope.names_team(team, placed_at)
    }

    /// Whether the view names the site, given which teams it has; see [`Scope::names_site`].
    pub fn names_site(&self, site: SiteId, has: impl Fn(TeamId) -> bool) -> bool {
        (self.sub.sites.is_empty() || self.sub.sites.contains(&site))
            && self.scope.names_site(site, has)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_add_up_and_an_empty_scope_sees_nothing() {
        let berlin_or_team_3 = Scope::Only(vec![
            Grant {
                teams: vec![],
                sites: vec![SiteId(0)],
            },
            Grant {
                teams: vec![TeamId(3)],
                sites: vec![],
            },
        ]);
        assert!(berlin_or_team_3.covers(TeamId(1), SiteId(0)));
        assert!(berlin_or_team_3.covers(TeamId(3), SiteId(2)));
        assert!(!berlin_or_team_3.covers(TeamId(1), SiteId(2)));
        assert!(!Scope::Only(vec![]).covers(TeamId(0), SiteId(0)));
        assert!(Scope::Everything.covers(TeamId(9), SiteId(9)));
    }

    #[test]
    fn a_scope_names_what_it_grants_and_what_works_inside_it() {
        let berlin = Scope::Only(vec![Grant {
            teams: vec![],
            sites: vec![SiteId(0)],
        }]);
        // Team 1 has agents in Berlin (site 0), team 2 only at site 2.
        let team_1_placed = |site: SiteId| site == SiteId(0);
        let team_2_placed = |site: SiteId| site == SiteId(2);
        assert!(berlin.names_team(TeamId(1), team_1_placed));
        assert!(!berlin.names_team(TeamId(2), team_2_placed));
        assert!(!berlin.names_team(TeamId(3), |_| false), "an empty team");
        assert!(
            berlin.names_site(SiteId(0), |_| false),
            "its own site, even empty"
        );
        assert!(!berlin.names_site(SiteId(2), |_| true));

        let team_1 = Scope::Only(vec![Grant {
            teams: vec![TeamId(1)],
            sites: vec![],
        }]);
        assert!(
            team_1.names_team(TeamId(1), |_| false),
            "its own team, even empty"
        );
        assert!(!team_1.names_team(TeamId(2), |_| true));
        assert!(team_1.names_site(SiteId(0), |team| team == TeamId(1)));
        assert!(!team_1.names_site(SiteId(2), |team| team == TeamId(2)));

        assert!(Scope::Everything.names_team(TeamId(9), |_| false));
        assert!(!Scope::Only(vec![]).names_site(SiteId(0), |_| true));
    }
}
