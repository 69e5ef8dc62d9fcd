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

    /// Whether the team may be named at all (some grant admits it at some site).
    pub fn lists_team(&self, team: TeamId) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Only(grants) => {
                (grants.iter()).any(|grant| grant.teams.is_empty() || grant.teams.contains(&team))
            }
        }
    }

    /// Whether the site may be named at all.
    pub fn lists_site(&self, site: SiteId) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Only(grants) => {
                (grants.iter()).any(|grant| grant.sites.is_empty() || grant.sites.contains(&site))
            }
        }
    }

    /// Whether a subscription stays inside the scope: every team and site it names explicitly
    /// must be one the scope admits. (An empty filter means "all I may see" and always fits.)
    pub fn admits(&self, sub: &Subscription) -> bool {
        sub.teams.iter().all(|&team| self.lists_team(team))
            && sub.sites.iter().all(|&site| self.lists_site(site))
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

    /// Whether the view names the team.
    pub fn lists_team(&self, team: TeamId) -> bool {
        (self.sub.teams.is_empty() || self.sub.teams.contains(&team)) && self.scope.lists_team(team)
    }

    /// Whether the view names the site.
    pub fn lists_site(&self, site: SiteId) -> bool {
        (self.sub.sites.is_empty() || self.sub.sites.contains(&site)) && self.scope.lists_site(site)
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
    fn a_subscription_naming_a_team_outside_the_scope_is_not_admitted() {
        let team_1 = Scope::Only(vec![Grant {
            teams: vec![TeamId(1)],
            sites: vec![],
        }]);
        let all = Subscription::default();
        assert!(
            team_1.admits(&all),
            "an empty filter means all the viewer may see"
        );
        let other = Subscription {
            teams: vec![TeamId(2)],
            ..Subscription::default()
        };
        assert!(!team_1.admits(&other));
        let own = Subscription {
            teams: vec![TeamId(1)],
            sites: vec![SiteId(4)],
            ..Subscription::default()
        };
        assert!(team_1.admits(&own));
    }
}
