//! `GET /api/v1/trend`: how many agents were in each state over the last hours, for the floor or
//! the teams, sites and reasons a viewer filters on, from the stored state history.
//!
//! The database sums the changes per point ([`Db::trend`](crate::store::db::Db::trend)); this
//! module checks the request and the caller's scope and folds the sums into counts. Counts are
//! what a summary shows, so the caller needs the right to see summaries, and only agents inside
//! its scope are counted.
//!
//! The read costs time in proportion to the state changes in the period (docs/PERFORMANCE.md),
//! so [`Trends`] shares answers: viewers that ask the same question within a step (the apps
//! round the period's start to the step) get one read between them, and at most [`AT_ONCE`]
//! reads run at a time, leaving the database's other connections to the writer and the rest
//! of REST.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// How long an answer is shared with viewers asking the same question.
const SHARED_FOR: Duration = Duration::from_secs(10);

/// What one trend read asks: equal keys get equal answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    from_ms: u64,
    step_ms: u64,
    points: u64,
    teams: Vec<i64>,
    sites: Vec<i64>,
    within: Option<Vec<(Vec<i64>, Vec<i64>)>>,
    reasons: BTreeSet<String>,
}

type Shared = Arc<tokio::sync::OnceCell<Arc<TrendJson>>>;

/// Answers shared between viewers, and the permits that cap concurrent reads.
pub struct Trends {
    answers: Mutex<HashMap<Key, (Instant, Shared)>>,
    reads: tokio::sync::Semaphore,
}

impl Default for Trends {
    fn default() -> Self {
        Trends {
            answers: Mutex::new(HashMap::new()),
            reads: tokio::sync::Semaphore::new(AT_ONCE),
        }
    }
}

impl Trends {
    /// The answer to `key`: shared when the same was asked less than [`SHARED_FOR`] ago (or is
    /// being read now), else read with `read` once a permit is free. A failed read is not
    /// shared: the next caller reads again.
    async fn answer<F>(&self, key: Key, read: F) -> Result<Arc<TrendJson>, Error>
    where
        F: Future<Output = Result<TrendJson, Error>>,
    {
        let shared = {
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            answers.retain(|_, (at, _)| now.duration_since(*at) < SHARED_FOR);
            (answers.entry(key))
                .or_insert_with(|| (now, Shared::default()))
                .1
                .clone()
        };
        let answer = shared
            .get_or_try_init(|| async {
                let _permit = (self.reads.acquire().await)
                    .map_err(|_| Error::Unavailable("the server is stopping".into()))?;
                read.await.map(Arc::new)
            })
            .await?;
        Ok(answer.clone())
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
    let query = TrendQuery {
        from_ms,
        step_ms,
        points,
        only,
        within: state.live.db_scope(&scope),
    };
    let key = Key {
        from_ms,
        step_ms,
        points,
        teams: query.only.teams.clone(),
        sites: query.only.sites.clone(),
        within: (query.within.as_ref()).map(|grants| {
            (grants.iter())
                .map(|grant| (grant.teams.clone(), grant.sites.clone()))
                .collect()
        }),
        reasons: params.reasons.clone(),
    };
    let reasons = params.reasons;
    let db = state.db.clone();
    let answer = (state.trends)
        .answer(key, async move {
            let steps = db.trend(&query).await?;
            Ok(fold(&steps, from_ms, step_ms, points, &reasons))
        })
        .await?;
    Ok(Json(TrendJson::clone(&answer)))
}

/// Counts per state at each point from the changes per point. With `reasons`, only agents not
/// ready for one of them are counted.
fn fold(
    steps: &[TrendStep],
    from_ms: u64,
    step_ms: u64,
    points: u64,
    reasons: &BTreeSet<String>,
) -> TrendJson {
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
    let mut states: BTreeMap<String, Vec<u32>> = (StateKind::ALL.iter())
        .map(|kind| (kind.name().to_owned(), Vec::with_capacity(deltas.len())))
        .collect();
    let mut running = [0_i64; StateKind::COUNT];
    for delta in deltas {
        for kind in StateKind::ALL {
            running[kind.index()] += delta[kind.index()];
            let count = u32::try_from(running[kind.index()].max(0)).unwrap_or(u32::MAX);
            if let Some(counts) = states.get_mut(kind.name()) {
                counts.push(count);
            }
        }
    }
    TrendJson {
        from_ms,
        step_ms,
        states,
    }
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

    #[tokio::test]
    async fn one_read_answers_everyone_asking_the_same_and_a_failure_is_not_kept() {
        let trends = Trends::default();
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let key = |teams: Vec<i64>| Key {
            from_ms: 0,
            step_ms: 60_000,
            points: 3,
            teams,
            sites: Vec::new(),
            within: Some(vec![(vec![1], vec![])]),
            reasons: BTreeSet::new(),
        };
        let read = |fail: bool| {
            let reads = &reads;
            async move {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if fail {
                    Err(Error::Unavailable("busy".into()))
                } else {
                    Ok(fold(&[], 0, 60_000, 3, &BTreeSet::new()))
                }
            }
        };
        let failed = trends.answer(key(vec![7]), read(true)).await;
        assert!(failed.is_err());
        let (a, b) = tokio::join!(
            trends.answer(key(vec![7]), read(false)),
            trends.answer(key(vec![7]), read(false)),
        );
        assert_eq!(a.expect("read"), b.expect("shared"));
        let other = trends.answer(key(vec![8]), read(false)).await;
        assert!(other.is_ok());
        // The failed read, one for the two asking together, one for the other key.
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 3);
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
