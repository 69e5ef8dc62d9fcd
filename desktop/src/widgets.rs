//! The four views. Lists lay out only the rows that are visible, so 20,000 agents cost what
//! a screenful costs.

use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, StrokeKind, Ui, Vec2};
use egui_extras::{Column, TableBuilder};
use monti_protocol::floor::Floor;
use monti_protocol::model::StateKind;

use crate::app::Cache;
use crate::model::{self, CardKey, Level, Matrix, Row};
use crate::settings::{Sort, SortKey, ViewKind};
use crate::style;

/// A drill-down the person asked for: show only this team and/or site.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drill {
    /// The team's name.
    pub team: Option<String>,
    /// The site's name.
    pub site: Option<String>,
}

/// One line of the tile view: a card's header or a row of its tiles.
#[derive(Clone, Copy, Debug)]
enum Line {
    Header { card: usize },
    Tiles { card: usize, from: usize },
}

/// Teams or sites as cards of agent tiles.
pub fn tiles(
    ui: &mut Ui,
    floor: &Floor,
    cache: &Cache,
    view: ViewKind,
    now_ms: u64,
) -> Option<Drill> {
    let width = ui.available_width();
    let columns = (((width + style::GAP) / (style::TILE.x + style::GAP)).floor() as usize).max(1);
    let mut lines = Vec::new();
    for (index, card) in cache.cards.iter().enumerate() {
        lines.push(Line::Header { card: index });
        for from in (0..card.members.len()).step_by(columns) {
            lines.push(Line::Tiles { card: index, from });
        }
    }
    let dark = ui.visuals().dark_mode;
    let mut drill = None;
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .id_salt(view.label())
        .show_rows(ui, style::TILE.y, lines.len(), |ui, range| {
            for line in &lines[range] {
                match *line {
                    Line::Header { card } => {
                        if let Some(wanted) = card_header(ui, &cache.cards[card]) {
                            drill = Some(wanted);
                        }
                    }
                    Line::Tiles { card, from } => {
                        let members = &cache.cards[card].members;
                        let to = (from + columns).min(members.len());
                        ui.horizontal(|ui| {
                            ui.spacing_mut().item_spacing.x = style::GAP;
                            for &member in &members[from..to] {
                                let row = cache.selection.rows[member as usize];
                                tile(ui, floor, cache, &row, now_ms, dark);
                            }
                        });
                    }
                }
            }
        });
    drill
}

fn card_header(ui: &mut Ui, card: &model::Card) -> Option<Drill> {
    let mut drill = None;
    ui.allocate_ui(Vec2::new(ui.available_width(), style::TILE.y), |ui| {
        ui.horizontal_centered(|ui| {
            let kind = match card.key {
                CardKey::Team(_) => "team",
                CardKey::Site(_) => "site",
            };
            let button =
                egui::Button::new(RichText::new(&card.name).size(18.0).strong()).frame(false);
            if ui
                .add(button)
                .on_hover_text(format!("Show only this {kind}"))
                .clicked()
            {
                drill = Some(match card.key {
                    CardKey::Team(_) => Drill {
                        team: Some(card.name.clone()),
                        site: None,
                    },
                    CardKey::Site(_) => Drill {
                        team: None,
                        site: Some(card.name.clone()),
                    },
                });
            }
            ui.label(format!("{} agents", card.members.len()));
            counts(ui, &card.counts);
        });
    });
    drill
}

/// Counts per state as small coloured marks, zero counts left out.
pub fn counts(ui: &mut Ui, counts: &[u32; StateKind::COUNT]) {
    for kind in StateKind::ALL {
        let count = counts[kind.index()];
        if count == 0 {
            continue;
        }
        ui.label(
            RichText::new(format!("{} {count}", model::state_mark(kind)))
                .color(Color32::WHITE)
                .background_color(style::state_colour(kind))
                .monospace(),
        )
        .on_hover_text(model::state_label(kind));
    }
}

/// What a tile says, in words: for screen readers and tests.
pub fn tile_label(floor: &Floor, row: &Row, level: Level, elapsed_ms: u64) -> String {
    let name = floor
        .agent(row.id)
        .map_or("?", |record| record.info.name.as_str());
    let reason = reason_label(floor, row)
        .map(|label| format!(" ({label})"))
        .unwrap_or_default();
    format!(
        "{name}, {}{reason}, {}, {}",
        model::state_label(row.status.kind()),
        model::duration_text(elapsed_ms),
        level.word()
    )
}

/// A time in state with the threshold's mark in front: `!! 16:02`.
fn time_text(level: Level, elapsed_ms: u64) -> String {
    match level {
        Level::Normal => model::duration_text(elapsed_ms),
        level => format!(
            "{} {}",
            style::level_mark(level),
            model::duration_text(elapsed_ms)
        ),
    }
}

fn reason_label<'a>(floor: &'a Floor, row: &Row) -> Option<&'a str> {
    let reason = row.status.reason()?;
    floor.reason(reason).map(|reason| reason.label.as_str())
}

/// An agent tile: state mark and colour, name, reason, live time in state, threshold border.
fn tile(ui: &mut Ui, floor: &Floor, cache: &Cache, row: &Row, now_ms: u64, dark: bool) {
    let (rect, response) = ui.allocate_exact_size(style::TILE, Sense::hover());
    if !ui.is_rect_visible(rect) {
        return;
    }
    let kind = row.status.kind();
    let elapsed = now_ms.saturating_sub(row.since_ms);
    let level = cache.levels.level(row.team, kind, elapsed);
    let painter = ui.painter();
    let text_colour = ui.visuals().strong_text_color();
    painter.rect_filled(rect, 4.0, style::tile_fill(kind, dark));
    let stripe = Rect::from_min_size(rect.min, Vec2::new(5.0, rect.height()));
    painter.rect_filled(stripe, 2.0, style::state_colour(kind));
    if let Some(colour) = style::level_colour(level) {
        let width = if level == Level::Red { 3.0 } else { 2.0 };
        painter.rect_stroke(rect, 4.0, Stroke::new(width, colour), StrokeKind::Inside);
    }
    let left = rect.left() + 11.0;
    let name = floor
        .agent(row.id)
        .map_or("?", |record| record.info.name.as_str());
    painter.text(
        egui::pos2(left, rect.top() + 5.0),
        Align2::LEFT_TOP,
        name,
        FontId::proportional(14.0),
        text_colour,
    );
    let state = match reason_label(floor, row) {
        Some(reason) => format!("{} · {reason}", model::state_mark(kind)),
        None => format!("{} · {}", model::state_mark(kind), model::state_label(kind)),
    };
    painter.text(
        egui::pos2(left, rect.bottom() - 6.0),
        Align2::LEFT_BOTTOM,
        state,
        FontId::proportional(12.5),
        text_colour,
    );
    let time = time_text(level, elapsed);
    painter.text(
        egui::pos2(rect.right() - 7.0, rect.bottom() - 6.0),
        Align2::RIGHT_BOTTOM,
        time,
        FontId::monospace(14.0),
        style::level_colour(level).unwrap_or(text_colour),
    );
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::ListItem,
            true,
            tile_label(floor, row, level, elapsed),
        )
    });
}

/// Teams by sites with counts per state; a click on a name or a cell drills down.
pub fn matrix(ui: &mut Ui, matrix: &Matrix) -> Option<Drill> {
    let mut drill = None;
    egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
        egui::Grid::new("matrix")
            .striped(true)
            .spacing([14.0, 8.0])
            .show(ui, |ui| {
                ui.label(RichText::new("Team \\ Site").strong());
                for (_, site) in &matrix.sites {
                    if ui.button(RichText::new(site).strong()).clicked() {
                        drill = Some(Drill {
                            team: None,
                            site: Some(site.clone()),
                        });
                    }
                }
                ui.end_row();
                for (team_id, team) in &matrix.teams {
                    if ui.button(RichText::new(team).strong()).clicked() {
                        drill = Some(Drill {
                            team: Some(team.clone()),
                            site: None,
                        });
                    }
                    for (site_id, site) in &matrix.sites {
                        match matrix.cells.get(&(*team_id, *site_id)) {
                            Some(cell) => {
                                let response = ui
                                    .horizontal(|ui| counts(ui, cell))
                                    .response
                                    .interact(Sense::click());
                                let total: u32 = cell.iter().sum();
                                let response = response.on_hover_text(format!(
                                    "{team} at {site}: {total} agents; click to show them"
                                ));
                                if response.clicked() {
                                    drill = Some(Drill {
                                        team: Some(team.clone()),
                                        site: Some(site.clone()),
                                    });
                                }
                            }
                            None => {
                                ui.label("—");
                            }
                        }
                    }
                    ui.end_row();
                }
            });
    });
    drill
}

/// The sortable agent table; a click on a column header sorts by it (again: reversed).
pub fn table(ui: &mut Ui, floor: &Floor, cache: &Cache, sort: &mut Sort, now_ms: u64) {
    let rows = &cache.selection.rows;
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let header = |ui: &mut Ui, sort: &mut Sort, key: Option<SortKey>, title: &str| {
        let Some(key) = key else {
            ui.strong(title);
            return;
        };
        let arrow = match (sort.key == key, sort.descending) {
            (false, _) => "",
            (true, false) => " ⏶",
            (true, true) => " ⏷",
        };
        if ui
            .add(egui::Button::new(RichText::new(format!("{title}{arrow}")).strong()).frame(false))
            .clicked()
        {
            *sort = Sort {
                key,
                descending: sort.key == key && !sort.descending,
            };
        }
    };
    TableBuilder::new(ui)
        .striped(true)
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::initial(200.0).at_least(120.0).clip(true))
        .column(Column::initial(140.0).clip(true))
        .column(Column::initial(100.0).clip(true))
        .column(Column::initial(120.0))
        .column(Column::initial(110.0).clip(true))
        .column(Column::remainder().at_least(90.0))
        .header(row_height + 4.0, |mut row| {
            row.col(|ui| header(ui, sort, Some(SortKey::Name), "Name"));
            row.col(|ui| header(ui, sort, Some(SortKey::Team), "Team"));
            row.col(|ui| header(ui, sort, None, "Site"));
            row.col(|ui| header(ui, sort, Some(SortKey::State), "State"));
            row.col(|ui| header(ui, sort, None, "Reason"));
            row.col(|ui| header(ui, sort, Some(SortKey::TimeInState), "Time in state"));
        })
        .body(|body| {
            body.rows(row_height, rows.len(), |mut table_row| {
                let row = rows[table_row.index()];
                let kind = row.status.kind();
                let elapsed = now_ms.saturating_sub(row.since_ms);
                let level = cache.levels.level(row.team, kind, elapsed);
                let name = floor
                    .agent(row.id)
                    .map_or("?", |record| record.info.name.as_str());
                table_row.col(|ui| {
                    ui.label(name);
                });
                table_row.col(|ui| {
                    ui.label(floor.team(row.team).map_or("", |team| team.name.as_str()));
                });
                table_row.col(|ui| {
                    ui.label(floor.site(row.site).map_or("", |site| site.name.as_str()));
                });
                table_row.col(|ui| {
                    ui.label(
                        RichText::new(format!(
                            "{} {}",
                            model::state_mark(kind),
                            model::state_label(kind)
                        ))
                        .color(Color32::WHITE)
                        .background_color(style::state_colour(kind)),
                    );
                });
                table_row.col(|ui| {
                    ui.label(reason_label(floor, &row).unwrap_or(""));
                });
                table_row.col(|ui| {
                    let text = time_text(level, elapsed);
                    let mut text = RichText::new(text).monospace();
                    if let Some(colour) = style::level_colour(level) {
                        text = text.color(colour).strong();
                    }
                    ui.label(text);
                });
            });
        });
}
