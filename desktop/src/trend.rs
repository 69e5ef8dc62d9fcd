//! The Trend view: how many agents were in each state over the last half hour, two hours or
//! shift, stacked, for what the filter shows (the floor, teams, sites, a queue's teams, reasons).
//!
//! The points come from the server's stored history (`GET /api/v1/trend`), asked for again when
//! the filter or the period changes and whenever a new point is due; the right-hand end is the
//! floor as the stream has it now, so the chart is live between reads.

use egui::{Align2, Color32, FontId, Mesh, Pos2, Rect, RichText, Sense, Stroke, Ui, Vec2, pos2};
use monti_protocol::floor::Floor;
use monti_protocol::model::StateKind;
use monti_protocol::rest::{SiteJson, TeamJson, TrendJson};

use crate::agent::clock_text;
use crate::model::{filtered_counts, plural, state_label};
use crate::net::{Session, TrendWanted};
use crate::settings::{Filter, TrendSpan};
use crate::style;

/// The states drawn, bottom up (the order of [`StateKind::ALL`]: working states first, then
/// those that take agents off the phones). Offline agents are not drawn (they would dwarf the
/// floor); the legend counts them.
fn drawn(filter: &Filter) -> Vec<StateKind> {
    (StateKind::ALL.into_iter())
        .filter(|kind| *kind != StateKind::Offline && filter.states.contains(*kind))
        .collect()
}

/// What to ask the server for: the filter's teams, sites and reasons that the server has named
/// to this caller, over `span` ending `now_ms`. `None` when the filter names teams or sites
/// but none the server knows (nothing would be counted).
pub fn wanted(
    floor: &Floor,
    filter: &Filter,
    lists: (&[TeamJson], &[SiteJson]),
    span: TrendSpan,
    now_ms: u64,
) -> Option<TrendWanted> {
    let (known_teams, known_sites) = lists;
    let team_known = |name: &String| {
        known_teams.iter().any(|team| &team.name == name)
            || floor.teams().any(|team| &team.name == name)
    };
    let site_known = |name: &String| {
        known_sites.iter().any(|site| &site.name == name)
            || floor.sites().any(|site| &site.name == name)
    };
    let mut teams: Vec<String> = filter
        .teams
        .iter()
        .filter(|n| team_known(n))
        .cloned()
        .collect();
    // A queue narrows the teams to those that serve it, as on the other views.
    let queue = (filter.queue.as_ref())
        .and_then(|name| floor.queues().find(|queue| &queue.info.name == name));
    if let Some(queue) = queue {
        let serving: Vec<String> = (queue.info.teams.iter())
            .filter_map(|team| floor.team(*team))
            .map(|team| team.name.clone())
            .filter(|name| filter.teams.is_empty() || filter.teams.contains(name))
            .collect();
        if serving.is_empty() {
            return None;
        }
        teams = serving;
    }
    let sites: Vec<String> = filter
        .sites
        .iter()
        .filter(|n| site_known(n))
        .cloned()
        .collect();
    if (teams.is_empty() && !filter.teams.is_empty())
        || (sites.is_empty() && !filter.sites.is_empty())
    {
        return None;
    }
    let reasons = (floor.reasons())
        .filter(|reason| filter.reasons.contains(&reason.label))
        .map(|reason| reason.code.clone())
        .collect();
    let step = span.step_ms();
    Some(TrendWanted {
        teams,
        sites,
        reasons,
        from_ms: now_ms.saturating_sub(span.ms()) / step * step,
        to_ms: now_ms,
    })
}

/// Whether to ask again: what is asked for changed, or a new point is due (at most every 30
/// seconds: between reads the stream keeps the end live).
pub fn due(last: Option<&TrendWanted>, wanted: &TrendWanted, span: TrendSpan) -> bool {
    let Some(last) = last else { return true };
    let every = span.step_ms().max(30_000);
    !same_question(last, wanted) || wanted.to_ms >= last.to_ms + every
}

/// Whether two requests ask about the same agents over periods of the same length (a later
/// answer to one stands in for the other).
fn same_question(a: &TrendWanted, b: &TrendWanted) -> bool {
    let length = |wanted: &TrendWanted| wanted.to_ms.saturating_sub(wanted.from_ms);
    // `from_ms` is rounded down to a step, so lengths of one span differ by less than a step.
    (a.teams == b.teams)
        && (a.sites == b.sites)
        && (a.reasons == b.reasons)
        && length(a).abs_diff(length(b)) < 120_000.min(length(a) / 4)
}

/// The points drawn: the stored ones and the floor now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// When each point was taken, server ms, ascending.
    pub times: Vec<u64>,
    /// Agents per state at each point, indexed by [`StateKind::index`].
    pub counts: Vec<[u32; StateKind::COUNT]>,
}

impl Series {
    /// The stored points of `answer`, then `live` at `now_ms` (when it is after them).
    pub fn new(answer: &TrendJson, live: [u32; StateKind::COUNT], now_ms: u64) -> Series {
        let mut series = Series::default();
        for i in 0..answer.len() {
            series.times.push(answer.at_ms(i));
            series
                .counts
                .push(StateKind::ALL.map(|kind| answer.count(kind, i)));
        }
        if series.times.last().is_none_or(|last| *last < now_ms) {
            series.times.push(now_ms);
            series.counts.push(live);
        }
        series
    }

    /// The most agents drawn at one point.
    fn peak(&self, drawn: &[StateKind]) -> u32 {
        (self.counts.iter())
            .map(|counts| drawn.iter().map(|kind| counts[kind.index()]).sum::<u32>())
            .max()
            .unwrap_or(0)
    }

    /// The point nearest `at_ms`.
    fn nearest(&self, at_ms: u64) -> Option<usize> {
        (0..self.times.len()).min_by_key(|&i| self.times[i].abs_diff(at_ms))
    }
}

/// What the view asks of the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Show another period.
    Span(TrendSpan),
}

/// The Trend view: the period switcher, what is counted, the chart and its legend.
pub fn show(
    ui: &mut Ui,
    session: &Session,
    floor: &Floor,
    filter: &Filter,
    (span, asked_for): (TrendSpan, Option<&TrendWanted>),
    now_ms: u64,
) -> Option<Asked> {
    let mut asked = None;
    let live = filtered_counts(floor, filter);
    let drawn = drawn(filter);
    ui.horizontal_wrapped(|ui| {
        for choice in TrendSpan::ALL {
            if ui
                .selectable_label(span == choice, choice.label())
                .clicked()
            {
                asked = Some(Asked::Span(choice));
            }
        }
        ui.separator();
        ui.label(counted_text(filter));
    });
    // An answer about other agents or another period is not shown while the new one comes.
    let answer = (session.trend.as_ref())
        .filter(|trend| asked_for.is_some_and(|asked| same_question(&trend.wanted, asked)));
    if asked_for.is_none() {
        ui.label("No agent matches the filters.");
        return asked;
    }
    let series = match answer.map(|trend| &trend.counts) {
        None => {
            ui.label("Reading the trend…");
            return asked;
        }
        Some(Err(why)) => {
            ui.colored_label(style::STALE, format!("No trend: {why}"));
            return asked;
        }
        Some(Ok(answer)) => Series::new(answer, live, now_ms),
    };
    legend(ui, &drawn, &live);
    chart(ui, &series, &drawn, span);
    asked
}

/// Which agents are counted, in words.
fn counted_text(filter: &Filter) -> String {
    let list = |names: &std::collections::BTreeSet<String>| {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let mut parts = Vec::new();
    if let Some(queue) = &filter.queue {
        parts.push(format!("teams serving {queue}"));
    }
    if !filter.teams.is_empty() {
        parts.push(list(&filter.teams));
    }
    if !filter.sites.is_empty() {
        parts.push(format!("at {}", list(&filter.sites)));
    }
    if !filter.reasons.is_empty() {
        parts.push(format!("not ready for {}", list(&filter.reasons)));
    }
    if parts.is_empty() {
        "The whole floor".to_owned()
    } else {
        crate::app::capitalised(&parts.join(" "))
    }
}

fn legend(ui: &mut Ui, drawn: &[StateKind], live: &[u32; StateKind::COUNT]) {
    ui.horizontal_wrapped(|ui| {
        for kind in drawn.iter().rev() {
            let (chip, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
            ui.painter()
                .rect_filled(chip, 2.0, style::state_colour(*kind));
            ui.label(format!("{} {}", state_label(*kind), live[kind.index()]));
            ui.add_space(6.0);
        }
        let offline = live[StateKind::Offline.index()];
        if offline > 0 {
            ui.label(
                RichText::new(format!("({} offline, not drawn)", plural(offline, "agent"))).weak(),
            );
        }
    });
}

/// Room left of the chart for the counts and under it for the times.
const AXIS: Vec2 = Vec2::new(44.0, 20.0);

/// The stacked chart: one band per state, the time under the pointer named with its counts.
fn chart(ui: &mut Ui, series: &Series, drawn: &[StateKind], span: TrendSpan) {
    let size = Vec2::new(
        ui.available_width().max(200.0),
        ui.available_height().max(160.0),
    );
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let plot = Rect::from_min_max(
        pos2(rect.left() + AXIS.x, rect.top() + 8.0),
        pos2(rect.right() - 8.0, rect.bottom() - AXIS.y),
    );
    let (Some(&first), Some(&last)) = (series.times.first(), series.times.last()) else {
        return;
    };
    let start = first.min(last.saturating_sub(span.ms()));
    let width_ms = last.saturating_sub(start).max(1) as f32;
    let x = |ms: u64| plot.left() + ms.saturating_sub(start) as f32 / width_ms * plot.width();
    let peak = nice_ceiling(series.peak(drawn).max(1));
    let y = |count: u32| plot.bottom() - count as f32 / peak as f32 * plot.height();
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    let ink = visuals.text_color();
    let grid = Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color);
    // Counts: a line at each step of a round number.
    let count_step = nice_step(peak, 5);
    for count in (0..=peak).step_by(count_step as usize) {
        painter.hline(plot.x_range(), y(count), grid);
        let at = pos2(plot.left() - 6.0, y(count));
        painter.text(
            at,
            Align2::RIGHT_CENTER,
            count,
            FontId::proportional(12.0),
            ink,
        );
    }
    // Times: a label at each whole multiple of a round number of minutes.
    let minutes = time_step_minutes(width_ms as u64, plot.width());
    let tick = minutes * 60_000;
    let mut at = start.div_ceil(tick) * tick;
    while at <= last {
        painter.vline(x(at), plot.y_range(), grid);
        let label = pos2(x(at), plot.bottom() + 3.0);
        painter.text(
            label,
            Align2::CENTER_TOP,
            clock_text(at),
            FontId::proportional(12.0),
            ink,
        );
        at += tick;
    }
    painter.add(bands(series, drawn, &x, &y));
    let now_total: u32 = (series.counts.last())
        .map(|counts| drawn.iter().map(|kind| counts[kind.index()]).sum())
        .unwrap_or(0);
    let description = format!(
        "Agents per state from {} to {}: {} now",
        clock_text(start),
        clock_text(last),
        plural(now_total, "agent")
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &description));
    let Some(pointer) = response
        .hover_pos()
        .filter(|pointer| plot.contains(*pointer))
    else {
        return;
    };
    let at_ms = start + ((pointer.x - plot.left()) / plot.width() * width_ms) as u64;
    let Some(i) = series.nearest(at_ms) else {
        return;
    };
    painter.vline(x(series.times[i]), plot.y_range(), Stroke::new(1.5, ink));
    let counts = &series.counts[i];
    let mut lines = vec![clock_text(series.times[i])];
    lines.extend(
        (drawn.iter().rev())
            .map(|kind| format!("{}: {}", state_label(*kind), counts[kind.index()])),
    );
    response.on_hover_text_at_pointer(lines.join("\n"));
}

/// The stacked bands as one mesh: for each state, a quadrilateral per pair of neighbouring
/// points from the states under it to its own top (convex, so the mesh needs no tessellation).
fn bands(
    series: &Series,
    drawn: &[StateKind],
    x: &impl Fn(u64) -> f32,
    y: &impl Fn(u32) -> f32,
) -> Mesh {
    let mut mesh = Mesh::default();
    let mut below = vec![0_u32; series.times.len()];
    for kind in drawn {
        let colour: Color32 = style::state_colour(*kind);
        let top: Vec<u32> = (below.iter().zip(&series.counts))
            .map(|(under, counts)| under + counts[kind.index()])
            .collect();
        for i in 1..series.times.len() {
            let (x0, x1) = (x(series.times[i - 1]), x(series.times[i]));
            let corners = [
                Pos2::new(x0, y(below[i - 1])),
                Pos2::new(x0, y(top[i - 1])),
                Pos2::new(x1, y(top[i])),
                Pos2::new(x1, y(below[i])),
            ];
            let first = mesh.vertices.len() as u32;
            for corner in corners {
                mesh.colored_vertex(corner, colour);
            }
            mesh.add_triangle(first, first + 1, first + 2);
            mesh.add_triangle(first, first + 2, first + 3);
        }
        below = top;
    }
    mesh
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... at or above `n`.
fn nice_ceiling(n: u32) -> u32 {
    let mut base = 1_u32;
    loop {
        for factor in [1, 2, 5] {
            if base.saturating_mul(factor) >= n {
                return base.saturating_mul(factor);
            }
        }
        base = base.saturating_mul(10);
    }
}

/// A round step that divides `0..=peak` into at most `lines` steps.
fn nice_step(peak: u32, lines: u32) -> u32 {
    nice_ceiling(peak.div_ceil(lines).max(1))
}

/// Minutes between time labels: the first round number that leaves 90 points between them.
fn time_step_minutes(width_ms: u64, width_points: f32) -> u64 {
    let labels = (width_points / 90.0).max(1.0) as u64;
    [1, 2, 5, 10, 15, 30, 60, 120, 240]
        .into_iter()
        .find(|minutes| width_ms / (minutes * 60_000) <= labels)
        .unwrap_or(480)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use monti_protocol::model::StateKind;

    use super::*;
    use crate::sample;

    fn answer(from_ms: u64, available: Vec<u32>, on_call: Vec<u32>) -> TrendJson {
        TrendJson {
            from_ms,
            step_ms: 60_000,
            states: BTreeMap::from([
                ("available".to_owned(), available),
                ("on_call".to_owned(), on_call),
            ]),
        }
    }

    #[test]
    fn the_series_ends_with_the_floor_now() {
        let mut live = [0; StateKind::COUNT];
        live[StateKind::Available.index()] = 7;
        let stored = answer(0, vec![1, 2, 3], vec![4, 5, 6]);
        let series = Series::new(&stored, live, 150_000);
        assert_eq!(series.times, [0, 60_000, 120_000, 150_000]);
        assert_eq!(series.counts[2][StateKind::OnCall.index()], 6);
        assert_eq!(series.counts[3], live);
        assert_eq!(series.peak(&[StateKind::Available, StateKind::OnCall]), 9);
        assert_eq!(series.nearest(100_000), Some(2));
        // A last stored point at now is not doubled.
        assert_eq!(Series::new(&stored, live, 120_000).times.len(), 3);
    }

    #[test]
    fn round_numbers_for_the_axes() {
        assert_eq!(
            [1, 3, 7, 10, 11, 240, 999].map(nice_ceiling),
            [1, 5, 10, 10, 20, 500, 1000]
        );
        assert_eq!(nice_step(500, 5), 100);
        assert_eq!(nice_step(20, 5), 5);
        assert_eq!(time_step_minutes(2 * 3_600_000, 900.0), 15);
        assert_eq!(time_step_minutes(30 * 60_000, 900.0), 5);
        assert_eq!(time_step_minutes(8 * 3_600_000, 300.0), 240);
    }

    #[test]
    fn the_request_names_what_the_filter_shows_and_the_server_knows() {
        let floor = sample::floor(200, 7, sample::NOW_MS);
        let team = floor.teams().next().expect("a team").name.clone();
        let site = floor.sites().next().expect("a site").name.clone();
        let reason = floor.reasons().next().expect("a reason").clone();
        let filter = Filter {
            teams: [team.clone(), "Gone".to_owned()].into(),
            sites: [site.clone()].into(),
            reasons: [reason.label.clone()].into(),
            ..Filter::default()
        };
        let now = sample::NOW_MS;
        let asked = wanted(&floor, &filter, (&[], &[]), TrendSpan::TwoHours, now)
            .expect("something to count");
        assert_eq!(asked.teams, [team]);
        assert_eq!(asked.sites, [site]);
        assert_eq!(asked.reasons, [reason.code]);
        assert_eq!(asked.to_ms, now);
        assert_eq!(asked.from_ms % 60_000, 0);
        assert!(now - asked.from_ms >= 2 * 3_600_000);
        // Only names nobody knows: nothing to ask for.
        let gone = Filter {
            teams: ["Gone".to_owned()].into(),
            ..Filter::default()
        };
        assert_eq!(
            super::wanted(&floor, &gone, (&[], &[]), TrendSpan::Shift, now),
            None
        );
        // The whole floor: no names at all.
        let all = super::wanted(
            &floor,
            &Filter::default(),
            (&[], &[]),
            TrendSpan::Shift,
            now,
        )
        .expect("the floor");
        assert!(all.teams.is_empty() && all.sites.is_empty() && all.reasons.is_empty());
    }

    #[test]
    fn a_new_read_is_due_when_the_filter_changes_or_a_point_is_due() {
        let floor = sample::floor(200, 7, sample::NOW_MS);
        let now = sample::NOW_MS;
        let span = TrendSpan::TwoHours;
        let first = wanted(&floor, &Filter::default(), (&[], &[]), span, now).expect("floor");
        assert!(due(None, &first, span));
        let soon = wanted(&floor, &Filter::default(), (&[], &[]), span, now + 5_000);
        assert!(!due(Some(&first), &soon.expect("floor"), span));
        let later = wanted(&floor, &Filter::default(), (&[], &[]), span, now + 60_000);
        assert!(due(Some(&first), &later.expect("floor"), span));
        let team = floor.teams().next().expect("a team").name.clone();
        let narrower = Filter {
            teams: [team].into(),
            ..Filter::default()
        };
        let narrower = wanted(&floor, &narrower, (&[], &[]), span, now).expect("a team");
        assert!(due(Some(&first), &narrower, span));
        let longer = wanted(
            &floor,
            &Filter::default(),
            (&[], &[]),
            TrendSpan::Shift,
            now,
        );
        assert!(due(Some(&first), &longer.expect("floor"), TrendSpan::Shift));
    }
}
