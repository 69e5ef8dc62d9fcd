//! The database adapter: master data (sites, teams, reason codes, agents) and state history.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL (production) through sqlx's
//! `Any` driver; only the migrations differ, because the two spell auto-increment keys
//! differently. SQL here uses `$n` placeholders, which both accept. Rows are converted into the
//! server's own types at this boundary; nothing here touches the live floor.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor};

use std::collections::HashMap;

use monti_protocol::ingest::{ContactEventKind, ContactLegJson, QueueEntryJson};
use monti_protocol::model::StateKind;

use crate::config::{DatabaseConfig, redact};
use crate::core::change::Change;
pub use crate::core::change::Group;
use crate::core::contact::{ContactStep, Leg};
pub use crate::core::plan::{HistoryRow, NewAgent, StoredState};
use crate::core::queues::{MINUTE_MS, QUARTER_MS, WAITING_AT_MOST_MS, quarter_of};
use monti_protocol::queue::QueueCounts;

/// Which database engine a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A file on this machine.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A contact event to store.
#[derive(Clone, Copy, Debug)]
pub struct ContactEventRow<'a> {
    /// The source's id for the event.
    pub event_id: &'a str,
    /// The source's id for the contact.
    pub contact: &'a str,
    /// What happened.
    pub kind: ContactEventKind,
    /// When.
    pub at_ms: i64,
    /// The queue (with `queued`).
    pub queue_id: Option<i64>,
    /// The agent's external id.
    pub agent: Option<&'a str>,
}

/// A queue as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredQueue {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// `voice`, `chat`, `email` or `task`.
    pub channel: String,
    /// Service level target: answered within this many seconds...
    pub target_secs: u64,
    /// ... this share of the time, percent.
    pub goal_percent: u8,
    /// The teams that serve it, by id.
    pub teams: Vec<i64>,
    /// Whether it is active.
    pub active: bool,
}

impl StoredQueue {
    /// The change that makes a floor know the queue as stored.
    pub fn change(&self) -> Change {
        Change::Queue {
            id: self.id,
            name: self.name.clone(),
            channel: self.channel.clone(),
            target_secs: self.target_secs,
            goal_percent: self.goal_percent,
            teams: self.teams.clone(),
            active: self.active,
        }
    }
}

/// The contacts of one queue's quarter hour, minute by minute: `(queue_id, quarter_ms,
/// [(minute, counts)])`.
pub type QuarterCounts = (i64, u64, Vec<(u8, QueueCounts)>);

/// A connection pool with the schema migrated.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

/// Master data and current states as stored: what a server builds its floor from.
#[derive(Clone, Debug, Default)]
pub struct StoredFloor {
    /// Active sites, `(site_id, name)`.
    pub sites: Vec<(i64, String)>,
    /// Active teams, `(team_id, name)`.
    pub teams: Vec<(i64, String)>,
    /// `(reason_code_id, code, label)`
    pub reasons: Vec<(i64, String, String)>,
    /// Active agents.
    pub agents: Vec<StoredAgent>,
    /// Current states of active agents.
    pub states: Vec<StoredState>,
    /// Deactivated agents, teams and sites, by id: what a floor being brought up to date drops.
    pub inactive: Inactive,
    /// Every queue, active or not.
    pub queues: Vec<StoredQueue>,
    /// The contacts waiting: `(contact, queue_id, queued_ms)`.
    pub waiting: Vec<(String, i64, u64)>,
    /// Today's quarter hours of every queue with contacts.
    pub quarters: Vec<QuarterCounts>,
}

/// Ids of deactivated agents, teams and sites.
#[derive(Clone, Debug, Default)]
pub struct Inactive {
    /// `agent_id`s
    pub agents: Vec<i64>,
    /// `team_id`s
    pub teams: Vec<i64>,
    /// `site_id`s
    pub sites: Vec<i64>,
}

/// An active agent as stored.
#[derive(Clone, Debug)]
pub struct StoredAgent {
    /// `agent_id`
    pub agent_id: i64,
    /// The telephony system's id.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// `team_id`
    pub team_id: i64,
    /// `site_id`
    pub site_id: i64,
}

impl StoredFloor {
    /// Everything as changes, in an order a floor can apply: groups, then agents, then states.
    pub fn changes(&self) -> Vec<Change> {
        let mut changes = Vec::with_capacity(
            self.sites.len() + self.teams.len() + self.reasons.len() + 2 * self.agents.len(),
        );
        for (id, name) in &self.sites {
            changes.push(Change::Site {
                id: *id,
                name: name.clone(),
            });
        }
        for (id, name) in &self.teams {
            changes.push(Change::Team {
                id: *id,
                name: name.clone(),
            });
        }
        for (id, code, label) in &self.reasons {
            changes.push(Change::Reason {
                id: *id,
                code: code.clone(),
                label: label.clone(),
            });
        }
        for agent in &self.agents {
            changes.push(Change::Agent {
                id: agent.agent_id,
                external_id: agent.external_id.clone(),
                name: agent.name.clone(),
                team: agent.team_id,
                site: agent.site_id,
            });
        }
        changes.extend(self.states.iter().map(StoredState::change));
        changes.extend(self.queues.iter().map(StoredQueue::change));
        changes.extend((self.quarters.iter()).map(|(queue, quarter_ms, minutes)| {
            Change::QueueQuarter {
                queue: *queue,
                quarter_ms: *quarter_ms,
                minutes: minutes.clone(),
            }
        }));
        changes
    }
}

/// A stored history row with the names a reader needs.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRead {
    /// The agent's external id.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// `team_id`
    pub team_id: i64,
    /// Team name.
    pub team: String,
    /// `site_id`
    pub site_id: i64,
    /// Site name.
    pub site: String,
    /// State name.
    pub state: String,
    /// Reason code.
    pub reason: Option<String>,
    /// When the state began.
    pub started_at: i64,
    /// When it was stored.
    pub created_at: i64,
    /// The source's event id.
    pub event_id: Option<String>,
    /// `agent_state_change_id`, the paging cursor.
    pub id: i64,
}

/// Which history to read.
#[derive(Clone, Debug)]
pub struct HistoryQuery {
    /// One agent, by `agent_id`.
    pub agent: Option<i64>,
    /// One team, by `team_id`.
    pub team: Option<i64>,
    /// States that began at or after this.
    pub from_ms: i64,
    /// States that began before this.
    pub to_ms: i64,
    /// Rows after this cursor (`agent_state_change_id`), for paging.
    pub after_id: i64,
    /// At most this many rows.
    pub limit: i64,
    /// Only agents the caller may see (`None`: every agent), so that paging never steps over
    /// rows the caller would not be shown.
    pub within: Option<Vec<DbGrant>>,
}

/// Which agents' states to count over time ([`Db::trend`]).
#[derive(Clone, Debug)]
pub struct TrendQuery {
    /// The first point, ms since the epoch.
    pub from_ms: u64,
    /// The time between points (more than 0).
    pub step_ms: u64,
    /// How many points (at least 1).
    pub points: u64,
    /// Only agents of these teams at these sites (empty lists: any).
    pub only: DbGrant,
    /// Only agents the caller may see (`None`: every agent).
    pub within: Option<Vec<DbGrant>>,
    /// Only agents with a change after `from_ms` (an extension of a series read before: the
    /// baseline at point 0 is then theirs alone and is not used).
    pub changed_only: bool,
}

/// How many agents entered (positive) or left (negative) a state and reason by one point of a
/// trend, summed.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TrendStep {
    /// The point: 0 is the baseline.
    pub k: i64,
    /// State name.
    pub state: String,
    /// Reason code.
    pub reason: Option<String>,
    /// The change in agents.
    pub delta: i64,
}

/// One grant of a caller's scope in database ids: agents of these teams at these sites (an
/// empty list means any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbGrant {
    /// `team_id`s.
    pub teams: Vec<i64>,
    /// `site_id`s.
    pub sites: Vec<i64>,
}

/// The SQL condition on the agent `a` for a scope: ids are the server's own database ids (never
/// request text), written inline so the statement needs no parameter per id.
fn scope_condition(within: Option<&[DbGrant]>) -> String {
    let Some(grants) = within else {
        return "1 = 1".to_owned();
    };
    let in_list = |column: &str, ids: &[i64]| {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!("{column} in ({})", ids.join(", "))
    };
    let grants: Vec<String> = grants
        .iter()
        .map(
            |grant| match (grant.teams.is_empty(), grant.sites.is_empty()) {
                (true, true) => "1 = 1".to_owned(),
                (false, true) => in_list("a.team_id", &grant.teams),
                (true, false) => in_list("a.site_id", &grant.sites),
                (false, false) => format!(
                    "{} and {}",
                    in_list("a.team_id", &grant.teams),
                    in_list("a.site_id", &grant.sites)
                ),
            },
        )
        .map(|condition| format!("({condition})"))
        .collect();
    if grants.is_empty() {
        "1 = 0".to_owned()
    } else {
        grants.join(" or ")
    }
}

/// Which audit events to read.
#[derive(Clone, Debug)]
pub struct AuditFilter {
    /// Only events before this moment, ms (paging back).
    pub before_ms: i64,
    /// Only events at or after this moment, ms.
    pub from_ms: i64,
    /// Only this kind (`sign_in`, `refused`, ...); empty for every kind.
    pub kind: String,
    /// Only subjects containing this, ignoring case; empty for everyone.
    pub subject: String,
    /// At most this many.
    pub limit: i64,
}

/// A `like` pattern matching text that contains `part` (lowercase), with `%`, `_` and the
/// escape character taken literally.
fn like_pattern(part: &str) -> String {
    let mut pattern = String::from("%");
    for c in part.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Feedback to store.
#[derive(Clone, Debug)]
pub struct NewFeedbackRow {
    /// When it came, ms.
    pub created_at: i64,
    /// Who sent it.
    pub subject: String,
    /// What they wrote.
    pub text: String,
    /// Their app and version.
    pub client: String,
    /// Their view and filters.
    pub context: String,
    /// A PNG of their window.
    pub screenshot: Option<Vec<u8>>,
}

/// Stored feedback, without its screenshot.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FeedbackRow {
    /// Its number.
    pub id: i64,
    /// When it came, ms.
    pub created_at: i64,
    /// Who sent it.
    pub subject: String,
    /// What they wrote.
    pub text: String,
    /// Their app and version.
    pub client: String,
    /// Their view and filters.
    pub context: String,
    /// 1 when a screenshot came with it, else 0 (one integer type on both engines).
    pub screenshots: i64,
}

/// A device as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DeviceRow {
    /// Who it signs in as.
    pub subject: String,
    /// The wallboard it shows, if it is one.
    pub wallboard: Option<String>,
    /// Its app and version.
    pub client: String,
    /// Where it connected from last.
    pub address: Option<String>,
    /// First seen, ms.
    pub first_seen: i64,
    /// Last seen, ms.
    pub last_seen: i64,
    /// When an administrator signed it out, ms.
    pub signed_out_at: Option<i64>,
}

pub use monti_protocol::access::AuditEvent;

impl Engine {
    /// Rows per multi-row statement, well under both engines' parameter limits.
    ///
    /// SQLite finds numbered parameters by a linear scan, both while parsing and in
    /// `sqlite3_bind_parameter_name` (which sqlx calls for each one), so a statement costs the
    /// square of its parameters: 20 rows of 6 columns store about four times faster per row
    /// than 500 (measured: 10,000 events in 0.37 s against 1.39 s). On PostgreSQL each statement
    /// is a round trip and nothing is quadratic, so it takes 500.
    ///
    /// Multi-row statements are built per batch, so they are not kept as prepared statements
    /// (`persistent(false)`): a cache of one statement per batch size would only hold memory.
    fn rows_per_statement(self) -> usize {
        match self {
            Engine::Sqlite => 20,
            Engine::Postgres => 500,
        }
    }

    /// The engine behind a transaction.
    fn of(tx: &Tx) -> Engine {
        if tx.backend_name() == "SQLite" {
            Engine::Sqlite
        } else {
            Engine::Postgres
        }
    }
}

impl Db {
    /// Connects, creating the SQLite file and its folder if needed, and migrates the schema.
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Db> {
        install_default_drivers();
        let (engine, url) = if let Some(rest) = config.url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = Path::new(file)
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create database folder {}", dir.display()))?;
            }
            let url = if path.contains("mode=") {
                format!("sqlite://{path}")
            } else if path.contains('?') {
                format!("sqlite://{path}&mode=rwc")
            } else {
                format!("sqlite://{path}?mode=rwc")
            };
            (Engine::Sqlite, url)
        } else {
            (Engine::Postgres, config.url.clone())
        };
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // An acknowledged event must survive a crash of the machine, not only
                        // of the process: sync the write-ahead log on every commit.
                        conn.execute("pragma synchronous = full").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("cannot connect to database {}", redact(&config.url)))?;
        if engine == Engine::Sqlite {
            // Write-ahead logging lets REST reads run while history is being written.
            pool.execute("pragma journal_mode = wal")
                .await
                .context("cannot enable sqlite write-ahead logging")?;
        }
        let migrator = match engine {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Engine::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .context("cannot migrate the database")?;
        Ok(Db { pool, engine })
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Reads active master data, the current states of active agents, the queues, the contacts
    /// waiting and today's counts (since `midnight_ms`, abandons within `short_ms` short).
    pub async fn load_floor(
        &self,
        now_ms: u64,
        midnight_ms: u64,
        short_ms: u64,
    ) -> anyhow::Result<StoredFloor> {
        let sites = sqlx::query_as("select site_id, name from site where active order by site_id")
            .fetch_all(&self.pool)
            .await
            .context("cannot read sites")?;
        let teams = sqlx::query_as("select team_id, name from team where active order by team_id")
            .fetch_all(&self.pool)
            .await
            .context("cannot read teams")?;
        let reasons = sqlx::query_as(
            "select reason_code_id, code, label from reason_code order by reason_code_id",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read reason codes")?;
        let agents: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
            "select agent_id, external_id, display_name, team_id, site_id from agent \
             where active order by agent_id",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read agents")?;
        let agents = agents
            .into_iter()
            .map(
                |(agent_id, external_id, name, team_id, site_id)| StoredAgent {
                    agent_id,
                    external_id,
                    name,
                    team_id,
                    site_id,
                },
            )
            .collect();
        // The Any driver cannot decode SQLite booleans: read the flag as a number.
        let states: Vec<(i64, String, Option<i64>, i64, i64, i64)> = sqlx::query_as(
            "select s.agent_id, s.state, s.reason_code_id, s.started_at, s.seen_at, \
             cast(case when s.watched then 1 else 0 end as bigint) \
             from agent_state s join agent a on a.agent_id = s.agent_id where a.active \
             order by s.agent_id",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read agent states")?;
        let states = states
            .into_iter()
            .filter_map(
                |(agent_id, state, reason_code_id, started_at, seen_at, watched)| {
                    Some(StoredState {
                        agent_id,
                        state: StateKind::from_name(&state)?,
                        reason_code_id,
                        started_at,
                        seen_at,
                        watched: watched != 0,
                    })
                },
            )
            .collect();
        let mut inactive = Inactive::default();
        for (table, ids) in [
            ("agent", &mut inactive.agents),
            ("team", &mut inactive.teams),
            ("site", &mut inactive.sites),
        ] {
            let rows: Vec<(i64,)> =
                sqlx::query_as(&format!("select {table}_id from {table} where not active"))
                    .fetch_all(&self.pool)
                    .await
                    .with_context(|| format!("cannot read inactive {table}s"))?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        let queues = self.all_queues().await?;
        let waiting = self
            .waiting_contacts(now_ms.saturating_sub(WAITING_AT_MOST_MS))
            .await?;
        let from = quarter_of(midnight_ms);
        let quarters = minutes_by_quarter(
            counts_rows(
                &self.pool,
                CountsQuery {
                    from_ms: from as i64,
                    to_ms: now_ms as i64 + QUARTER_MS as i64,
                    short_ms: short_ms as i64,
                    bucket_ms: Some(MINUTE_MS as i64),
                    queues: None,
                },
            )
            .await?,
            from,
        );
        Ok(StoredFloor {
            sites,
            teams,
            reasons,
            agents,
            states,
            inactive,
            queues,
            waiting,
            quarters,
        })
    }

    /// Starts a transaction for the ingest path.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        // SQLite: take the write lock up front. A transaction that reads first and writes later
        // fails at once (SQLITE_BUSY, no waiting) if another connection wrote in between.
        let begin = match self.engine {
            Engine::Sqlite => self.pool.begin_with("begin immediate").await,
            Engine::Postgres => self.pool.begin().await,
        };
        begin.context("cannot start a transaction")
    }

    /// Makes sure active sites or teams with these names exist; returns their ids by name and
    /// the names that were created or reactivated.
    pub async fn ensure_groups(
        tx: &mut Tx,
        table: Group,
        names: &[&str],
        now_ms: i64,
    ) -> anyhow::Result<(HashMap<String, i64>, Vec<String>)> {
        let table = table.table();
        let mut ids = HashMap::new();
        let mut created = Vec::new();
        for batch in names.chunks(Engine::of(tx).rows_per_statement()) {
            let existing = name_ids_in(tx, table, batch, true).await?;
            let missing: Vec<&str> = batch
                .iter()
                .copied()
                .filter(|name| !existing.contains_key(*name))
                .collect();
            if !missing.is_empty() {
                let sql = format!(
                    "insert into {table} (name, created_at) values {} \
                     on conflict (name) do update set active = true",
                    placeholders(missing.len(), 2)
                );
                let mut query = sqlx::query::<Any>(&sql).persistent(false);
                for name in &missing {
                    query = query.bind(*name).bind(now_ms);
                }
                query
                    .execute(&mut **tx)
                    .await
                    .with_context(|| format!("cannot insert {table}s"))?;
                created.extend(missing.iter().map(|name| name.to_string()));
            }
            ids.extend(name_ids_in(tx, table, batch, false).await?);
        }
        Ok((ids, created))
    }

    /// Makes sure these reason codes `(code, label)` exist; a code stored before keeps its
    /// label unless `relabel`. Returns their ids by code.
    pub async fn store_reasons(
        tx: &mut Tx,
        reasons: &[(&str, &str)],
        relabel: bool,
        now_ms: i64,
    ) -> anyhow::Result<HashMap<String, i64>> {
        let on_conflict = if relabel {
            "do update set label = excluded.label"
        } else {
            "do nothing"
        };
        for batch in reasons.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into reason_code (code, label, created_at) values {} \
                 on conflict (code) {on_conflict}",
                placeholders(batch.len(), 3)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            for (code, label) in batch {
                query = query.bind(*code).bind(*label).bind(now_ms);
            }
            query
                .execute(&mut **tx)
                .await
                .context("cannot store reason codes")?;
        }
        let codes: Vec<&str> = reasons.iter().map(|(code, _)| *code).collect();
        reason_ids_in(tx, &codes).await
    }

    /// Renames a site or team; fails when the new name is taken.
    pub async fn rename_group(
        tx: &mut Tx,
        table: Group,
        id: i64,
        name: &str,
    ) -> anyhow::Result<()> {
        let table = table.table();
        sqlx::query(&format!(
            "update {table} set name = $1 where {table}_id = $2"
        ))
        .bind(name)
        .bind(id)
        .execute(&mut **tx)
        .await
        .with_context(|| format!("cannot rename {table} {id} to {name}"))?;
        Ok(())
    }

    /// Deactivates a site or team.
    pub async fn deactivate_group(tx: &mut Tx, table: Group, id: i64) -> anyhow::Result<()> {
        let table = table.table();
        sqlx::query(&format!(
            "update {table} set active = false where {table}_id = $1"
        ))
        .bind(id)
        .execute(&mut **tx)
        .await
        .with_context(|| format!("cannot deactivate {table} {id}"))?;
        Ok(())
    }

    /// Creates agents or updates their name, team and site, and makes them active; returns
    /// their ids by external id.
    pub async fn upsert_agents(
        tx: &mut Tx,
        agents: &[NewAgent<'_>],
        now_ms: i64,
    ) -> anyhow::Result<HashMap<String, i64>> {
        let mut ids = HashMap::with_capacity(agents.len());
        for batch in agents.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into agent (external_id, display_name, team_id, site_id, active, created_at) \
                 values {} on conflict (external_id) do update set display_name = \
                 excluded.display_name, team_id = excluded.team_id, site_id = excluded.site_id, \
                 active = true returning agent_id, external_id",
                placeholders_with(batch.len(), 5, "true")
            );
            let mut query = sqlx::query_as::<Any, (i64, String)>(&sql).persistent(false);
            for agent in batch {
                query = query
                    .bind(agent.external_id)
                    .bind(agent.name)
                    .bind(agent.team_id)
                    .bind(agent.site_id)
                    .bind(now_ms);
            }
            let rows = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot upsert agents")?;
            ids.extend(rows.into_iter().map(|(id, external_id)| (external_id, id)));
        }
        Ok(ids)
    }

    /// Ids by name of the active sites or teams with these names, as this transaction sees them.
    pub async fn active_group_ids(
        tx: &mut Tx,
        group: Group,
        names: &[&str],
    ) -> anyhow::Result<HashMap<String, i64>> {
        let mut ids = HashMap::with_capacity(names.len());
        for batch in names.chunks(Engine::of(tx).rows_per_statement()) {
            ids.extend(name_ids_in(tx, group.table(), batch, true).await?);
        }
        Ok(ids)
    }

    /// The id of the site or team named `name`, active or not.
    pub async fn group_named(tx: &mut Tx, group: Group, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(name_ids_in(tx, group.table(), &[name], false)
            .await?
            .remove(name))
    }

    /// How many active agents a site or team has, as this transaction sees it.
    pub async fn active_agents_in(tx: &mut Tx, group: Group, id: i64) -> anyhow::Result<i64> {
        let table = group.table();
        let (count,): (i64,) = sqlx::query_as(&format!(
            "select count(*) from agent where active and {table}_id = $1"
        ))
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .with_context(|| format!("cannot count the agents of {table} {id}"))?;
        Ok(count)
    }

    /// Deactivates agents.
    pub async fn deactivate_agents(tx: &mut Tx, ids: &[i64]) -> anyhow::Result<()> {
        for batch in ids.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "update agent set active = false where agent_id in ({})",
                list(batch.len(), 1)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            for id in batch {
                query = query.bind(*id);
            }
            query
                .execute(&mut **tx)
                .await
                .context("cannot deactivate agents")?;
        }
        Ok(())
    }

    /// Makes sure queues with these names exist (a new one with the channel given beside its
    /// name); returns their ids by name, and the names of those it created.
    pub async fn ensure_queues(
        tx: &mut Tx,
        queues: &[(&str, &str)],
        now_ms: i64,
    ) -> anyhow::Result<(HashMap<String, i64>, Vec<String>)> {
        let mut created = Vec::new();
        for batch in queues.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into queue (name, channel, created_at) values {} \
                 on conflict (name) do nothing returning name",
                placeholders(batch.len(), 3)
            );
            let mut query = sqlx::query_as::<Any, (String,)>(&sql).persistent(false);
            for (name, channel) in batch {
                query = query.bind(*name).bind(*channel).bind(now_ms);
            }
            let rows = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot insert queues")?;
            created.extend(rows.into_iter().map(|(name,)| name));
        }
        let names: Vec<&str> = queues.iter().map(|(name, _)| *name).collect();
        let mut ids = HashMap::with_capacity(names.len());
        for batch in names.chunks(Engine::of(tx).rows_per_statement()) {
            ids.extend(name_ids_in(tx, "queue", batch, false).await?);
        }
        Ok((ids, created))
    }

    /// Appends contact events; one whose event id is already stored is skipped. Returns the
    /// event ids that were new.
    pub async fn insert_contact_events(
        tx: &mut Tx,
        rows: &[ContactEventRow<'_>],
        now_ms: i64,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut new = std::collections::HashSet::with_capacity(rows.len());
        for batch in rows.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into contact_event \
                 (event_id, contact, kind, at_ms, queue_id, agent, created_at) values {} \
                 on conflict (event_id) do nothing returning event_id",
                placeholders(batch.len(), 7)
            );
            let mut query = sqlx::query_as::<Any, (String,)>(&sql).persistent(false);
            for row in batch {
                query = query
                    .bind(row.event_id)
                    .bind(row.contact)
                    .bind(row.kind.name())
                    .bind(row.at_ms)
                    .bind(row.queue_id)
                    .bind(row.agent)
                    .bind(now_ms);
            }
            let stored = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot write contact events")?;
            new.extend(stored.into_iter().map(|(event_id,)| event_id));
        }
        Ok(new)
    }

    /// Every stored event of these contacts, in the order they were stored.
    pub async fn contact_steps(
        tx: &mut Tx,
        contacts: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<ContactStep>>> {
        let mut steps: HashMap<String, Vec<ContactStep>> = HashMap::with_capacity(contacts.len());
        for batch in contacts.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "select contact, kind, at_ms, queue_id, agent from contact_event \
                 where contact in ({}) order by contact_event_id",
                list(batch.len(), 1)
            );
            let mut query =
                sqlx::query_as::<Any, (String, String, i64, Option<i64>, Option<String>)>(&sql)
                    .persistent(false);
            for contact in batch {
                query = query.bind(*contact);
            }
            let rows = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot read contact events")?;
            for (contact, kind, at_ms, queue_id, agent) in rows {
                let kind = ContactEventKind::from_name(&kind)
                    .with_context(|| format!("stored contact event of unknown kind {kind:?}"))?;
                steps.entry(contact).or_default().push(ContactStep {
                    kind,
                    at_ms: at_ms.max(0) as u64,
                    queue_id,
                    agent,
                });
            }
        }
        Ok(steps)
    }

    /// Replaces the legs of each contact with the ones given (folded from all its events);
    /// returns the queue and entry time of each leg replaced.
    pub async fn replace_legs(
        tx: &mut Tx,
        legs: &[(&str, Vec<Leg>)],
    ) -> anyhow::Result<Vec<(i64, u64)>> {
        let contacts: Vec<&str> = legs.iter().map(|(contact, _)| *contact).collect();
        let mut replaced = Vec::new();
        for batch in contacts.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "delete from contact_leg where contact in ({}) returning queue_id, queued_at",
                list(batch.len(), 1)
            );
            let mut query = sqlx::query_as::<Any, (i64, i64)>(&sql).persistent(false);
            for contact in batch {
                query = query.bind(*contact);
            }
            let rows = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot replace contact legs")?;
            replaced.extend((rows.into_iter()).map(|(queue, at)| (queue, at.max(0) as u64)));
        }
        let rows: Vec<(&str, usize, &Leg)> = (legs.iter())
            .flat_map(|(contact, legs)| {
                legs.iter()
                    .enumerate()
                    .map(|(idx, leg)| (*contact, idx, leg))
            })
            .collect();
        for batch in rows.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into contact_leg (contact, leg, queue_id, queued_at, offered_at, \
                 connected_at, ended_at, agent, outcome) values {}",
                placeholders(batch.len(), 9)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            let ms = |value: Option<u64>| value.map(|ms| ms as i64);
            for (contact, idx, leg) in batch {
                query = query
                    .bind(*contact)
                    .bind(*idx as i64)
                    .bind(leg.queue_id)
                    .bind(leg.queued_ms as i64)
                    .bind(ms(leg.offered_ms))
                    .bind(ms(leg.connected_ms))
                    .bind(ms(leg.ended_ms))
                    .bind(leg.agent.as_deref())
                    .bind(leg.outcome.name());
            }
            query
                .execute(&mut **tx)
                .await
                .context("cannot write contact legs")?;
        }
        Ok(replaced)
    }

    /// The quarter hours starting at `quarters` of these queues, minute by minute, counted
    /// inside the writer's transaction (abandons within `short_ms` short). Every pair asked for
    /// is answered, with no minutes when it has no legs left.
    pub async fn quarter_counts(
        tx: &mut Tx,
        pairs: &[(i64, u64)],
        short_ms: u64,
    ) -> anyhow::Result<Vec<QuarterCounts>> {
        let mut by_quarter: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
        for &(queue, quarter) in pairs {
            by_quarter.entry(quarter).or_default().push(queue);
        }
        let mut out = Vec::with_capacity(pairs.len());
        for (quarter, mut queues) in by_quarter {
            queues.sort_unstable();
            queues.dedup();
            for batch in queues.chunks(Engine::of(tx).rows_per_statement()) {
                let rows = counts_rows(
                    &mut **tx,
                    CountsQuery {
                        from_ms: quarter as i64,
                        to_ms: (quarter + QUARTER_MS) as i64,
                        short_ms: short_ms as i64,
                        bucket_ms: Some(MINUTE_MS as i64),
                        queues: Some(batch),
                    },
                )
                .await?;
                let mut counted = minutes_by_quarter(rows, quarter);
                for &queue in batch {
                    if !counted.iter().any(|(id, ..)| *id == queue) {
                        counted.push((queue, quarter, Vec::new()));
                    }
                }
                out.extend(counted);
            }
        }
        Ok(out)
    }

    /// Every active queue, by name, with the teams that serve it.
    pub async fn queues(&self) -> anyhow::Result<Vec<StoredQueue>> {
        let mut queues = self.all_queues().await?;
        queues.retain(|queue| queue.active);
        Ok(queues)
    }

    /// Every queue, active or not, by name, with the teams that serve it.
    pub async fn all_queues(&self) -> anyhow::Result<Vec<StoredQueue>> {
        // The Any driver cannot decode SQLite booleans: read the flag as a number.
        let rows: Vec<(i64, String, String, i64, i64, i64)> = sqlx::query_as(
            "select queue_id, name, channel, target_secs, goal_percent, \
             cast(case when active then 1 else 0 end as bigint) from queue order by name",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read queues")?;
        let serving: Vec<(i64, i64)> =
            sqlx::query_as("select queue_id, team_id from queue_team order by team_id")
                .fetch_all(&self.pool)
                .await
                .context("cannot read the teams serving queues")?;
        Ok(rows
            .into_iter()
            .map(
                |(id, name, channel, target_secs, goal_percent, active)| StoredQueue {
                    id,
                    name,
                    channel,
                    target_secs: target_secs.max(0) as u64,
                    goal_percent: goal_percent.clamp(0, 100) as u8,
                    teams: (serving.iter())
                        .filter(|(queue, _)| *queue == id)
                        .map(|(_, team)| *team)
                        .collect(),
                    active: active != 0,
                },
            )
            .collect())
    }

    /// Creates or updates a queue from a roster sync and replaces its serving teams (by id);
    /// returns its id.
    pub async fn store_queue(
        tx: &mut Tx,
        queue: &QueueEntryJson,
        teams: &[i64],
        now_ms: i64,
    ) -> anyhow::Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "insert into queue (name, channel, target_secs, goal_percent, active, created_at) \
             values ($1, $2, $3, $4, $5, $6) on conflict (name) do update set \
             channel = excluded.channel, target_secs = excluded.target_secs, \
             goal_percent = excluded.goal_percent, active = excluded.active \
             returning queue_id",
        )
        .bind(queue.name.as_str())
        .bind(queue.channel.as_str())
        .bind(queue.target_secs as i64)
        .bind(i64::from(queue.goal_percent))
        .bind(queue.active)
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await
        .with_context(|| format!("cannot store queue {:?}", queue.name))?;
        sqlx::query("delete from queue_team where queue_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("cannot replace a queue's teams")?;
        for team in teams {
            sqlx::query("insert into queue_team (queue_id, team_id) values ($1, $2)")
                .bind(id)
                .bind(*team)
                .execute(&mut **tx)
                .await
                .context("cannot store a queue's teams")?;
        }
        Ok(id)
    }

    /// Active team ids by name, read inside the sync's transaction (teams it created count).
    pub async fn team_ids(tx: &mut Tx, names: &[&str]) -> anyhow::Result<HashMap<String, i64>> {
        let mut ids = HashMap::with_capacity(names.len());
        for batch in names.chunks(Engine::of(tx).rows_per_statement()) {
            ids.extend(name_ids_in(tx, "team", batch, true).await?);
        }
        Ok(ids)
    }

    /// The figures of the legs that entered each queue in `[from_ms, to_ms)`, per queue and,
    /// with `bucket_ms`, per bucket of that length from `from_ms` (`(queue_id, bucket, counts)`;
    /// the bucket is 0 without). An abandon within `short_ms` is short.
    pub async fn queue_counts(
        &self,
        from_ms: i64,
        to_ms: i64,
        short_ms: i64,
        bucket_ms: Option<i64>,
    ) -> anyhow::Result<Vec<(i64, i64, QueueCounts)>> {
        let query = CountsQuery {
            from_ms,
            to_ms,
            short_ms,
            bucket_ms,
            queues: None,
        };
        counts_rows(&self.pool, query).await
    }

    /// The contacts waiting or ringing now that entered their queue after `since_ms`:
    /// `(contact, queue_id, queued_ms)`.
    pub async fn waiting_contacts(&self, since_ms: u64) -> anyhow::Result<Vec<(String, i64, u64)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "select contact, queue_id, queued_at from contact_leg \
             where outcome in ('waiting', 'ringing') and queued_at >= $1",
        )
        .bind(since_ms as i64)
        .fetch_all(&self.pool)
        .await
        .context("cannot read waiting contacts")?;
        Ok((rows.into_iter())
            .map(|(contact, queue, at)| (contact, queue, at.max(0) as u64))
            .collect())
    }

    /// Per queue, the legs waiting or ringing now that entered it after `since_ms`, and when
    /// the oldest of them did: `(queue_id, waiting, oldest queued_at)`.
    pub async fn waiting(&self, since_ms: i64) -> anyhow::Result<Vec<(i64, i64, i64)>> {
        sqlx::query_as(
            "select queue_id, count(*), min(queued_at) from contact_leg \
             where outcome in ('waiting', 'ringing') and queued_at >= $1 group by queue_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .context("cannot count waiting contacts")
    }

    /// Legs that entered one of `queues` (ids) in `[from_ms, to_ms)`, oldest first, at most
    /// `limit`.
    pub async fn contact_legs(
        &self,
        queues: &[i64],
        agent: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<ContactLegJson>> {
        type Row = (
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            String,
        );
        let sql = format!(
            "select l.contact, q.name, l.queued_at, l.offered_at, l.connected_at, l.ended_at, \
             l.agent, l.outcome from contact_leg l join queue q on q.queue_id = l.queue_id \
             where l.queued_at >= $1 and l.queued_at < $2{}{} \
             order by l.queued_at, l.contact, l.leg limit {}",
            if queues.is_empty() {
                " and 1 = 0".to_owned()
            } else {
                // The server's own ids, never request text.
                let ids: Vec<String> = queues.iter().map(i64::to_string).collect();
                format!(" and l.queue_id in ({})", ids.join(", "))
            },
            if agent.is_some() {
                " and l.agent = $3"
            } else {
                ""
            },
            limit.max(0)
        );
        let mut query = sqlx::query_as::<Any, Row>(&sql).bind(from_ms).bind(to_ms);
        if let Some(agent) = agent {
            query = query.bind(agent.to_owned());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .context("cannot read contacts")?;
        let ms = |value: Option<i64>| value.map(|ms| ms.max(0) as u64);
        Ok(rows
            .into_iter()
            .map(
                |(contact, queue, queued, offered, connected, ended, agent, outcome)| {
                    ContactLegJson {
                        contact,
                        queue,
                        queued_ms: queued.max(0) as u64,
                        offered_ms: ms(offered),
                        connected_ms: ms(connected),
                        ended_ms: ms(ended),
                        agent,
                        outcome,
                    }
                },
            )
            .collect())
    }

    /// Appends history rows; a row whose event id is already stored is skipped. Returns the
    /// event ids that were new.
    pub async fn insert_history(
        tx: &mut Tx,
        rows: &[HistoryRow],
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut new = std::collections::HashSet::with_capacity(rows.len());
        for batch in rows.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into agent_state_change \
                 (event_id, agent_id, state, reason_code_id, started_at, created_at) values {} \
                 on conflict (event_id) do nothing returning event_id",
                placeholders(batch.len(), 6)
            );
            let mut query = sqlx::query_as::<Any, (String,)>(&sql).persistent(false);
            for row in batch {
                query = query
                    .bind(row.event_id.as_str())
                    .bind(row.agent_id)
                    .bind(row.state.name())
                    .bind(row.reason_code_id)
                    .bind(row.started_at)
                    .bind(row.created_at);
            }
            let stored = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot write state history")?;
            new.extend(stored.into_iter().map(|(event_id,)| event_id));
        }
        Ok(new)
    }

    /// Makes each state the agent's current one unless the stored one began later (at most
    /// one state per agent). Returns the agents whose state was written.
    pub async fn upsert_states(
        tx: &mut Tx,
        states: &[StoredState],
    ) -> anyhow::Result<std::collections::HashSet<i64>> {
        let mut written = std::collections::HashSet::with_capacity(states.len());
        for batch in states.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "insert into agent_state \
                 (agent_id, state, reason_code_id, started_at, seen_at, watched) values {} \
                 on conflict (agent_id) do update set state = excluded.state, \
                 reason_code_id = excluded.reason_code_id, started_at = excluded.started_at, \
                 seen_at = excluded.seen_at, watched = excluded.watched \
                 where excluded.started_at >= agent_state.started_at returning agent_id",
                placeholders(batch.len(), 6)
            );
            let mut query = sqlx::query_as::<Any, (i64,)>(&sql).persistent(false);
            for state in batch {
                query = query
                    .bind(state.agent_id)
                    .bind(state.state.name())
                    .bind(state.reason_code_id)
                    .bind(state.started_at)
                    .bind(state.seen_at)
                    .bind(state.watched);
            }
            let rows = query
                .fetch_all(&mut **tx)
                .await
                .context("cannot write agent states")?;
            written.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(written)
    }

    /// Records that the source reported on these agents (heartbeats).
    pub async fn touch_states(tx: &mut Tx, agents: &[i64], now_ms: i64) -> anyhow::Result<()> {
        for batch in agents.chunks(Engine::of(tx).rows_per_statement()) {
            let sql = format!(
                "update agent_state set seen_at = $1, watched = true where agent_id in ({})",
                list(batch.len(), 2)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false).bind(now_ms);
            for id in batch {
                query = query.bind(*id);
            }
            query
                .execute(&mut **tx)
                .await
                .context("cannot record heartbeats")?;
        }
        Ok(())
    }

    /// Stored state changes, oldest first, with names.
    pub async fn history(&self, query: &HistoryQuery) -> anyhow::Result<Vec<HistoryRead>> {
        let (filter, id) = match (query.agent, query.team) {
            (Some(agent), _) => ("c.agent_id = $1", agent),
            (None, Some(team)) => ("a.team_id = $1", team),
            (None, None) => anyhow::bail!("history needs an agent or a team"),
        };
        let sql = format!(
            "select a.external_id, a.display_name as name, a.team_id, t.name as team, \
             a.site_id, s.name as site, c.state, r.code as reason, c.started_at, c.created_at, \
             c.event_id, c.agent_state_change_id as id \
             from agent_state_change c join agent a on a.agent_id = c.agent_id \
             join team t on t.team_id = a.team_id join site s on s.site_id = a.site_id \
             left join reason_code r on r.reason_code_id = c.reason_code_id \
             where {filter} and c.started_at >= $2 and c.started_at < $3 \
             and c.agent_state_change_id > $4 and ({within}) \
             order by c.agent_state_change_id limit $5",
            within = scope_condition(query.within.as_deref()),
        );
        sqlx::query_as(&sql)
            .bind(id)
            .bind(query.from_ms)
            .bind(query.to_ms)
            .bind(query.after_id)
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await
            .context("cannot read state history")
    }

    /// How many agents were in each state (and reason) at `from_ms + k * step_ms` for every
    /// `k` up to `points - 1`: the state each active agent had entered last at or before each
    /// point, counted as changes per point so that the database sums and the rows returned are
    /// one per point, state and reason that changed, not one per agent.
    ///
    /// Each agent's last change at or before `from_ms` is the baseline (point 0); every later
    /// change adds one to its state at the first point at or after it and takes one from the
    /// state it ended, found with `lag` over the agent's changes. Agents count under the team
    /// and site they belong to now.
    ///
    /// The changes are read agent by agent (`cross join` keeps SQLite's order: the agents the
    /// filter and scope pass, then each one's changes by the `(agent_id, started_at)` index),
    /// so a team's trend reads that team's rows only.
    pub async fn trend(&self, query: &TrendQuery) -> anyhow::Result<Vec<TrendStep>> {
        let last_ms = query.from_ms + (query.points - 1) * query.step_ms;
        let within = format!(
            "a.active and ({}) and ({})",
            scope_condition(query.within.as_deref()),
            scope_condition(Some(std::slice::from_ref(&query.only))),
        );
        let changed = if query.changed_only {
            "and exists (select 1 from agent_state_change w where w.agent_id = a.agent_id \
             and w.started_at > $1 and w.started_at <= $2)"
        } else {
            ""
        };
        let sql = format!(
            "with base as ( \
                 select (select c.agent_state_change_id from agent_state_change c \
                         where c.agent_id = a.agent_id and c.started_at <= $1 \
                         order by c.started_at desc, c.agent_state_change_id desc limit 1) as id \
                 from agent a where {within} {changed}), \
             picked as ( \
                 select c.agent_id, c.state, c.reason_code_id, c.started_at, \
                        c.agent_state_change_id as id \
                 from base b join agent_state_change c on c.agent_state_change_id = b.id \
                 union all \
                 select c.agent_id, c.state, c.reason_code_id, c.started_at, \
                        c.agent_state_change_id as id \
                 from agent a cross join agent_state_change c \
                 where c.agent_id = a.agent_id and c.started_at > $1 and c.started_at <= $2 \
                 and {within}), \
             steps as ( \
                 select case when started_at <= $1 then 0 \
                             else (started_at - $1 + $3 - 1) / $3 end as k, \
                        state, reason_code_id, \
                        lag(state) over w as prev_state, \
                        lag(reason_code_id) over w as prev_reason \
                 from picked window w as (partition by agent_id order by started_at, id)), \
             deltas as ( \
                 select k, state, reason_code_id as reason, 1 as delta from steps \
                 union all \
                 select k, prev_state, prev_reason, -1 from steps where prev_state is not null) \
             select d.k, d.state, r.code as reason, sum(d.delta) as delta from deltas d \
             left join reason_code r on r.reason_code_id = d.reason \
             group by d.k, d.state, r.code order by d.k"
        );
        sqlx::query_as(&sql)
            .bind(query.from_ms as i64)
            .bind(last_ms as i64)
            .bind(query.step_ms as i64)
            .fetch_all(&self.pool)
            .await
            .context("cannot read the state trend")
    }

    /// Deletes the history of states that began before `before_ms`, and the contact events and
    /// legs from before it; returns how many rows went. Current states live in `agent_state` and
    /// are kept.
    pub async fn prune_history(&self, before_ms: i64) -> anyhow::Result<u64> {
        let mut pruned = 0;
        for (sql, what) in [
            (
                "delete from agent_state_change where started_at < $1",
                "state history",
            ),
            (
                "delete from contact_leg where queued_at < $1",
                "contact legs",
            ),
            (
                "delete from contact_event where at_ms < $1",
                "contact events",
            ),
        ] {
            let result = sqlx::query(sql)
                .bind(before_ms)
                .execute(&self.pool)
                .await
                .with_context(|| format!("cannot prune {what}"))?;
            pruned += result.rows_affected();
        }
        Ok(pruned)
    }

    /// Appends audit events in one statement per batch.
    pub async fn write_audit(&self, events: &[AuditEvent]) -> anyhow::Result<()> {
        for batch in events.chunks(self.engine.rows_per_statement()) {
            let sql = format!(
                "insert into audit_event (created_at, subject, kind, detail) values {}",
                placeholders(batch.len(), 4)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            for event in batch {
                query = query
                    .bind(event.created_at)
                    .bind(event.subject.as_deref())
                    .bind(event.kind.as_str())
                    .bind(event.detail.as_str());
            }
            query
                .execute(&self.pool)
                .await
                .context("cannot write the audit log")?;
        }
        Ok(())
    }

    /// The newest audit events that `filter` passes, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> anyhow::Result<Vec<AuditEvent>> {
        let rows: Vec<(i64, Option<String>, String, String)> = sqlx::query_as(
            "select created_at, subject, kind, detail from audit_event \
             where created_at < $1 and created_at >= $2 and ($3 = '' or kind = $3) \
             and lower(coalesce(subject, '')) like $4 escape '\\' \
             order by created_at desc, audit_event_id desc limit $5",
        )
        .bind(filter.before_ms)
        .bind(filter.from_ms)
        .bind(&filter.kind)
        .bind(like_pattern(&filter.subject))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        Ok(rows
            .into_iter()
            .map(|(created_at, subject, kind, detail)| AuditEvent {
                created_at,
                subject,
                kind,
                detail,
            })
            .collect())
    }

    /// Stores feedback; returns its number.
    pub async fn insert_feedback(&self, feedback: &NewFeedbackRow) -> anyhow::Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "insert into feedback (created_at, subject, body, client, context, screenshot) \
             values ($1, $2, $3, $4, $5, $6) returning feedback_id",
        )
        .bind(feedback.created_at)
        .bind(&feedback.subject)
        .bind(&feedback.text)
        .bind(&feedback.client)
        .bind(&feedback.context)
        .bind(feedback.screenshot.as_deref())
        .fetch_one(&self.pool)
        .await
        .context("cannot store feedback")?;
        Ok(id)
    }

    /// The newest feedback with a number below `before_id`, newest first.
    pub async fn feedback(&self, before_id: i64, limit: i64) -> anyhow::Result<Vec<FeedbackRow>> {
        sqlx::query_as(
            "select feedback_id as id, created_at, subject, body as text, client, context, \
             cast(case when screenshot is null then 0 else 1 end as bigint) as screenshots \
             from feedback where feedback_id < $1 \
             order by feedback_id desc limit $2",
        )
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("cannot read feedback")
    }

    /// The screenshot sent with feedback `id`, if one was.
    pub async fn feedback_screenshot(&self, id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("select screenshot from feedback where feedback_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .context("cannot read a feedback screenshot")?;
        Ok(row.and_then(|(png,)| png))
    }

    /// Notes that `subject` opened the stream (or left it) with `client` from `address`.
    pub async fn device_seen(
        &self,
        subject: &str,
        client: &str,
        address: Option<&str>,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into device (subject, client, address, first_seen, last_seen) \
             values ($1, $2, $3, $4, $4) on conflict (subject) do update set \
             client = excluded.client, address = coalesce(excluded.address, device.address), \
             last_seen = excluded.last_seen",
        )
        .bind(subject)
        .bind(client)
        .bind(address)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .context("cannot note a device")?;
        Ok(())
    }

    /// Notes that `subject` shows wallboard `name`.
    pub async fn device_wallboard(
        &self,
        subject: &str,
        name: &str,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into device (subject, wallboard, client, first_seen, last_seen) \
             values ($1, $2, '', $3, $3) on conflict (subject) do update set \
             wallboard = excluded.wallboard, last_seen = excluded.last_seen",
        )
        .bind(subject)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .context("cannot note a wallboard")?;
        Ok(())
    }

    /// Every device, most recently seen first.
    pub async fn devices(&self) -> anyhow::Result<Vec<DeviceRow>> {
        sqlx::query_as(
            "select subject, wallboard, client, address, first_seen, last_seen, signed_out_at \
             from device order by last_seen desc, subject limit 10000",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read the devices")
    }

    /// Signs `subject` out: its tokens from sign-ins before `now_ms` are refused. Whether it
    /// was known.
    pub async fn sign_out_device(&self, subject: &str, now_ms: i64) -> anyhow::Result<bool> {
        let done = sqlx::query("update device set signed_out_at = $2 where subject = $1")
            .bind(subject)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .context("cannot sign a device out")?;
        Ok(done.rows_affected() > 0)
    }

    /// The subjects signed out, and when.
    pub async fn signed_out(&self) -> anyhow::Result<Vec<(String, i64)>> {
        sqlx::query_as("select subject, signed_out_at from device where signed_out_at is not null")
            .fetch_all(&self.pool)
            .await
            .context("cannot read the signed-out devices")
    }

    /// The names of the settings that start with `prefix`, in order.
    pub async fn setting_names(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "select name from setting where substr(name, 1, length($1)) = $1 order by name",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .context("cannot list settings")?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// A setting's JSON document, if it was ever stored.
    pub async fn setting(&self, name: &str) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("select value from setting where name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .context("cannot read a setting")?;
        Ok(row.map(|(value,)| value))
    }

    /// Stores a setting's JSON document, replacing the previous one.
    pub async fn set_setting(
        &self,
        name: &str,
        value: &str,
        by: &str,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "insert into setting (name, value, updated_by, created_at) values ($1, $2, $3, $4) \
             on conflict (name) do update set value = excluded.value, \
             updated_by = excluded.updated_by, created_at = excluded.created_at",
        )
        .bind(name)
        .bind(value)
        .bind(by)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .context("cannot store a setting")?;
        Ok(())
    }

    /// The pool's connections: open, idle, and the most it opens.
    pub fn connections(&self) -> (u32, usize, u32) {
        (
            self.pool.size(),
            self.pool.num_idle(),
            self.pool.options().get_max_connections(),
        )
    }

    /// How many history rows are stored (for tests and diagnostics).
    pub async fn count_history(&self) -> anyhow::Result<i64> {
        let (count,): (i64,) = sqlx::query_as("select count(*) from agent_state_change")
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction of the ingest path.
pub type Tx = sqlx::Transaction<'static, Any>;

/// Ids by name of the (active, when `active_only`) sites or teams with these names.
async fn name_ids_in(
    tx: &mut Tx,
    table: &str,
    names: &[&str],
    active_only: bool,
) -> anyhow::Result<HashMap<String, i64>> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "select {table}_id, name from {table} where name in ({}){}",
        list(names.len(), 1),
        if active_only { " and active" } else { "" }
    );
    let mut query = sqlx::query_as::<Any, (i64, String)>(&sql).persistent(false);
    for name in names {
        query = query.bind(*name);
    }
    let rows = query
        .fetch_all(&mut **tx)
        .await
        .with_context(|| format!("cannot read {table}s"))?;
    Ok(rows.into_iter().map(|(id, name)| (name, id)).collect())
}

async fn reason_ids_in(tx: &mut Tx, codes: &[&str]) -> anyhow::Result<HashMap<String, i64>> {
    let mut ids = HashMap::with_capacity(codes.len());
    for batch in codes.chunks(Engine::of(tx).rows_per_statement()) {
        let sql = format!(
            "select reason_code_id, code from reason_code where code in ({})",
            list(batch.len(), 1)
        );
        let mut query = sqlx::query_as::<Any, (i64, String)>(&sql).persistent(false);
        for code in batch {
            query = query.bind(*code);
        }
        let rows = query
            .fetch_all(&mut **tx)
            .await
            .context("cannot read reason codes")?;
        ids.extend(rows.into_iter().map(|(id, code)| (code, id)));
    }
    Ok(ids)
}

/// `$first, $first+1, ...`: `n` placeholders for an `in (...)` list.
/// What [`counts_rows`] counts: the legs that entered a queue in `[from_ms, to_ms)`, per
/// bucket of `bucket_ms` from `from_ms` (one bucket without), of these queues (all without).
struct CountsQuery<'a> {
    from_ms: i64,
    to_ms: i64,
    short_ms: i64,
    bucket_ms: Option<i64>,
    queues: Option<&'a [i64]>,
}

/// Counts legs per queue and bucket: `(queue_id, bucket, counts)`, ordered.
async fn counts_rows<'e>(
    executor: impl Executor<'e, Database = Any>,
    query: CountsQuery<'_>,
) -> anyhow::Result<Vec<(i64, i64, QueueCounts)>> {
    type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let bucket = match query.bucket_ms {
        Some(_) => "(l.queued_at - $1) / $4",
        None => "0 * $4",
    };
    let only = match query.queues {
        Some(queues) => format!("and l.queue_id in ({})", list(queues.len(), 5)),
        None => String::new(),
    };
    let wait = "l.connected_at - l.queued_at";
    let handled = "l.outcome = 'answered' and l.ended_at is not null";
    let sql = format!(
        "select l.queue_id, {bucket} as bucket, count(*), \
         cast(sum(case when l.connected_at is not null then 1 else 0 end) as bigint), \
         cast(sum(case when l.connected_at is not null \
              and {wait} <= q.target_secs * 1000 then 1 else 0 end) as bigint), \
         cast(sum(case when l.outcome = 'abandoned' then 1 else 0 end) as bigint), \
         cast(sum(case when l.outcome = 'abandoned' \
              and l.ended_at - l.queued_at <= $3 then 1 else 0 end) as bigint), \
         cast(sum(case when l.connected_at is not null then {wait} else 0 end) as bigint), \
         cast(max(case when l.connected_at is not null then {wait} \
              when l.outcome = 'abandoned' then l.ended_at - l.queued_at else 0 end) as bigint), \
         cast(sum(case when {handled} then 1 else 0 end) as bigint), \
         cast(sum(case when {handled} then l.ended_at - l.connected_at else 0 end) as bigint) \
         from contact_leg l join queue q on q.queue_id = l.queue_id \
         where l.queued_at >= $1 and l.queued_at < $2 {only} \
         group by l.queue_id, {bucket} order by l.queue_id, bucket"
    );
    let mut rows = sqlx::query_as::<Any, Row>(&sql)
        .persistent(false)
        .bind(query.from_ms)
        .bind(query.to_ms)
        .bind(query.short_ms)
        .bind(query.bucket_ms.unwrap_or(1).max(1));
    for queue in query.queues.into_iter().flatten() {
        rows = rows.bind(*queue);
    }
    let rows = rows
        .fetch_all(executor)
        .await
        .context("cannot count contacts")?;
    let n = |value: i64| value.max(0) as u64;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (queue, bucket, offered, answered, in_target, abandoned, short) =
                (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
            let counts = QueueCounts {
                offered: n(offered),
                answered: n(answered),
                answered_in_target: n(in_target),
                abandoned: n(abandoned),
                abandoned_short: n(short),
                answered_wait_ms: n(row.7),
                longest_wait_ms: n(row.8),
                handled: n(row.9),
                handle_ms: n(row.10),
            };
            (queue, bucket, counts)
        })
        .collect())
}

/// Minute rows counted from `from_ms` as quarter hours of minutes, per queue.
fn minutes_by_quarter(rows: Vec<(i64, i64, QueueCounts)>, from_ms: u64) -> Vec<QuarterCounts> {
    let mut quarters: std::collections::BTreeMap<(i64, u64), Vec<(u8, QueueCounts)>> =
        Default::default();
    for (queue, minute, counts) in rows {
        let at = from_ms + minute.max(0) as u64 * MINUTE_MS;
        let quarter = quarter_of(at);
        let in_quarter = ((at - quarter) / MINUTE_MS) as u8;
        quarters
            .entry((queue, quarter))
            .or_default()
            .push((in_quarter, counts));
    }
    (quarters.into_iter())
        .map(|((queue, quarter), minutes)| (queue, quarter, minutes))
        .collect()
}

fn list(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|idx| format!("${idx}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2), ($3, $4)` for `n_rows` rows of `n_cols` columns.
fn placeholders(n_rows: usize, n_cols: usize) -> String {
    placeholders_with(n_rows, n_cols, "")
}

/// Like [`placeholders`], with a literal (such as `true`) spliced in as the second-to-last column.
fn placeholders_with(n_rows: usize, n_cols: usize, literal: &str) -> String {
    let mut sql = String::with_capacity(n_rows * n_cols * 5);
    for row in 0..n_rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..n_cols {
            if col > 0 {
                sql.push_str(", ");
            }
            if !literal.is_empty() && col == n_cols - 1 {
                sql.push_str(literal);
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * n_cols + col + 1));
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction must tell SQLite from PostgreSQL: SQLite's statements are kept small.
    #[tokio::test]
    async fn a_sqlite_transaction_is_known_as_such() {
        let dir = std::env::temp_dir().join(format!("monti-engine-{}", std::process::id()));
        let db = Db::connect(&DatabaseConfig {
            url: format!("sqlite://{}/monti.db", dir.display()),
            ..DatabaseConfig::default()
        })
        .await
        .expect("connects");
        let tx = db.begin().await.expect("begins");
        assert_eq!(Engine::of(&tx), Engine::Sqlite);
        assert_eq!(Engine::of(&tx).rows_per_statement(), 20);
        drop(tx);
        db.close().await;
        std::fs::remove_dir_all(dir).expect("removed");
    }

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders_with(1, 3, "true"), "($1, $2, true, $3)");
        assert_eq!(list(3, 2), "$2, $3, $4");
    }
}
