//! The four views. Lists lay out only the rows that are visible, so 20,000 agents cost what
//! a screenful costs.

use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, StrokeKind, Ui, Vec2};
use egui_extras::{Column, TableBuilder};
use monti_protocol::floor::Floor;
use monti_protocol::model::{AgentId, SiteId, StateKind, TeamId};

use crate::app::Cache;
use crate::model::{self, CardKey, Level, Matrix, Row};
use crate::settings::{
    Columns, Sort, SortKey, SummaryBy, SummaryKey, SummaryView, TableColumn, ViewKind,
};
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
) -> (Option<Drill>, Option<AgentId>) {
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
    let mut opened = None;
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
                                if tile(ui, floor, cache, &row, now_ms, dark) {
                                    opened = Some(row.id);
                                }
                            }
                        });
                    }
                }
            }
        });
    (drill, opened)
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
            ui.label(model::plural(card.members.len() as u64, "agent"));
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
pub fn tile_label(floor: &Floor, row: &Row, level: Level, now_ms: u64) -> String {
    let name = floor
        .agent(row.id)
        .map_or("?", |record| record.info.name.as_str());
    let reason = reason_label(floor, row)
        .map(|label| format!(" ({label})"))
        .unwrap_or_default();
    format!(
        "{name}, {}{reason}, {}, {}",
        model::state_label(row.status.kind()),
        model::time_in_state_text(row.status.kind(), row.since_ms, now_ms),
        level.word()
    )
}

/// A time in state with the threshold's mark in front: `!! 16:02`; an offline agent's
/// `since 18:05`.
fn time_text(level: Level, row: &Row, now_ms: u64) -> String {
    let text = model::time_in_state_text(row.status.kind(), row.since_ms, now_ms);
    match level {
        Level::Normal => text,
        level => format!("{} {text}", style::level_mark(level)),
    }
}

fn reason_label<'a>(floor: &'a Floor, row: &Row) -> Option<&'a str> {
    let reason = row.status.reason()?;
    floor.reason(reason).map(|reason| reason.label.as_str())
}

/// An agent tile: state mark and colour, name, reason, live time in state, threshold border.
/// True when clicked (or Enter pressed on it): open the agent's day.
fn tile(ui: &mut Ui, floor: &Floor, cache: &Cache, row: &Row, now_ms: u64, dark: bool) -> bool {
    let (rect, response) = ui.allocate_exact_size(style::TILE, Sense::click());
    if !ui.is_rect_visible(rect) {
        return false;
    }
    let kind = row.status.kind();
    let elapsed = now_ms.saturating_sub(row.since_ms);
    let level = cache.levels.level(row.team, row.status, elapsed);
    let painter = ui.painter();
    let text_colour = ui.visuals().strong_text_color();
    painter.rect_filled(rect, 4.0, style::tile_fill(kind, dark));
    let stripe = Rect::from_min_size(rect.min, Vec2::new(5.0, rect.height()));
    painter.rect_filled(stripe, 2.0, style::state_colour(kind));
    if let Some(colour) = style::level_colour(level, dark) {
        let width = if level == Level::Red { 3.0 } else { 2.0 };
        painter.rect_stroke(rect, 4.0, Stroke::new(width, colour), StrokeKind::Inside);
    }
    let left = rect.left() + 11.0;
    let name = floor
        .agent(row.id)
        .map_or("?", |record| record.info.name.as_str());
    // Nothing is drawn over the tile's edge or over the time: a long name, reason or "since"
    // is cut where the room ends.
    // (Within the scroll area's clip, which a tile half scrolled out of view is cut by.)
    let clip = |room: Rect| painter.with_clip_rect(painter.clip_rect().intersect(room));
    let inside = Rect::from_min_max(rect.min, egui::pos2(rect.right() - 7.0, rect.bottom()));
    clip(inside).text(
        egui::pos2(left, rect.top() + 5.0),
        Align2::LEFT_TOP,
        name,
        FontId::proportional(14.0),
        text_colour,
    );
    let time_colour = style::level_colour(level, dark).unwrap_or(text_colour);
    let mut time = time_text(level, row, now_ms);
    let mut laid = painter.layout_no_wrap(time.clone(), FontId::monospace(14.0), time_colour);
    // "since 30 Nov 16:05" and the state's mark do not both fit: the time without "since".
    let mark_room = left + 24.0 + laid.size().x + 7.0;
    if mark_room > rect.right() && time.contains("since ") {
        time = time.replacen("since ", "", 1);
        laid = painter.layout_no_wrap(time, FontId::monospace(14.0), time_colour);
    }
    let time = laid;
    let time_at = egui::pos2(
        rect.right() - 7.0 - time.size().x,
        rect.bottom() - 6.0 - time.size().y,
    );
    let state = match reason_label(floor, row) {
        Some(reason) => format!("{} · {reason}", model::state_mark(kind)),
        None => format!("{} · {}", model::state_mark(kind), model::state_label(kind)),
    };
    let room = Rect::from_min_max(rect.min, egui::pos2(time_at.x - 6.0, rect.bottom()));
    let font = FontId::proportional(12.5);
    let mut state = painter.layout_no_wrap(state, font.clone(), text_colour);
    if left + state.size().x > room.right() {
        // A long time ("since 30 Nov 16:05") leaves room for the state's mark alone.
        state = painter.layout_no_wrap(model::state_mark(kind).to_owned(), font, text_colour);
    }
    let state_at = egui::pos2(left, rect.bottom() - 6.0 - state.size().y);
    clip(room).galley(state_at, state, text_colour);
    painter.galley(time_at, time, text_colour);
    response.widget_info(|| {
        egui::WidgetInfo::labeled(
            egui::Role::ListItem,
            true,
            tile_label(floor, row, level, now_ms),
        )
    });
    if response.has_focus() {
        let focus = ui.visuals().selection.stroke;
        ui.painter()
            .rect_stroke(rect.expand(2.0), 5.0, focus, StrokeKind::Outside);
    }
    response.on_hover_text("Open this agent's day").clicked()
}

/// Teams by sites with counts per state; a click on a name or a cell drills down. The header
/// (site names and each site's total) stays in place while the teams scroll, and the teams'
/// names and totals stay in place while the sites scroll sideways: two tables side by side,
/// the sites' in a horizontal scroll area, scrolled down together.
pub fn matrix(ui: &mut Ui, matrix: &Matrix) -> Option<Drill> {
    let mut drill = None;
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 10.0;
    let header_height = row_height * 2.0 + 4.0;
    let layout = egui::Layout::left_to_right(egui::Align::Center);
    // Both tables start at the offset either was scrolled to last frame.
    let offset_id = ui.scope_id().with("matrix-offset");
    let offset = ui
        .data(|data| data.get_temp::<f32>(offset_id))
        .unwrap_or(0.0);
    let height = ui.available_height();
    let names_width = (ui.available_width() * 0.4).clamp(200.0, 300.0);
    let mut scrolled = [offset; 2];
    ui.horizontal_top(|ui| {
        ui.allocate_ui_with_layout(
            egui::vec2(names_width, height),
            egui::Layout::top_down(egui::Align::Min),
            |ui| {
                let output = TableBuilder::new(ui)
                    .id_salt("matrix-teams")
                    .striped(true)
                    .cell_layout(layout)
                    .vertical_scroll_offset(offset)
                    .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::AlwaysHidden)
                    .column(Column::remainder().at_least(110.0).clip(true))
                    .column(Column::exact(100.0))
                    .header(header_height, |mut header| {
                        header.col(|ui| {
                            ui.vertical(|ui| {
                                ui.strong("Team \\ Site");
                                ui.strong("All teams");
                            });
                        });
                        header.col(|ui| {
                            ui.vertical(|ui| {
                                ui.strong("Total");
                                total_counts(ui, &matrix.total);
                            });
                        });
                    })
                    .body(|body| {
                        body.rows(row_height, matrix.teams.len(), |mut row| {
                            let (team_id, team) = &matrix.teams[row.index()];
                            row.col(|ui| {
                                if ui.button(RichText::new(team).strong()).clicked() {
                                    drill = Some(Drill {
                                        team: Some(team.clone()),
                                        site: None,
                                    });
                                }
                            });
                            row.col(|ui| {
                                if let Some(counts) = matrix.team_totals.get(team_id) {
                                    total_counts(ui, counts);
                                }
                            });
                        });
                    });
                scrolled[0] = output.state.clamped_offset().y;
            },
        );
        let rest = egui::vec2(ui.available_width(), height);
        ui.allocate_ui_with_layout(rest, egui::Layout::top_down(egui::Align::Min), |ui| {
            egui::ScrollArea::horizontal()
                .id_salt("matrix-sites-sideways")
                .show(ui, |ui| {
                    let output = TableBuilder::new(ui)
                        .id_salt("matrix-sites")
                        .striped(true)
                        .cell_layout(layout)
                        .vertical_scroll_offset(offset)
                        .columns(Column::auto().at_least(110.0), matrix.sites.len())
                        .header(header_height, |mut header| {
                            for (site_id, site) in &matrix.sites {
                                header.col(|ui| {
                                    ui.vertical(|ui| {
                                        if ui.button(RichText::new(site).strong()).clicked() {
                                            drill = Some(Drill {
                                                team: None,
                                                site: Some(site.clone()),
                                            });
                                        }
                                        if let Some(counts) = matrix.site_totals.get(site_id) {
                                            total_counts(ui, counts);
                                        }
                                    });
                                });
                            }
                        })
                        .body(|body| {
                            body.rows(row_height, matrix.teams.len(), |mut row| {
                                let (team_id, team) = &matrix.teams[row.index()];
                                for (site_id, site) in &matrix.sites {
                                    row.col(|ui| {
                                        cell(
                                            ui,
                                            matrix,
                                            (*team_id, team),
                                            (*site_id, site),
                                            &mut drill,
                                        )
                                    });
                                }
                            });
                        });
                    scrolled[1] = output.state.clamped_offset().y;
                });
        });
    });
    // Whichever table moved this frame sets where both are next frame.
    let moved = scrolled.into_iter().find(|y| (y - offset).abs() > 0.5);
    if let Some(y) = moved {
        ui.data_mut(|data| data.insert_temp(offset_id, y));
        ui.ctx().request_repaint();
    }
    drill
}

/// One cell of the matrix: the counts of a team at a site; a click shows them.
fn cell(
    ui: &mut Ui,
    matrix: &Matrix,
    (team_id, team): (TeamId, &String),
    (site_id, site): (SiteId, &String),
    drill: &mut Option<Drill>,
) {
    let Some(cell) = matrix.cells.get(&(team_id, site_id)) else {
        ui.label("—");
        return;
    };
    let response = (ui.horizontal(|ui| counts(ui, cell)).response).interact(Sense::click());
    let total: u32 = cell.iter().sum();
    let response = response.on_hover_text(format!(
        "{team} at {site}: {}; click to show them",
        model::plural(total, "agent")
    ));
    if response.clicked() {
        *drill = Some(Drill {
            team: Some(team.clone()),
            site: Some(site.clone()),
        });
    }
}

/// A total: the number of agents, with the counts per state on hover (in the cells they
/// would make every column twice as wide).
fn total_counts(ui: &mut Ui, counts_per_state: &[u32; StateKind::COUNT]) {
    let total: u32 = counts_per_state.iter().sum();
    let by_state: Vec<String> = (StateKind::ALL.into_iter())
        .filter(|kind| counts_per_state[kind.index()] > 0)
        .map(|kind| {
            format!(
                "{} {}",
                model::state_label(kind),
                counts_per_state[kind.index()]
            )
        })
        .collect();
    ui.label(RichText::new(total.to_string()).strong().monospace())
        .on_hover_text(by_state.join(", "));
}

/// The Summary view: a row per site, team or team at a site with how many agents are in each
/// state and the longest time in it; the header and the totals row stay in place, and a click
/// on a column orders by it.
pub fn summary(
    ui: &mut Ui,
    summary: &model::Summary,
    view: &mut SummaryView,
    now_ms: u64,
) -> Option<Drill> {
    let mut drill = None;
    ui.horizontal(|ui| {
        for by in SummaryBy::ALL {
            if ui.selectable_label(view.by == by, by.label()).clicked() {
                view.by = by;
            }
        }
    });
    let kinds: Vec<StateKind> = (StateKind::ALL.into_iter())
        .filter(|kind| summary.total.counts[kind.index()] > 0)
        .collect();
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 8.0;
    let arrow = |view: &SummaryView, keys: &[SummaryKey]| match keys.contains(&view.key) {
        false => "",
        true if view.descending => " ⏷",
        true => " ⏶",
    };
    let cell = |row: &model::SummaryRow, kind: StateKind| {
        let count = row.counts[kind.index()];
        match row.oldest_since_ms[kind.index()] {
            // How long offline agents have been away says little; the count is the news.
            Some(since) if count > 0 && kind != StateKind::Offline => format!(
                "{count} · {}",
                model::duration_text(now_ms.saturating_sub(since))
            ),
            _ => count.to_string(),
        }
    };
    let mut clicked = None;
    egui::ScrollArea::horizontal().show(ui, |ui| {
        TableBuilder::new(ui)
            .striped(true)
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .column(Column::initial(220.0).at_least(120.0).clip(true))
            .column(Column::auto().at_least(70.0))
            .columns(Column::auto().at_least(96.0), kinds.len())
            .header(row_height * 2.0 + 4.0, |mut header| {
                header.col(|ui| {
                    ui.vertical(|ui| {
                        let title = format!("Name{}", arrow(view, &[SummaryKey::Name]));
                        if ui.button(RichText::new(title).strong()).clicked() {
                            clicked = Some(SummaryKey::Name);
                        }
                        ui.strong("All shown");
                    });
                });
                header.col(|ui| {
                    ui.vertical(|ui| {
                        let title = format!("Agents{}", arrow(view, &[SummaryKey::Total]));
                        if ui.button(RichText::new(title).strong()).clicked() {
                            clicked = Some(SummaryKey::Total);
                        }
                        ui.strong(summary.total.total().to_string());
                    });
                });
                for &kind in &kinds {
                    header.col(|ui| {
                        ui.vertical(|ui| {
                            let keys = [SummaryKey::Count(kind), SummaryKey::Longest(kind)];
                            let longest = view.key == SummaryKey::Longest(kind);
                            let title = format!(
                                "{} {}{}{}",
                                model::state_mark(kind),
                                model::state_label(kind),
                                if longest { ", longest" } else { "" },
                                arrow(view, &keys)
                            );
                            let button = egui::Button::new(
                                RichText::new(title).color(Color32::WHITE).strong(),
                            )
                            .fill(style::state_colour(kind));
                            if ui
                                .add(button)
                                .on_hover_text(
                                    "How many, then the longest in it. Click: most first; \
                                     again: fewest first; again: the longest in it first",
                                )
                                .clicked()
                            {
                                clicked = Some(SummaryKey::Count(kind));
                            }
                            ui.strong(cell(&summary.total, kind));
                        });
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, summary.rows.len(), |mut table_row| {
                    let row = &summary.rows[table_row.index()];
                    table_row.col(|ui| {
                        let name = egui::Button::new(&row.name).frame(false);
                        if ui
                            .add(name)
                            .on_hover_text("Show only these agents")
                            .clicked()
                        {
                            drill = Some(Drill {
                                team: row.team_name.clone(),
                                site: row.site_name.clone(),
                            });
                        }
                    });
                    table_row.col(|ui| {
                        ui.label(RichText::new(row.total().to_string()).monospace());
                    });
                    for &kind in &kinds {
                        table_row.col(|ui| {
                            ui.label(RichText::new(cell(row, kind)).monospace());
                        });
                    }
                });
            });
    });
    if let Some(column) = clicked {
        *view = view.clicked(column);
    }
    drill
}

/// A menu that stays open while its fields are used (egui's closes on any click in it); its
/// actions close it themselves.
pub(crate) fn menu(ui: &mut Ui, title: &str, content: impl FnOnce(&mut Ui)) {
    let config = egui::containers::menu::MenuConfig::new()
        .close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
    egui::containers::menu::MenuButton::new(title)
        .config(config)
        .ui(ui, content);
}

/// The Agents table: the name, then the chosen columns (a Columns menu above it), each header
/// ordering by its column. Returns the agent whose name was clicked.
pub fn table(
    ui: &mut Ui,
    floor: &Floor,
    cache: &Cache,
    (sort, columns): (&mut Sort, &mut Columns),
    now_ms: u64,
) -> Option<AgentId> {
    let mut opened = None;
    let rows = &cache.selection.rows;
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    ui.horizontal(|ui| {
        menu(ui, "Columns", |ui| {
            for column in TableColumn::ALL {
                let mut shown = columns.0.contains(&column);
                if ui.checkbox(&mut shown, column.label()).changed() {
                    if shown {
                        columns.0.insert(column);
                    } else {
                        columns.0.remove(&column);
                    }
                }
            }
        });
    });
    let header = |ui: &mut Ui, sort: &mut Sort, key: SortKey, title: &str| {
        let arrow = match (sort.key == key, sort.descending) {
            (false, _) => "",
            (true, false) => " ⏶",
            (true, true) => " ⏷",
        };
        if ui
            .add(egui::Button::new(RichText::new(format!("{title}{arrow}")).strong()).frame(false))
            .clicked()
        {
            *sort = if sort.key == key {
                Sort {
                    key,
                    descending: !sort.descending,
                }
            } else {
                key.first()
            };
        }
    };
    let shown: Vec<TableColumn> = columns.shown().collect();
    let mut builder = TableBuilder::new(ui)
        .id_salt(("agents-table", &shown))
        .striped(true)
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::initial(200.0).at_least(120.0).clip(true));
    for (i, column) in shown.iter().enumerate() {
        let width = match column {
            TableColumn::Team => Column::initial(140.0).clip(true),
            TableColumn::Site | TableColumn::Since => Column::initial(100.0).clip(true),
            TableColumn::State => Column::initial(120.0),
            TableColumn::Reason => Column::initial(110.0).clip(true),
            TableColumn::Time => Column::initial(120.0),
        };
        builder = builder.column(if i + 1 == shown.len() {
            Column::remainder().at_least(90.0)
        } else {
            width
        });
    }
    builder
        .header(row_height + 4.0, |mut row| {
            row.col(|ui| header(ui, sort, SortKey::Name, "Name"));
            for column in &shown {
                row.col(|ui| header(ui, sort, column.sort_key(), column.label()));
            }
        })
        .body(|body| {
            body.rows(row_height, rows.len(), |mut table_row| {
                let row = rows[table_row.index()];
                let name = floor
                    .agent(row.id)
                    .map_or("?", |record| record.info.name.as_str());
                table_row.col(|ui| {
                    let name = egui::Button::new(name).frame(false);
                    if ui
                        .add(name)
                        .on_hover_text("Open this agent's day")
                        .clicked()
                    {
                        opened = Some(row.id);
                    }
                });
                for column in &shown {
                    table_row.col(|ui| table_cell(ui, floor, cache, &row, *column, now_ms));
                }
            });
        });
    opened
}

/// One cell of the Agents table.
fn table_cell(
    ui: &mut Ui,
    floor: &Floor,
    cache: &Cache,
    row: &Row,
    column: TableColumn,
    now_ms: u64,
) {
    let kind = row.status.kind();
    match column {
        TableColumn::Team => {
            ui.label(floor.team(row.team).map_or("", |team| team.name.as_str()));
        }
        TableColumn::Site => {
            ui.label(floor.site(row.site).map_or("", |site| site.name.as_str()));
        }
        TableColumn::State => {
            ui.label(
                RichText::new(format!(
                    "{} {}",
                    model::state_mark(kind),
                    model::state_label(kind)
                ))
                .color(Color32::WHITE)
                .background_color(style::state_colour(kind)),
            );
        }
        TableColumn::Reason => {
            ui.label(reason_label(floor, row).unwrap_or(""));
        }
        TableColumn::Since => {
            ui.label(RichText::new(crate::agent::clock_text(row.since_ms)).monospace());
        }
        TableColumn::Time => {
            let elapsed = now_ms.saturating_sub(row.since_ms);
            let level = cache.levels.level(row.team, row.status, elapsed);
            let mut text = RichText::new(time_text(level, row, now_ms)).monospace();
            if let Some(colour) = style::level_colour(level, ui.visuals().dark_mode) {
                text = text.color(colour).strong();
            }
            ui.label(text);
        }
    }
}

/// What a person did in the Queues view or the queue strip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueAction {
    /// Show only the agents who serve this queue (again: all agents).
    Select(String),
    /// Show the agents who serve this queue, in the Teams view.
    ShowAgents(String),
}

/// A service level in percent with the goal beside it, or a dash before anything counts.
fn level_text(level: Option<f64>, goal: u8) -> String {
    level.map_or_else(
        || format!("– / {goal} %"),
        |level| format!("{:.0} % / {goal} %", level * 100.0),
    )
}

/// How many queues the strip names; the rest are counted (the Queues view lists them all).
const STRIP_QUEUES: usize = 6;

/// The queue strip, one line: the queues needing attention and those with contacts waiting,
/// worst first, as chips with their waiting contacts and oldest wait; a click shows only the
/// agents who serve that queue. The selected queue always has its chip.
pub fn queue_strip(
    ui: &mut Ui,
    rows: &[crate::queues::QueueRow],
    selected: Option<&str>,
    now_ms: u64,
) -> Option<QueueAction> {
    let mut action = None;
    let mut busy: Vec<&crate::queues::QueueRow> = (rows.iter())
        .filter(|row| {
            row.level() != Level::Normal || row.waiting > 0 || selected == Some(row.name.as_str())
        })
        .collect();
    // Worst first, then the most waiting, then the longest wait.
    busy.sort_by(|a, b| {
        (b.level().cmp(&a.level()))
            .then(b.waiting.cmp(&a.waiting))
            .then(a.oldest_since_ms.cmp(&b.oldest_since_ms))
    });
    let mut named: Vec<&crate::queues::QueueRow> =
        busy.iter().take(STRIP_QUEUES).copied().collect();
    if let Some(chosen) = busy.iter().find(|row| selected == Some(row.name.as_str()))
        && !named.iter().any(|row| row.name == chosen.name)
    {
        named.push(chosen);
    }
    let waiting: u32 = rows.iter().map(|row| row.waiting).sum();
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("Queues · {waiting} waiting")).strong());
        for row in &named {
            let oldest = row
                .oldest_since_ms
                .map(|since| format!(" · {}", model::duration_text(now_ms.saturating_sub(since))))
                .unwrap_or_default();
            let level = row.level();
            let text = format!(
                "{}{}: {}{oldest}",
                style::level_mark(level),
                row.name,
                row.waiting
            );
            let mut text = RichText::new(text).strong();
            if let Some(colour) = style::level_colour(level, ui.visuals().dark_mode) {
                text = text.color(colour);
            }
            let on = selected == Some(row.name.as_str());
            let response = ui
                .add(egui::Button::selectable(on, text))
                .on_hover_text(format!(
                    "{}: {} waiting, service level today {}; show only the agents who serve it",
                    row.name,
                    row.waiting,
                    level_text(row.service_level, row.goal_percent)
                ));
            if response.clicked() {
                action = Some(QueueAction::Select(row.name.clone()));
            }
        }
        let rest = rows.len() - named.len();
        if rest > 0 {
            ui.label(RichText::new(format!("+{rest} more in the Queues view")));
        }
    });
    action
}

/// The Queues view: a card per queue, those needing attention first.
pub fn queue_cards(
    ui: &mut Ui,
    rows: &[crate::queues::QueueRow],
    rules: &monti_protocol::queue::QueueRules,
    now_ms: u64,
    thresholds: &mut std::collections::BTreeMap<String, crate::settings::QueueThresholds>,
) -> Option<QueueAction> {
    let mut action = None;
    if rows.is_empty() {
        ui.label("This floor has no queues yet: they appear with the first contact events or a roster sync that declares them.");
        return None;
    }
    ui.label(RichText::new(format!(
        "Service level = {} · today since midnight · recent = last {} min",
        rules.service_level.formula(),
        rules.recent_minutes
    )));
    let card_width = 300.0;
    let columns = ((ui.available_width() / (card_width + style::GAP)).floor() as usize).max(1);
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .id_salt("queues")
        .show(ui, |ui| {
            for chunk in rows.chunks(columns) {
                ui.horizontal_top(|ui| {
                    for row in chunk {
                        if let Some(wanted) = queue_card(ui, row, card_width, now_ms, thresholds) {
                            action = Some(wanted);
                        }
                    }
                });
                ui.add_space(style::GAP);
            }
        });
    action
}

fn queue_card(
    ui: &mut Ui,
    row: &crate::queues::QueueRow,
    width: f32,
    now_ms: u64,
    thresholds: &mut std::collections::BTreeMap<String, crate::settings::QueueThresholds>,
) -> Option<QueueAction> {
    let mut action = None;
    let level = row.level();
    let stroke = match style::level_colour(level, ui.visuals().dark_mode) {
        Some(colour) => Stroke::new(3.0, colour),
        None => ui.visuals().widgets.noninteractive.bg_stroke,
    };
    let description = format!(
        "{}{}: {} waiting, service level {}",
        style::level_mark(level),
        row.name,
        row.waiting,
        level_text(row.service_level, row.goal_percent)
    );
    let card = egui::Frame::group(ui.style())
        .stroke(stroke)
        .inner_margin(8.0)
        .show(ui, |ui| {
            ui.set_width(width);
            ui.vertical(|ui| {
                queue_card_body(ui, row, width, now_ms);
                ui.horizontal(|ui| {
                    if ui.button("Show agents").clicked() {
                        action = Some(QueueAction::ShowAgents(row.name.clone()));
                    }
                    ui.menu_button("Thresholds", |ui| {
                        threshold_editor(ui, row, thresholds);
                    });
                });
            });
        });
    card.response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Group, true, &description));
    action
}

/// A queue card's figures: the three that matter most in large type, then the day's counts.
fn queue_card_body(ui: &mut Ui, row: &crate::queues::QueueRow, width: f32, now_ms: u64) {
    use crate::queues::Problem;
    let level = row.level();
    ui.horizontal(|ui| {
        ui.add(
            egui::Label::new(
                RichText::new(format!("{}{}", style::level_mark(level), row.name))
                    .strong()
                    .size(16.0),
            )
            .truncate(),
        );
        ui.label(RichText::new(row.channel));
    });
    let dark = ui.visuals().dark_mode;
    let flagged = |problem: Problem| {
        row.problems
            .contains(&problem)
            .then(|| style::level_colour(problem.level(), dark))
            .flatten()
    };
    let oldest = row.oldest_since_ms.map_or("–".to_owned(), |since| {
        model::duration_text(now_ms.saturating_sub(since))
    });
    let service_level = row
        .service_level
        .map_or("–".to_owned(), |level| format!("{:.0} %", level * 100.0));
    let figure = width / 3.0 - 6.0;
    ui.horizontal(|ui| {
        let waiting = row.waiting.to_string();
        big_figure(ui, figure, "waiting", waiting, flagged(Problem::Waiting));
        big_figure(ui, figure, "oldest", oldest, flagged(Problem::Oldest));
        let title = format!("SL · goal {} %", row.goal_percent);
        big_figure(
            ui,
            figure,
            &title,
            service_level,
            flagged(Problem::ServiceLevel),
        );
    });
    let today = &row.today;
    ui.label(format!(
        "Today: {} offered · {} answered · {} abandoned",
        today.offered, today.answered, today.abandoned
    ));
    let secs = |value: Option<f64>| value.map_or("–".to_owned(), |v| format!("{v:.0} s"));
    ui.label(format!(
        "ASA {} · AHT {} · target {} s",
        secs(today.asa_secs()),
        secs(today.aht_secs()),
        row.target_secs
    ));
    let recent = &row.recent;
    ui.label(RichText::new(format!(
        "Recent: {} offered · {} answered · {} abandoned",
        recent.offered, recent.answered, recent.abandoned
    )));
    if let Some(agents) = row.agents {
        ui.label(format!(
            "Agents: {} signed in · {} available · {} on contacts",
            agents.staffed, agents.available, agents.on_contact
        ));
    }
}

/// A figure in large type under its title, in a column `width` wide.
fn big_figure(ui: &mut Ui, width: f32, label: &str, value: String, colour: Option<Color32>) {
    ui.allocate_ui(Vec2::new(width, 56.0), |ui| {
        ui.set_width(width);
        ui.vertical(|ui| {
            ui.add(egui::Label::new(RichText::new(label)).truncate());
            let mut text = RichText::new(value).size(26.0).strong().monospace();
            if let Some(colour) = colour {
                text = text.color(colour);
            }
            ui.label(text);
        });
    });
}

/// One queue's thresholds, edited in place; a queue left at the defaults is not stored.
fn threshold_editor(
    ui: &mut Ui,
    row: &crate::queues::QueueRow,
    thresholds: &mut std::collections::BTreeMap<String, crate::settings::QueueThresholds>,
) {
    let mut edited = row.thresholds;
    let mut waiting_on = edited.waiting_above.is_some();
    let mut waiting = edited.waiting_above.unwrap_or(5);
    ui.horizontal(|ui| {
        ui.checkbox(&mut waiting_on, "More waiting than");
        ui.add_enabled(
            waiting_on,
            egui::DragValue::new(&mut waiting).range(0..=10_000),
        );
    });
    edited.waiting_above = waiting_on.then_some(waiting);
    let mut oldest_set = edited.oldest_above_secs.is_some();
    let mut oldest = edited.oldest_above_secs.unwrap_or(row.target_secs);
    ui.horizontal(|ui| {
        ui.checkbox(&mut oldest_set, "A contact waiting longer than (s)")
            .on_hover_text("Unticked: the queue's service-level target");
        ui.add_enabled(
            oldest_set,
            egui::DragValue::new(&mut oldest).range(1..=86_400),
        );
    });
    edited.oldest_above_secs = oldest_set.then_some(oldest);
    ui.checkbox(&mut edited.below_goal, "Service level below the goal");
    if edited != row.thresholds {
        if edited == crate::settings::QueueThresholds::default() {
            thresholds.remove(&row.name);
        } else {
            thresholds.insert(row.name.clone(), edited);
        }
    }
}
