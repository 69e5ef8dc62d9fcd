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

use crate::config::DatabaseConfig;

/// Which database engine a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// A file on this machine.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool with the schema migrated.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

/// Master data to make sure exists, for example the simulator's roster.
#[derive(Clone, Debug, Default)]
pub struct RosterSeed {
    /// Site names.
    pub sites: Vec<String>,
    /// Team names.
    pub teams: Vec<String>,
    /// Reason codes as `(code, label)`.
    pub reasons: Vec<(String, String)>,
    /// Agents.
    pub agents: Vec<SeedAgent>,
    /// Agents whose external id starts with this and who are not in `agents` are deactivated,
    /// so that a smaller simulated floor does not keep the agents of a larger earlier one.
    pub owned_prefix: Option<String>,
}

/// One agent of a [`RosterSeed`].
#[derive(Clone, Debug)]
pub struct SeedAgent {
    /// The telephony system's id.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// Team name (must be in the seed's teams or already in the database).
    pub team: String,
    /// Site name.
    pub site: String,
}

/// Master data as stored, ordered by database id.
#[derive(Clone, Debug, Default)]
pub struct StoredRoster {
    /// `(site_id, name)`
    pub sites: Vec<(i64, String)>,
    /// `(team_id, name)`
    pub teams: Vec<(i64, String)>,
    /// `(reason_code_id, code, label)`
    pub reasons: Vec<(i64, String, String)>,
    /// Active agents.
    pub agents: Vec<StoredAgent>,
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

/// One row of state history.
#[derive(Clone, Debug)]
pub struct HistoryRow {
    /// `agent_id`
    pub agent_id: i64,
    /// State name (`StateKind::name`).
    pub state: &'static str,
    /// `reason_code_id` for not-ready states with a reason.
    pub reason_code_id: Option<i64>,
    /// When the state began, ms since the epoch.
    pub started_at: i64,
    /// When the server learned of it, ms since the epoch.
    pub created_at: i64,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// When, ms since the epoch.
    pub created_at: i64,
    /// Who (a token's subject), when known.
    pub subject: Option<String>,
    /// What: `sign_in`, `refused` or `config_change`.
    pub kind: String,
    /// Details for a person; never a token.
    pub detail: String,
}

/// Rows per multi-row insert; keeps each statement well under both engines' parameter limits.
///
/// Multi-row statements are built per batch, so they are not kept as prepared statements
/// (`persistent(false)`): a cache of one statement per batch size would only hold memory.
const ROWS_PER_INSERT: usize = 500;

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

    /// Makes sure every site, team, reason code and agent of `seed` exists and is active, and
    /// deactivates the seed owner's agents that are no longer in it. One transaction.
    pub async fn sync_roster(&self, seed: &RosterSeed, now_ms: i64) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for (table, names) in [("site", &seed.sites), ("team", &seed.teams)] {
            for batch in names.chunks(ROWS_PER_INSERT) {
                let sql = format!(
                    "insert into {table} (name, created_at) values {} on conflict (name) do nothing",
                    placeholders(batch.len(), 2)
                );
                let mut query = sqlx::query::<Any>(&sql).persistent(false);
                for name in batch {
                    query = query.bind(name.as_str()).bind(now_ms);
                }
                query
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("cannot insert {table}s"))?;
            }
        }
        for batch in seed.reasons.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "insert into reason_code (code, label, created_at) values {} \
                 on conflict (code) do update set label = excluded.label",
                placeholders(batch.len(), 3)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            for (code, label) in batch {
                query = query.bind(code.as_str()).bind(label.as_str()).bind(now_ms);
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot insert reason codes")?;
        }
        if let Some(prefix) = &seed.owned_prefix {
            sqlx::query("update agent set active = false where external_id like $1")
                .bind(format!("{prefix}%"))
                .execute(&mut *tx)
                .await
                .context("cannot deactivate old agents")?;
        }
        let site_ids = name_ids(&mut tx, "select site_id, name from site").await?;
        let team_ids = name_ids(&mut tx, "select team_id, name from team").await?;
        for batch in seed.agents.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "insert into agent (external_id, display_name, team_id, site_id, active, created_at) \
                 values {} on conflict (external_id) do update set display_name = \
                 excluded.display_name, team_id = excluded.team_id, site_id = excluded.site_id, \
                 active = true",
                placeholders_with(batch.len(), 5, "true")
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            for agent in batch {
                let team_id = *team_ids
                    .get(&agent.team)
                    .with_context(|| format!("agent {} names unknown team", agent.external_id))?;
                let site_id = *site_ids
                    .get(&agent.site)
                    .with_context(|| format!("agent {} names unknown site", agent.external_id))?;
                query = query
                    .bind(agent.external_id.as_str())
                    .bind(agent.name.as_str())
                    .bind(team_id)
                    .bind(site_id)
                    .bind(now_ms);
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot upsert agents")?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Reads all master data and the active agents.
    pub async fn load_roster(&self) -> anyhow::Result<StoredRoster> {
        let sites = sqlx::query_as("select site_id, name from site order by site_id")
            .fetch_all(&self.pool)
            .await
            .context("cannot read sites")?;
        let teams = sqlx::query_as("select team_id, name from team order by team_id")
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
             where active = true order by agent_id",
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
        Ok(StoredRoster {
            sites,
            teams,
            reasons,
            agents,
        })
    }

    /// Appends state history rows in one transaction.
    pub async fn write_history(&self, rows: &[HistoryRow]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for batch in rows.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "insert into agent_state_change \
                 (agent_id, state, reason_code_id, started_at, created_at) values {}",
                placeholders(batch.len(), 5)
            );
            let mut query = sqlx::query::<Any>(&sql).persistent(false);
            for row in batch {
                query = query
                    .bind(row.agent_id)
                    .bind(row.state)
                    .bind(row.reason_code_id)
                    .bind(row.started_at)
                    .bind(row.created_at);
            }
            query
                .execute(&mut *tx)
                .await
                .context("cannot write state history")?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends audit events in one statement per batch.
    pub async fn write_audit(&self, events: &[AuditEvent]) -> anyhow::Result<()> {
        for batch in events.chunks(ROWS_PER_INSERT) {
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

    /// The newest audit events before `before_ms`, newest first.
    pub async fn audit(&self, before_ms: i64, limit: i64) -> anyhow::Result<Vec<AuditEvent>> {
        let rows: Vec<(i64, Option<String>, String, String)> = sqlx::query_as(
            "select created_at, subject, kind, detail from audit_event where created_at < $1 \
             order by created_at desc, audit_event_id desc limit $2",
        )
        .bind(before_ms)
        .bind(limit)
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

async fn name_ids(
    tx: &mut sqlx::Transaction<'_, Any>,
    sql: &str,
) -> anyhow::Result<std::collections::HashMap<String, i64>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(sql).fetch_all(&mut **tx).await?;
    Ok(rows.into_iter().map(|(id, name)| (name, id)).collect())
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

/// The URL without a password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders_with(1, 3, "true"), "($1, $2, true, $3)");
    }

    #[test]
    fn passwords_do_not_reach_messages() {
        assert_eq!(
            redact("postgres://monti:secret@db/monti"),
            "postgres://monti:***@db/monti"
        );
        assert_eq!(redact("sqlite://data/monti.db"), "sqlite://data/monti.db");
    }
}
