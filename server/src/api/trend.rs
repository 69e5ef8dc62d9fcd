//! `GET /api/v1/trend`: how many agents were in each state over the last hours, for the floor or
//! the teams, sites and reasons a viewer filters on, from the stored state history.
//!
//! The database sums the changes per point ([`Db::trend`](crate::store::db::Db::trend)); this
//! module checks the request and the caller's scope and folds the sums into counts. Counts are
//! what a summary shows, so the caller needs the right to see summaries, and only agents inside
//! its scope are counted.
//!
//! A whole read costs time in proportion to the state changes in the period
//! (docs/PERFORMANCE.md), so [`Trends`] keeps one series of points per question (step, teams,
//! sites, scope, reasons) for every viewer who asks it: answered again unread for ten seconds,
//! then extended with the changes since its last settled point, and read whole every five
//! minutes. At most [`AT_ONCE`] reads run at a time, leaving the database's other connections
//! to the writer and the rest of REST.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use monti_protocol::model::StateKind;
use monti_protocol::rest::{TREND_MAX_POINTS, TREND_MAX_SPAN_MS, TREND_MIN_STEP_MS, TrendJson};

use crate::AppState;
use crate::api::auth::{Action, Caller};
use crate::api::error::Error;
use crate::store::db::{DbGrant, TrendQuery, TrendStep};

/// The trend route.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/api/v1/trend", get(trend))
}

/// How many trend reads run at once.
pub const AT_ONCE: usize = 2;

/// How long an answer is given again, unread, to viewers asking the same.
const SHARED_FOR: Duration = Duration::from_secs(10);

/// How long a series is extended before it is read whole again (which takes in events that
/// arrived late, and roster changes).
const REREAD_EVERY: Duration = Duration::from_secs(300);

/// How far back an extension reads again: events may arrive this late (sources' clocks and
/// batching) and still be counted.
const SETTLE_MS: u64 = 120_000;

/// A question no viewer asked for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What a trend counts, without its period: viewers asking the same question share one
/// series of points, read once and extended as time goes on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Question {
    step_ms: u64,
    teams: Vec<i64>,
    sites: Vec<i64>,
    within: Option<Vec<(Vec<i64>, Vec<i64>)>>,
    reasons: BTreeSet<String>,
}

/// Counts per state at `from_ms + i * step_ms`, as last read.
#[derive(Clone, Debug)]
struct Series {
    from_ms: u64,
    step_ms: u64,
    counts: Vec<[i64; StateKind::COUNT]>,
    /// When it was last read whole.
    read_at: Instant,
    /// When it was last read whole or extended.
    extended_at: Instant,
}

impl Series {
    fn at_ms(&self, i: usize) -> u64 {
        self.from_ms + i as u64 * self.step_ms
    }

    /// The index of the point at `at_ms`, when it is one of this series' points.
    fn index(&self, at_ms: u64) -> Option<usize> {
        let offset = at_ms.checked_sub(self.from_ms)?;
        let i = usize::try_from(offset / self.step_ms).ok()?;
        (offset.is_multiple_of(self.step_ms) && i < self.counts.len()).then_some(i)
    }

    /// The answer for `points` points from `from_ms`, when this series holds them all.
    fn answer(&self, from_ms: u64, points: u64) -> Option<TrendJson> {
        let first = self.index(from_ms)?;
        let last = first + usize::try_from(points).ok()? - 1;
        (last < self.counts.len())
            .then(|| counts_json(from_ms, self.step_ms, &self.counts[first..=last]))
    }
}

/// Reads changes per point from the database: `(from_ms, points, changed_only)`.
trait Read: Fn(u64, u64, bool) -> Self::Steps + Send + 'static {
    type Steps: Future<Output = Result<Vec<TrendStep>, Error>> + Send + 'static;
}

impl<F, S> Read for F
where
    F: Fn(u64, u64, bool) -> S + Send + 'static,
    S: Future<Output = Result<Vec<TrendStep>, Error>> + Send + 'static,
{
    type Steps = S;
}

/// A question's series, once read; locked while it is read or extended.
type Known = Arc<tokio::sync::Mutex<Option<Series>>>;

/// The series of every question asked lately, and the permits that cap concurrent reads.
pub struct Trends {
    questions: Mutex<HashMap<Question, (Instant, Known)>>,
    reads: tokio::sync::Semaphore,
}

impl Default for Trends {
    fn default() -> Self {
        Trends {
            questions: Mutex::new(HashMap::new()),
            reads: tokio::sync::Semaphore::new(AT_ONCE),
        }
    }
}

impl Trends {
    /// The answer to `question` for `points` points from `from_ms`. Viewers asking the same
    /// question wait for one another: the first reads, the others take its series. A series
    /// answers again unread for [`SHARED_FOR`]; later requests extend it, reading only the
    /// changes since its last settled point (those of agents that changed, not the whole
    /// period), until it is [`REREAD_EVERY`] old and read whole again.
    ///
    /// The read runs in a task of its own: a request that gives up (its deadline) leaves it to
    /// finish, and the next viewer asking finds the series read.
    async fn answer(
        self: &Arc<Self>,
        question: Question,
        from_ms: u64,
        points: u64,
        read: impl Read,
    ) -> Result<TrendJson, Error> {
        let series = {
            let mut questions = self.questions.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            questions.retain(|_, (asked, _)| now.duration_since(*asked) < FORGET_AFTER);
            let entry =
                (questions.entry(question.clone())).or_insert_with(|| (now, Arc::default()));
            entry.0 = now;
            entry.1.clone()
        };
        let mut series = series.lock_owned().await;
        let step_ms = question.step_ms;
        let last_ms = from_ms + (points - 1) * step_ms;
        if let Some(known) = series.as_ref()
            && known.extended_at.elapsed() < SHARED_FOR
            && let Some(answer) = known.answer(from_ms, points)
        {
            return Ok(answer);
        }
        let trends = self.clone();
        let reading = tokio::spawn(async move {
            let permit = (trends.reads.acquire().await)
                .map_err(|_| Error::Unavailable("the server is stopping".into()))?;
            // Extend: keep the points before the newest settled one, read the changes after it.
            let kept = (series.as_ref())
                .filter(|known| {
                    known.read_at.elapsed() < REREAD_EVERY
                        && known.from_ms <= from_ms
                        && (from_ms - known.from_ms).is_multiple_of(step_ms)
                })
                .and_then(|known| {
                    let newest = known.at_ms(known.counts.len() - 1).min(last_ms);
                    let settled = newest.checked_sub(SETTLE_MS)?.checked_sub(known.from_ms)?;
                    Some((known, usize::try_from(settled / step_ms).ok()?))
                });
            let fresh = match kept {
                Some((known, keep)) => {
                    let base_ms = known.at_ms(keep);
                    let more = (last_ms - base_ms) / step_ms + 1;
                    // Point 0 of an extension counts only the agents that changed since: the
                    // kept point already counts everyone.
                    let mut steps = read(base_ms, more, true).await?;
                    steps.retain(|step| step.k > 0);
                    let mut counts = known.counts[..=keep].to_vec();
                    let start = counts[keep];
                    counts.extend(
                        running(start, &steps, more, &question.reasons)
                            .into_iter()
                            .skip(1),
                    );
                    Series {
                        counts,
                        extended_at: Instant::now(),
                        ..known.clone()
                    }
                }
                None => {
                    let steps = read(from_ms, points, false).await?;
                    let counts = running([0; StateKind::COUNT], &steps, points, &question.reasons);
                    Series {
                        from_ms,
                        step_ms,
                        counts,
                        read_at: Instant::now(),
                        extended_at: Instant::now(),
                    }
                }
            };
            drop(permit);
            let answer = fresh.answer(from_ms, points).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "a trend series does not hold the points it was read for"
                ))
            })?;
            *series = Some(fresh);
            Ok(answer)
        });
        reading
            .await
            .map_err(|err| Error::Internal(anyhow::anyhow!("the trend read failed: {err}")))?
    }
}

/// The period a trend covers when the request names none.
const DEFAULT_SPAN_MS: u64 = 4 * 3_600_000;

/// What a trend request asks for; `team`, `site` and `reason` may be repeated.
#[derive(Debug, Default, PartialEq, Eq)]
struct TrendParams {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    step_ms: Option<u64>,
    teams: BTreeSet<String>,
    sites: BTreeSet<String>,
    reasons: BTreeSet<String>,
}

impl TrendParams {
    fn parse(query: Option<&str>) -> Result<TrendParams, Error> {
        let mut params = TrendParams::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    Error::BadRequest(format!(
                        "{key} must be a whole number of milliseconds, not {value:?}"
                    ))
                })
            };
            match &*key {
                "from_ms" => params.from_ms = Some(number()?),
                "to_ms" => params.to_ms = Some(number()?),
                "step_ms" => params.step_ms = Some(number()?),
                "team" => _ = params.teams.insert(value.into_owned()),
                "site" => _ = params.sites.insert(value.into_owned()),
                "reason" => _ = params.reasons.insert(value.into_owned()),
                other => {
                    return Err(Error::BadRequest(format!(
                        "unknown parameter {other:?}; use from_ms, to_ms, step_ms, team, site \
                         or reason"
                    )));
                }
            }
        }
        Ok(params)
    }
}

/// The points a request covers: `(from_ms, step_ms, points)`. Without a step, the finest
/// whole minute that keeps within [`TREND_MAX_POINTS`].
fn points(params: &TrendParams, now_ms: u64) -> Result<(u64, u64, u64), Error> {
    let to_ms = params.to_ms.unwrap_or(now_ms);
    // Nothing is stored for later, and a period far ahead would not fit the database's times.
    if to_ms > now_ms + 3_600_000 {
        return Err(Error::BadRequest(
            "to_ms lies more than an hour after the server's clock".into(),
        ));
    }
    let from_ms = params
        .from_ms
        .unwrap_or(to_ms.saturating_sub(DEFAULT_SPAN_MS));
    if from_ms >= to_ms {
        return Err(Error::BadRequest("from_ms must be before to_ms".into()));
    }
    let span = to_ms - from_ms;
    if span > TREND_MAX_SPAN_MS {
        return Err(Error::BadRequest(format!(
            "a trend covers at most {} days",
            TREND_MAX_SPAN_MS / 86_400_000
        )));
    }
    let step_ms = match params.step_ms {
        Some(step) if step < TREND_MIN_STEP_MS => {
            return Err(Error::BadRequest(format!(
                "step_ms must be at least {TREND_MIN_STEP_MS}"
            )));
        }
        Some(step) => step,
        None => {
            (span.div_ceil(TREND_MAX_POINTS - 1))
                .div_ceil(60_000)
                .max(1)
                * 60_000
        }
    };
    let points = span / step_ms + 1;
    if points > TREND_MAX_POINTS {
        return Err(Error::BadRequest(format!(
            "{points} points asked for, at most {TREND_MAX_POINTS}: use a larger step_ms or a \
             shorter period"
        )));
    }
    Ok((from_ms, step_ms, points))
}

async fn trend(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<TrendJson>, Error> {
    caller.require(Action::ViewSummary)?;
    let scope = caller.scope(Action::ViewSummary);
    let params = TrendParams::parse(query.as_deref())?;
    let (from_ms, step_ms, points) = points(&params, state.clock.now_ms())?;
    // Names the caller may not see are as unknown as names that do not exist, and the answer
    // does not repeat them (it would be the same for both).
    let (teams, sites) = state.live.read(|floor| {
        let unknown = |what: &str, _: &str| {
            Error::BadRequest(format!(
                "a {what} named in {what}= is unknown; the lists at /api/v1/teams, \
                 /api/v1/sites and /api/v1/reasons name those there are"
            ))
        };
        let teams = (params.teams.iter())
            .map(|name| {
                (floor.teams())
                    .find(|team| &team.name == name)
                    .filter(|team| floor.scope_names_team(&scope, team.id))
                    .ok_or_else(|| unknown("team", name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sites = (params.sites.iter())
            .map(|name| {
                (floor.sites())
                    .find(|site| &site.name == name)
                    .filter(|site| floor.scope_names_site(&scope, site.id))
                    .ok_or_else(|| unknown("site", name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(code) = (params.reasons.iter())
            .find(|code| !floor.reasons().any(|reason| &reason.code == *code))
        {
            return Err(unknown("reason", code));
        }
        Ok((
            teams
                .iter()
                .map(|team| team.name.clone())
                .collect::<Vec<_>>(),
            sites
                .iter()
                .map(|site| site.name.clone())
                .collect::<Vec<_>>(),
        ))
    })?;
    let only = DbGrant {
        teams: (teams.iter())
            .filter_map(|name| state.live.team_id(name))
            .collect(),
        sites: (sites.iter())
            .filter_map(|name| state.live.site_id(name))
            .collect(),
    };
    let (query_teams, query_sites) = (only.teams, only.sites);
    let within = state.live.db_scope(&scope);
    let question = Question {
        step_ms,
        teams: query_teams.clone(),
        sites: query_sites.clone(),
        within: (within.as_ref()).map(|grants| {
            (grants.iter())
                .map(|grant| (grant.teams.clone(), grant.sites.clone()))
                .collect()
        }),
        reasons: params.reasons.clone(),
    };
    let db = state.db.clone();
    let read = move |from_ms: u64, points: u64, changed_only: bool| {
        let query = TrendQuery {
            from_ms,
            step_ms,
            points,
            only: DbGrant {
                teams: query_teams.clone(),
                sites: query_sites.clone(),
            },
            within: within.clone(),
            changed_only,
        };
        let db = db.clone();
        async move { Ok(db.trend(&query).await?) }
    };
    let answer = (state.trends)
        .answer(question, from_ms, points, read)
        .await?;
    Ok(Json(answer))
}

/// Counts per state at each of `points` points: `start` plus the changes per point. With
/// `reasons`, only agents not ready for one of them are counted.
fn running(
    start: [i64; StateKind::COUNT],
    steps: &[TrendStep],
    points: u64,
    reasons: &BTreeSet<String>,
) -> Vec<[i64; StateKind::COUNT]> {
    let mut deltas = vec![[0_i64; StateKind::COUNT]; points as usize];
    for step in steps {
        let Some(kind) = StateKind::from_name(&step.state) else {
            continue;
        };
        let counted = reasons.is_empty()
            || (kind == StateKind::NotReady
                && step
                    .reason
                    .as_ref()
                    .is_some_and(|code| reasons.contains(code)));
        let slot = usize::try_from(step.k).ok().and_then(|k| deltas.get_mut(k));
        if let (true, Some(slot)) = (counted, slot) {
            slot[kind.index()] += step.delta;
        }
    }
    let mut now = start;
    deltas
        .into_iter()
        .map(|delta| {
            for (count, change) in now.iter_mut().zip(delta) {
                *count += change;
            }
            now
        })
        .collect()
}

/// The JSON form of counts per point.
fn counts_json(from_ms: u64, step_ms: u64, counts: &[[i64; StateKind::COUNT]]) -> TrendJson {
    let states = (StateKind::ALL.iter())
        .map(|kind| {
            let per_point = (counts.iter())
                .map(|at| u32::try_from(at[kind.index()].max(0)).unwrap_or(u32::MAX))
                .collect();
            (kind.name().to_owned(), per_point)
        })
        .collect();
    TrendJson {
        from_ms,
        step_ms,
        states,
    }
}

/// Counts per state at each point from the changes per point.
#[cfg(test)]
fn fold(
    steps: &[TrendStep],
    from_ms: u64,
    step_ms: u64,
    points: u64,
    reasons: &BTreeSet<String>,
) -> TrendJson {
    let counts = running([0; StateKind::COUNT], steps, points, reasons);
    counts_json(from_ms, step_ms, &counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(k: i64, state: &str, reason: Option<&str>, delta: i64) -> TrendStep {
        TrendStep {
            k,
            state: state.to_owned(),
            reason: reason.map(str::to_owned),
            delta,
        }
    }

    #[test]
    fn changes_per_point_add_up_to_counts() {
        let steps = [
            step(0, "available", None, 3),
            step(0, "not_ready", Some("break"), 1),
            step(2, "available", None, -1),
            step(2, "on_call", None, 1),
            step(3, "not_ready", Some("break"), -1),
            step(3, "not_ready", Some("lunch"), 1),
        ];
        let trend = fold(&steps, 1_000, 60_000, 5, &BTreeSet::new());
        assert_eq!(trend.states["available"], [3, 3, 2, 2, 2]);
        assert_eq!(trend.states["on_call"], [0, 0, 1, 1, 1]);
        assert_eq!(trend.states["not_ready"], [1, 1, 1, 1, 1]);
        assert_eq!(trend.states["offline"], [0; 5]);
        assert_eq!(trend.at_ms(4), 241_000);

        let breaks = fold(&steps, 1_000, 60_000, 5, &BTreeSet::from(["break".into()]));
        assert_eq!(breaks.states["not_ready"], [1, 1, 1, 0, 0]);
        assert_eq!(breaks.states["available"], [0; 5]);
    }

    /// What the database answers for `changes` (agent, state, since), by the rules of
    /// `Db::trend`, written out plainly.
    fn database(
        changes: &[(u32, &'static str, u64)],
        step_ms: u64,
        (from_ms, points, changed_only): (u64, u64, bool),
    ) -> Vec<TrendStep> {
        let last_ms = from_ms + (points - 1) * step_ms;
        let mut steps = Vec::new();
        let agents: BTreeSet<u32> = changes.iter().map(|(agent, _, _)| *agent).collect();
        for agent in agents {
            let mut mine: Vec<(&str, u64)> = (changes.iter())
                .filter(|(who, _, at)| *who == agent && *at <= last_ms)
                .map(|(_, state, at)| (*state, *at))
                .collect();
            mine.sort_by_key(|(_, at)| *at);
            let changed = mine.iter().any(|(_, at)| *at > from_ms);
            if changed_only && !changed {
                continue;
            }
            // The baseline: the last change at or before the first point.
            let mut current = (mine.iter())
                .rev()
                .find(|(_, at)| *at <= from_ms)
                .map(|(state, _)| *state);
            if let Some(state) = current {
                steps.push(step(0, state, None, 1));
            }
            for (state, at) in mine.iter().filter(|(_, at)| *at > from_ms) {
                let k = (at - from_ms).div_ceil(step_ms) as i64;
                if let Some(ended) = current {
                    steps.push(step(k, ended, None, -1));
                }
                steps.push(step(k, state, None, 1));
                current = Some(state);
            }
        }
        steps
    }

    #[tokio::test]
    async fn a_series_read_once_and_extended_answers_as_a_whole_read_would() {
        const MINUTE: u64 = 60_000;
        let changes: Vec<(u32, &'static str, u64)> = (0..40)
            .map(|i: u64| {
                let state = ["available", "on_call", "wrap_up", "not_ready"][(i * 7 % 4) as usize];
                (
                    (i * 5 % 6) as u32,
                    state,
                    (i * 37 % 101) * MINUTE + i * 1_000,
                )
            })
            .collect();
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let read = {
            let (changes, reads) = (changes.clone(), reads.clone());
            move |from_ms: u64, points: u64, changed_only: bool| {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let steps = database(&changes, MINUTE, (from_ms, points, changed_only));
                async move { Ok(steps) }
            }
        };
        let whole = |from_ms: u64, points: u64| {
            let steps = database(&changes, MINUTE, (from_ms, points, false));
            fold(&steps, from_ms, MINUTE, points, &BTreeSet::new())
        };
        let question = Question {
            step_ms: MINUTE,
            teams: Vec::new(),
            sites: Vec::new(),
            within: None,
            reasons: BTreeSet::new(),
        };
        let trends = Arc::new(Trends::default());
        for (from, points) in [(0, 31), (0, 31), (0, 38), (10, 51), (0, 101), (5, 90)] {
            let from_ms = from * MINUTE;
            let answer = trends
                .answer(question.clone(), from_ms, points, read.clone())
                .await
                .expect("an answer");
            assert_eq!(
                answer,
                whole(from_ms, points),
                "{points} points from {from} min"
            );
        }
        // The second request was answered unread; each later one read once (extensions, and
        // none of them was the whole period again).
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 4);
        // Points between the series' points: read whole.
        let between = trends
            .answer(question.clone(), 30_000, 20, read.clone())
            .await
            .expect("an answer");
        assert_eq!(between, whole(30_000, 20));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_read_whose_request_gave_up_finishes_for_the_next_viewer() {
        let trends = Arc::new(Trends::default());
        let question = Question {
            step_ms: 60_000,
            teams: Vec::new(),
            sites: Vec::new(),
            within: None,
            reasons: BTreeSet::new(),
        };
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let gate = Arc::new(Mutex::new(Some(gate)));
        let slow = move |_: u64, _: u64, _: bool| {
            let gate = gate.lock().expect("lock").take();
            async move {
                if let Some(gate) = gate {
                    gate.await.ok();
                }
                Ok(vec![step(0, "on_call", None, 4)])
            }
        };
        let gave_up = tokio::time::timeout(
            Duration::from_millis(20),
            trends.answer(question.clone(), 0, 3, slow),
        )
        .await;
        assert!(
            gave_up.is_err(),
            "the first request gives up while the read waits"
        );
        open.send(()).expect("the read still waits");
        let never = |_: u64, _: u64, _: bool| async { panic!("read again") };
        let answer = trends
            .answer(question, 0, 3, never)
            .await
            .expect("the series");
        assert_eq!(answer.states["on_call"], [4, 4, 4]);
    }

    #[tokio::test]
    async fn a_failed_read_answers_with_its_error_and_the_next_request_reads_again() {
        let trends = Arc::new(Trends::default());
        let question = Question {
            step_ms: 60_000,
            teams: vec![7],
            sites: Vec::new(),
            within: Some(vec![(vec![7], vec![])]),
            reasons: BTreeSet::new(),
        };
        let failing = |_: u64, _: u64, _: bool| async { Err(Error::Unavailable("busy".into())) };
        let failed = trends.answer(question.clone(), 0, 3, failing).await;
        assert!(matches!(failed, Err(Error::Unavailable(_))));
        let empty = |_: u64, _: u64, _: bool| async { Ok(Vec::new()) };
        let answer = trends.answer(question, 0, 3, empty).await.expect("read");
        assert_eq!(answer.len(), 3);
    }

    #[test]
    fn points_past_the_period_and_unknown_states_are_ignored() {
        let steps = [
            step(0, "available", None, 1),
            step(7, "available", None, 5),
            step(-1, "available", None, 5),
            step(1, "dancing", None, 1),
        ];
        let trend = fold(&steps, 0, 60_000, 2, &BTreeSet::new());
        assert_eq!(trend.states["available"], [1, 1]);
        assert_eq!(trend.len(), 2);
    }

    #[test]
    fn a_request_names_a_period_the_response_can_carry() {
        let now = 30 * 86_400_000;
        let params = |query: &str| TrendParams::parse(Some(query));
        // The default: the last four hours by the minute.
        assert_eq!(
            points(&params("").expect("parses"), now).expect("fits"),
            (now - DEFAULT_SPAN_MS, 60_000, 241)
        );
        // A week without a step: the finest whole minute within the limit.
        let week = params(&format!("from_ms=0&to_ms={}", 7 * 86_400_000)).expect("parses");
        let (_, step, n) = points(&week, now).expect("fits");
        assert_eq!((step, n), (420_000, 1_441));
        for bad in [
            "from_ms=5&to_ms=5",
            "step_ms=999",
            "from_ms=0&to_ms=86400000&step_ms=10000",
            "from_ms=0&to_ms=604800001",
            "to_ms=18446744073709551615",
        ] {
            let answer = points(&params(bad).expect("parses"), now);
            assert!(matches!(answer, Err(Error::BadRequest(_))), "{bad}");
        }
        for bad in ["from_ms=-1", "to_ms=soon", "teams=Billing", "step_ms=1e3"] {
            assert!(
                matches!(params(bad), Err(Error::BadRequest(_))),
                "{bad} is refused"
            );
        }
        let named =
            params("team=Billing+1&team=Billing%202&site=Lisbon&reason=break").expect("parses");
        assert_eq!(named.teams.len(), 2);
        assert!(named.teams.contains("Billing 2"));
        assert_eq!(named.sites, BTreeSet::from(["Lisbon".to_owned()]));
    }
}
