//! The wallboard: fullscreen pages that rotate on a timer, readable from across the room, with a
//! clock, the page's name, a progress bar to the next page, an overlay whenever the data is not
//! live, a slow shift of the whole layout against burn-in, and optional night dimming.
//!
//! Which pages, in which order, for how long and for which teams and sites comes from the
//! server's configuration for this wallboard (`/api/v1/config/wallboards/{name}`), unless a local
//! file overrides it. Everything is drawn in a 1920x1080 frame of reference scaled to the screen,
//! so 1080p and 4K screens show the same layout.

use chrono::{Local, TimeZone, Timelike};
use egui::{Align, Align2, Color32, FontId, Key, Layout, Rect, RichText, Ui, UiBuilder, Vec2};
use monti_client::follow::Link;
use monti_protocol::floor::Floor;
use monti_protocol::model::{StateKind, StateSet};
use monti_protocol::rest::{PageKind, WallboardConfig};

use crate::app::{Cache, Clock, Feed, Shown};
use crate::model::{self, Level};
use crate::net::{Session, SignIn, lock};
use crate::queues::{self, Problem, QueueRow};
use crate::repaint::until_next_second;
use crate::settings::{Filter, Sort, ViewKind};
use crate::{signin, style};

/// The wallboard's state: which configuration, which page, since when.
#[derive(Clone, Debug)]
pub struct Kiosk {
    /// A configuration from a local file, which wins over the server's.
    pub local: Option<WallboardConfig>,
    page: usize,
    page_started_ms: Option<u64>,
    /// How many screenfuls the page shown has (as its last frame found): each gets the
    /// page's whole time, so that a long list is not flipped through too fast to read.
    page_screens: usize,
    resized_at_ms: Option<u64>,
}

impl Kiosk {
    /// A wallboard; `local` overrides the server's configuration.
    pub fn new(local: Option<WallboardConfig>) -> Kiosk {
        Kiosk {
            local,
            page: 0,
            page_started_ms: None,
            page_screens: 1,
            resized_at_ms: None,
        }
    }

    /// Whether the window may be resized to the screen now: at most every ten seconds, so that
    /// a window manager that keeps the window smaller is not fought every frame.
    pub fn may_resize(&self, now_ms: u64) -> bool {
        self.resized_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= 10_000)
    }

    /// Notes that the window was resized.
    pub fn resized(&mut self, now_ms: u64) {
        self.resized_at_ms = Some(now_ms);
    }

    /// One frame of the wallboard screen: the sign-in code while signing in, else the page of
    /// the moment, with the window kept as large as the screen and no cursor.
    pub(crate) fn show(&mut self, ui: &mut Ui, feed: &mut Feed, session: &Session, clock: Clock) {
        ui.ctx().set_cursor_icon(egui::CursorIcon::None);
        let now_ms = clock.now_ms();
        if self.may_resize(now_ms) && fill_the_screen(ui.ctx()) {
            self.resized(now_ms);
        }
        match &session.sign_in {
            SignIn::NotNeeded | SignIn::SignedIn => self.pages(ui, feed, session, now_ms),
            SignIn::Checking | SignIn::Needed { .. } | SignIn::Code(_) | SignIn::Browser { .. } => {
                egui::CentralPanel::no_frame().show(ui, |ui| sign_in(ui, session, now_ms));
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(500));
            }
        }
    }

    /// The pages: the configuration's scope, no search, every state; they turn by themselves
    /// and with the arrow keys.
    fn pages(&mut self, ui: &mut Ui, feed: &mut Feed, session: &Session, now_ms: u64) {
        let mut config = self.config(session);
        let floor_handle = session.floor.clone();
        let floor = lock(&floor_handle);
        // A floor without queues (no contact source) skips the queue pages, unless that
        // leaves nothing to show.
        if floor.queues().next().is_none()
            && config
                .pages
                .iter()
                .any(|page| page.kind != PageKind::Queues)
        {
            config.pages.retain(|page| page.kind != PageKind::Queues);
        }
        feed.prepare(&floor, session, Kiosk::shown(&config));
        let (page, progress) = self.turn(&config, now_ms, arrow_step(ui.ctx()));
        let frame = Frame {
            floor: &floor,
            cache: &feed.cache,
            session,
            config: &config,
            page,
            progress,
            now_ms,
            server_now_ms: now_ms.saturating_add_signed(session.clock_offset_ms),
            screens: std::cell::Cell::new(1),
        };
        egui::CentralPanel::no_frame().show(ui, |ui| {
            frame.show(ui);
            self.set_page_screens(frame.screens.get());
            ui.allocate_rect(ui.max_rect(), egui::Sense::hover())
                .widget_info(|| {
                    egui::WidgetInfo::labeled(
                        egui::Role::Pane,
                        true,
                        format!("Page {}", page.title()),
                    )
                });
        });
        // The clock, the times and the progress bar move once a second; news comes at most
        // twice a second (see `DataRepaint::WALLBOARD`).
        ui.ctx().request_repaint_after(until_next_second(now_ms));
    }

    /// What a wallboard shows: its configuration's scope, every state, no search. The pages
    /// group by themselves; the table view keeps the cache from grouping too.
    pub fn shown(config: &WallboardConfig) -> Shown {
        Shown {
            filter: Filter {
                teams: config.teams.iter().cloned().collect(),
                sites: config.sites.iter().cloned().collect(),
                // Configured only for teams or sites this device may not see: nothing, not all.
                states: if config.shows_nothing() {
                    StateSet::NONE
                } else {
                    StateSet::ALL
                },
                queue: None,
                reasons: Default::default(),
            },
            view: ViewKind::Agents,
            sort: Sort::default(),
            search: String::new(),
            summary: Default::default(),
        }
    }

    /// The configuration in force: the local file's, else the server's, else every page.
    pub fn config(&self, session: &Session) -> WallboardConfig {
        self.local
            .clone()
            .or_else(|| session.wallboard.clone())
            .unwrap_or_default()
    }

    /// The page shown now and how far it is through its time (0 to 1), after moving on when its
    /// time is up (or when an arrow key was pressed). A page of several screenfuls lasts its
    /// time once per screenful.
    pub fn turn(&mut self, config: &WallboardConfig, now_ms: u64, step: i32) -> (PageKind, f32) {
        let pages = config.pages.len().max(1);
        let started = *self.page_started_ms.get_or_insert(now_ms);
        self.page %= pages;
        if step != 0 {
            self.page = (self.page as i64 + i64::from(step)).rem_euclid(pages as i64) as usize;
            self.page_started_ms = Some(now_ms);
            self.page_screens = 1;
        } else if now_ms.saturating_sub(started) >= self.duration_ms(config) {
            self.page = (self.page + 1) % pages;
            // Late frames (a busy machine) do not shorten the next page.
            self.page_started_ms = Some(now_ms);
            self.page_screens = 1;
        }
        let page = config
            .pages
            .get(self.page)
            .map_or(PageKind::Totals, |page| page.kind);
        let elapsed = now_ms.saturating_sub(self.page_started_ms.unwrap_or(now_ms));
        let progress = (elapsed as f32 / self.duration_ms(config) as f32).clamp(0.0, 1.0);
        (page, progress)
    }

    /// How long the page shown lasts: its time for each of its screenfuls.
    fn duration_ms(&self, config: &WallboardConfig) -> u64 {
        let seconds = config.pages.get(self.page).map_or(15, |page| page.seconds);
        u64::from(seconds.max(1)) * 1000 * self.page_screens.max(1) as u64
    }

    /// Tells the rotation how many screenfuls the page shown has (the frame finds out).
    pub fn set_page_screens(&mut self, screens: usize) {
        self.page_screens = screens.max(1);
    }
}

/// Reads a local wallboard configuration (JSON, or TOML when the name ends in `.toml`),
/// refusing anything the server would refuse.
pub fn read_config(path: &std::path::Path) -> anyhow::Result<WallboardConfig> {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let what = || format!("{} is not a wallboard configuration", path.display());
    let config: WallboardConfig = if path.extension().is_some_and(|ext| ext == "toml") {
        toml::from_str(&text).with_context(what)?
    } else {
        serde_json::from_str(&text).with_context(what)?
    };
    config
        .check()
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    Ok(config)
}

/// The text colour on the wallboard's black background.
const INK: Color32 = Color32::from_gray(240);
/// Secondary text.
const DIM_INK: Color32 = Color32::from_gray(170);

/// Draws the wallboard frame. `scale` is the screen height over 1080 points.
pub(crate) struct Frame<'a> {
    pub floor: &'a Floor,
    pub cache: &'a Cache,
    pub session: &'a Session,
    pub config: &'a WallboardConfig,
    pub page: PageKind,
    pub progress: f32,
    /// Local clock, ms since the epoch.
    pub now_ms: u64,
    /// Server clock, as the floor's times count.
    pub server_now_ms: u64,
    /// How many screenfuls the page turned out to have (set while drawing it).
    pub screens: std::cell::Cell<usize>,
}

/// Makes the window as large as the screen where fullscreen is not honoured (an X server
/// without a window manager, as on many kiosk PCs, where the window keeps its first size even
/// though it asked to be fullscreen). Returns whether it asked for a resize.
fn fill_the_screen(ctx: &egui::Context) -> bool {
    let (monitor, inner) = ctx.input(|input| {
        let viewport = input.viewport();
        (viewport.monitor_size, viewport.inner_rect)
    });
    if let (Some(monitor), Some(inner)) = (monitor, inner)
        && (inner.size() - monitor).length() > 1.0
    {
        ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::Pos2::ZERO));
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(monitor));
        return true;
    }
    false
}

/// Which way the arrow keys turned the pages this frame.
pub fn arrow_step(ctx: &egui::Context) -> i32 {
    ctx.input(|input| {
        i32::from(input.key_pressed(Key::ArrowRight)) - i32::from(input.key_pressed(Key::ArrowLeft))
    })
}

fn local_time(ms: u64) -> chrono::DateTime<Local> {
    Local
        .timestamp_millis_opt(ms as i64)
        .single()
        .unwrap_or_else(Local::now)
}

/// A shift of at most 4 points that moves one step every two minutes, so that nothing stays on
/// the same pixels for hours.
pub fn burn_in_shift(now_ms: u64) -> Vec2 {
    const STEPS: [(f32, f32); 8] = [
        (0.0, 0.0),
        (4.0, 0.0),
        (4.0, 4.0),
        (0.0, 4.0),
        (-4.0, 4.0),
        (-4.0, 0.0),
        (-4.0, -4.0),
        (0.0, -4.0),
    ];
    let (x, y) = STEPS[(now_ms / 120_000 % STEPS.len() as u64) as usize];
    Vec2::new(x, y)
}

impl Frame<'_> {
    /// The whole wallboard.
    pub fn show(&self, ui: &mut Ui) {
        // The black background is the window's clear colour (`App::clear_color`).
        let screen = ui.max_rect();
        let scale = (screen.height() / 1080.0).max(0.3);
        let inner = screen
            .shrink(8.0 * scale)
            .translate(burn_in_shift(self.now_ms) * scale);
        ui.scope_builder(UiBuilder::new().max_rect(inner), |ui| {
            self.header(ui, scale);
            let body = ui.available_rect_before_wrap();
            ui.scope_builder(UiBuilder::new().max_rect(body), |ui| {
                if !self.floor.is_ready() {
                    centred(ui, "Waiting for the floor…", 48.0 * scale, DIM_INK);
                    return;
                }
                match self.page {
                    PageKind::Totals => self.totals(ui, scale),
                    PageKind::Sites => self.group_rows(ui, scale, true),
                    PageKind::Teams => self.group_rows(ui, scale, false),
                    PageKind::Attention => self.attention(ui, scale),
                    PageKind::Queues => self.queues(ui, scale),
                }
            });
            self.stale_overlay(ui, body, scale);
        });
        self.night(ui, screen);
    }

    fn header(&self, ui: &mut Ui, scale: f32) {
        let live = self.session.link != Link::Connecting;
        ui.horizontal(|ui| {
            ui.label(
                RichText::new(self.page.title())
                    .size(54.0 * scale)
                    .color(INK)
                    .strong(),
            );
            let scope = scope_text(self.config);
            ui.label(RichText::new(scope).size(28.0 * scale).color(DIM_INK));
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                let clock = local_time(self.now_ms).format("%H:%M:%S").to_string();
                ui.label(
                    RichText::new(clock)
                        .size(54.0 * scale)
                        .color(INK)
                        .monospace(),
                );
                let (colour, text) = if live && self.session.degraded.is_some() {
                    (style::PENDING, "MAY BE STALE")
                } else if live {
                    (style::LIVE, "LIVE")
                } else {
                    (style::STALE, "NOT LIVE")
                };
                egui::Frame::new()
                    .fill(colour)
                    .corner_radius(6.0 * scale)
                    .inner_margin(egui::Margin::symmetric(
                        (12.0 * scale) as i8,
                        (4.0 * scale) as i8,
                    ))
                    .show(ui, |ui| {
                        ui.label(
                            RichText::new(text)
                                .size(30.0 * scale)
                                .color(Color32::WHITE)
                                .strong(),
                        );
                    });
            });
        });
        let (bar, _) = ui.allocate_exact_size(
            Vec2::new(ui.available_width(), 8.0 * scale),
            egui::Sense::hover(),
        );
        ui.painter()
            .rect_filled(bar, 2.0 * scale, Color32::from_gray(40));
        let mut done = bar;
        done.set_width(bar.width() * self.progress);
        ui.painter().rect_filled(done, 2.0 * scale, DIM_INK);
        ui.add_space(12.0 * scale);
    }

    /// Big numbers per state for everything the wallboard covers.
    fn totals(&self, ui: &mut Ui, scale: f32) {
        let counts = &self.cache.selection.counts;
        let body = ui.available_rect_before_wrap();
        let kinds = shown_kinds(counts);
        // The longest-standing agent of each state, whose level colours the headline.
        let mut longest_rows: [Option<&model::Row>; StateKind::COUNT] = [None; StateKind::COUNT];
        for row in &self.cache.selection.rows {
            let slot = &mut longest_rows[row.status.kind().index()];
            if slot.is_none_or(|longest| row.since_ms < longest.since_ms) {
                *slot = Some(row);
            }
        }
        let columns = 3;
        let rows = kinds.len().div_ceil(columns);
        let gap = 16.0 * scale;
        let size = Vec2::new(
            (body.width() - gap * (columns - 1) as f32) / columns as f32,
            (body.height() - gap * rows as f32 - 60.0 * scale) / rows as f32,
        );
        for (index, kind) in kinds.iter().enumerate() {
            let (row, column) = (index / columns, index % columns);
            let min =
                body.min + Vec2::new(column as f32 * (size.x + gap), row as f32 * (size.y + gap));
            let rect = Rect::from_min_size(min, size);
            let count = counts[kind.index()];
            // The headline beside the count: how long the longest-standing agent has been in
            // the state (the longest ring, hold or break on the floor).
            let longest = longest_rows[kind.index()].map(|row| {
                let elapsed = self.server_now_ms.saturating_sub(row.since_ms);
                let level = self.cache.levels.level(row.team, row.status, elapsed);
                (model::duration_text(elapsed), level)
            });
            let mut description = format!("{}: {count}", model::state_label(*kind));
            if let Some((longest, level)) = &longest {
                description.push_str(&format!(", longest {longest}, {}", level.word()));
            }
            describe(ui, rect, kind, description);
            let painter = ui.painter();
            painter.rect_filled(rect, 10.0 * scale, style::tile_fill(*kind, true));
            painter.rect_filled(
                Rect::from_min_size(rect.min, Vec2::new(14.0 * scale, rect.height())),
                4.0 * scale,
                style::state_colour(*kind),
            );
            painter.text(
                rect.left_top() + Vec2::new(34.0 * scale, 18.0 * scale),
                Align2::LEFT_TOP,
                format!(
                    "{}  {}",
                    model::state_mark(*kind),
                    model::state_label(*kind)
                ),
                FontId::proportional(40.0 * scale),
                INK,
            );
            if let Some((longest, level)) = longest {
                // Past its threshold, the headline takes the threshold's mark and colour.
                let mark = match level {
                    Level::Normal => String::new(),
                    level => format!("{} ", style::level_mark(level)),
                };
                painter.text(
                    rect.left_top() + Vec2::new(34.0 * scale, 72.0 * scale),
                    Align2::LEFT_TOP,
                    format!("{mark}longest {longest}"),
                    FontId::proportional(34.0 * scale),
                    style::level_colour(level, true).unwrap_or(INK),
                );
            }
            painter.text(
                rect.right_bottom() - Vec2::new(28.0 * scale, 8.0 * scale),
                Align2::RIGHT_BOTTOM,
                count.to_string(),
                FontId::proportional((size.y * 0.62).min(220.0 * scale)),
                INK,
            );
        }
        let signed_in: u32 = kinds.iter().map(|kind| counts[kind.index()]).sum();
        ui.painter().text(
            body.left_bottom(),
            Align2::LEFT_BOTTOM,
            format!(
                "{} signed in · {} offline",
                model::plural(signed_in, "agent"),
                counts[StateKind::Offline.index()]
            ),
            FontId::proportional(34.0 * scale),
            DIM_INK,
        );
    }

    /// A row per site (or a card per team) with its counts per state (see [`shown_kinds`]).
    fn group_rows(&self, ui: &mut Ui, scale: f32, by_site: bool) {
        let cards = model::cards(self.floor, &self.cache.selection, by_site);
        let body = ui.available_rect_before_wrap();
        let kinds = shown_kinds(&self.cache.selection.counts);
        if cards.is_empty() {
            centred(ui, "No agents signed in", 48.0 * scale, DIM_INK);
            return;
        }
        // Rows at least 64 points high, at most two columns of them; more groups than fit are
        // shown a screenful at a time, each for its share of the page's time.
        let header = 56.0 * scale;
        let per_column = (((body.height() - header) / (64.0 * scale)).floor() as usize).max(1);
        let columns = cards.len().div_ceil(per_column).clamp(1, 2);
        let screenful = per_column * columns;
        let screens = cards.len().div_ceil(screenful);
        self.screens.set(screens);
        let screen = ((self.progress * screens as f32) as usize).min(screens - 1);
        let all_cards = &cards;
        let first = screen * screenful;
        let cards = &cards[first..((screen + 1) * screenful).min(cards.len())];
        let rows = cards.len().div_ceil(columns);
        if screens > 1 {
            ui.painter().text(
                body.left_top() + Vec2::new(8.0 * scale, 0.0),
                Align2::LEFT_TOP,
                format!("{} of {screens}", screen + 1),
                FontId::proportional(30.0 * scale),
                DIM_INK,
            );
        }
        let row_height = ((body.height() - header) / rows.max(1) as f32).min(140.0 * scale);
        let column_width = body.width() / columns as f32;
        let name_width = column_width * 0.34;
        let cell = (column_width - name_width) / kinds.len() as f32;
        let font = (row_height * 0.5).min(64.0 * scale);
        let painter = ui.painter().clone();
        // Column headers readable from across the room: white marks on chips of the state's
        // colour (4.5:1 or more), as tall as the header row allows.
        for column in 0..columns {
            let left = body.left() + column as f32 * column_width;
            for (index, kind) in kinds.iter().enumerate() {
                let centre = egui::pos2(
                    left + name_width + (index as f32 + 0.5) * cell,
                    body.top() + header / 2.0 - 4.0 * scale,
                );
                let chip = Rect::from_center_size(
                    centre,
                    Vec2::new((cell - 8.0 * scale).min(96.0 * scale), header - 8.0 * scale),
                );
                painter.rect_filled(chip, 6.0 * scale, style::state_colour(*kind));
                painter.text(
                    centre,
                    Align2::CENTER_CENTER,
                    model::state_mark(*kind),
                    FontId::proportional(header * 0.62),
                    Color32::WHITE,
                );
            }
        }
        // Names as large as fit, none cut into another's text (see `model::fit_labels`): all
        // screens' names together, so that the size does not jump between screens.
        let names: Vec<String> = (all_cards.iter()).map(|card| card.name.clone()).collect();
        let measure = |text: &str, size: f32| {
            painter
                .layout_no_wrap(text.to_owned(), FontId::proportional(size), INK)
                .size()
                .x
        };
        let name_room = name_width - 20.0 * scale;
        let (name_size, labels) =
            model::fit_labels(&names, name_room, (font * 0.45)..=(font * 0.8), measure);
        let labels = &labels[first..first + cards.len()];
        for (index, card) in cards.iter().enumerate() {
            let (column, row) = (index / rows, index % rows);
            let left = body.left() + column as f32 * column_width;
            let top = body.top() + header + row as f32 * row_height;
            if row % 2 == 1 {
                painter.rect_filled(
                    Rect::from_min_size(egui::pos2(left, top), Vec2::new(column_width, row_height)),
                    0.0,
                    Color32::from_gray(18),
                );
            }
            let middle = top + row_height / 2.0;
            let counts: Vec<String> = kinds
                .iter()
                .map(|kind| format!("{} {}", model::state_mark(*kind), card.counts[kind.index()]))
                .collect();
            describe(
                ui,
                Rect::from_min_size(egui::pos2(left, top), Vec2::new(column_width, row_height)),
                &card.name,
                format!("{}: {}", card.name, counts.join(", ")),
            );
            let name_rect = Rect::from_min_size(
                egui::pos2(left, top),
                Vec2::new(name_width - 12.0 * scale, row_height),
            );
            painter.with_clip_rect(name_rect).text(
                egui::pos2(left + 8.0 * scale, middle),
                Align2::LEFT_CENTER,
                &labels[index],
                FontId::proportional(name_size),
                INK,
            );
            for (slot, kind) in kinds.iter().enumerate() {
                let count = card.counts[kind.index()];
                painter.text(
                    egui::pos2(left + name_width + (slot as f32 + 0.5) * cell, middle),
                    Align2::CENTER_CENTER,
                    count.to_string(),
                    FontId::monospace(font),
                    if count == 0 {
                        Color32::from_gray(90)
                    } else {
                        INK
                    },
                );
            }
        }
    }

    /// A row per queue the wallboard covers (served by one of its teams, when it names teams):
    /// waiting, the longest wait, today's service level against the goal, answered and
    /// abandoned today. Those needing attention first; more than fit are shown a screenful at
    /// a time.
    fn queues(&self, ui: &mut Ui, scale: f32) {
        let teams = &self.config.teams;
        let rows: Vec<QueueRow> = queues::rows(self.floor, &Default::default(), self.server_now_ms)
            .into_iter()
            .filter(|row| {
                teams.is_empty()
                    || (self.floor.queue(row.id)).is_some_and(|queue| {
                        (queue.info.teams.iter()).any(|team| {
                            (self.floor.team(*team)).is_some_and(|team| teams.contains(&team.name))
                        })
                    })
            })
            .collect();
        let body = ui.available_rect_before_wrap();
        if rows.is_empty() {
            centred(ui, "No queues", 48.0 * scale, DIM_INK);
            return;
        }
        let header = 56.0 * scale;
        // The rows stop above the formula's line at the bottom.
        let height = body.height() - header - 44.0 * scale;
        let per_screen = ((height / (96.0 * scale)).floor() as usize).max(1);
        let screens = rows.len().div_ceil(per_screen);
        self.screens.set(screens);
        let screen = ((self.progress * screens as f32) as usize).min(screens - 1);
        let rows = &rows[screen * per_screen..((screen + 1) * per_screen).min(rows.len())];
        let painter = ui.painter().clone();
        // Name, then five figures.
        let name_width = body.width() * 0.34;
        let cell = (body.width() - name_width) / 5.0;
        let column = |index: usize| body.left() + name_width + (index as f32 + 0.5) * cell;
        let titles = [
            "waiting",
            "longest",
            "service level",
            "answered",
            "abandoned",
        ];
        for (index, title) in titles.iter().enumerate() {
            painter.text(
                egui::pos2(column(index), body.top()),
                Align2::CENTER_TOP,
                *title,
                FontId::proportional(32.0 * scale),
                DIM_INK,
            );
        }
        if screens > 1 {
            painter.text(
                body.left_top() + Vec2::new(8.0 * scale, 0.0),
                Align2::LEFT_TOP,
                format!("{} of {screens}", screen + 1),
                FontId::proportional(30.0 * scale),
                DIM_INK,
            );
        }
        let row_height = (height / rows.len() as f32).min(150.0 * scale);
        let font = (row_height * 0.55).min(84.0 * scale);
        for (index, row) in rows.iter().enumerate() {
            let top = body.top() + header + index as f32 * row_height;
            let middle = top + row_height / 2.0;
            let rect = Rect::from_min_size(
                egui::pos2(body.left(), top),
                Vec2::new(body.width(), row_height),
            );
            if index % 2 == 1 {
                painter.rect_filled(rect, 0.0, Color32::from_gray(18));
            }
            let level = row.level();
            if let Some(colour) = style::level_colour(level, true) {
                level_bar(&painter, body.left(), top, row_height, scale, colour);
            }
            let longest = row.oldest_since_ms.map_or("–".to_owned(), |since| {
                model::duration_text(self.server_now_ms.saturating_sub(since))
            });
            let service_level = row
                .service_level
                .map_or("–".to_owned(), |level| format!("{:.0}%", level * 100.0));
            describe(
                ui,
                rect,
                ("queue", row.id.0),
                format!(
                    "{}{}: {} waiting, longest {longest}, service level {service_level} (goal {} %), {} answered, {} abandoned today",
                    style::level_mark(level),
                    row.name,
                    row.waiting,
                    row.goal_percent,
                    row.today.answered,
                    row.today.abandoned
                ),
            );
            let name_rect = Rect::from_min_size(
                egui::pos2(body.left(), top),
                Vec2::new(name_width - 12.0 * scale, row_height),
            );
            painter.with_clip_rect(name_rect).text(
                egui::pos2(body.left() + 30.0 * scale, middle),
                Align2::LEFT_CENTER,
                format!("{}{}", style::level_mark(level), row.name),
                FontId::proportional(font * 0.75),
                INK,
            );
            let red = style::level_colour(Level::Red, true).unwrap_or(INK);
            let amber = style::level_colour(Level::Amber, true).unwrap_or(INK);
            let has = |problem| row.problems.contains(&problem);
            let figures = [
                (
                    row.waiting.to_string(),
                    if has(Problem::Waiting) { amber } else { INK },
                ),
                (longest, if has(Problem::Oldest) { red } else { INK }),
                (
                    service_level,
                    if has(Problem::ServiceLevel) {
                        amber
                    } else {
                        INK
                    },
                ),
                (row.today.answered.to_string(), INK),
                (row.today.abandoned.to_string(), INK),
            ];
            for (index, (text, colour)) in figures.into_iter().enumerate() {
                painter.text(
                    egui::pos2(column(index), middle),
                    Align2::CENTER_CENTER,
                    text,
                    FontId::monospace(font),
                    colour,
                );
            }
        }
        ui.painter().text(
            body.left_bottom(),
            Align2::LEFT_BOTTOM,
            format!(
                "service level = {} · since midnight",
                self.floor.queue_rules().service_level.formula()
            ),
            FontId::proportional(28.0 * scale),
            DIM_INK,
        );
    }

    /// The agents over threshold, worst first, as many as fit.
    fn attention(&self, ui: &mut Ui, scale: f32) {
        let alerts = model::attention(
            &self.cache.selection,
            &self.cache.levels,
            self.server_now_ms,
        );
        let body = ui.available_rect_before_wrap();
        if alerts.is_empty() {
            centred(ui, "Nobody is over a threshold", 60.0 * scale, style::LIVE);
            return;
        }
        let row_height = 84.0 * scale;
        let fit = ((body.height() - 50.0 * scale) / row_height)
            .floor()
            .max(1.0) as usize;
        let painter = ui.painter().clone();
        for (row, alert) in alerts.iter().take(fit).enumerate() {
            let top = body.top() + row as f32 * row_height;
            let middle = top + row_height / 2.0;
            let colour = style::level_colour(alert.level, true).unwrap_or(INK);
            let record = self.floor.agent(alert.row.id);
            let name = record.map_or("?", |record| record.info.name.as_str());
            let kind = alert.row.status.kind();
            let reason = alert
                .row
                .status
                .reason()
                .and_then(|reason| self.floor.reason(reason))
                .map_or(model::state_label(kind), |reason| reason.label.as_str());
            let team = self
                .floor
                .team(alert.row.team)
                .map_or("", |team| team.name.as_str());
            let elapsed = self.server_now_ms.saturating_sub(alert.row.since_ms);
            describe(
                ui,
                Rect::from_min_size(
                    egui::pos2(body.left(), top),
                    Vec2::new(body.width(), row_height),
                ),
                alert.row.id,
                format!(
                    "{} {name}, {reason}, {team}, {}",
                    style::level_mark(alert.level),
                    model::duration_text(elapsed)
                ),
            );
            level_bar(&painter, body.left(), top, row_height, scale, colour);
            painter.text(
                egui::pos2(body.left() + 30.0 * scale, middle),
                Align2::LEFT_CENTER,
                format!("{} {name}", style::level_mark(alert.level)),
                FontId::proportional(50.0 * scale),
                INK,
            );
            painter.text(
                egui::pos2(body.left() + body.width() * 0.45, middle),
                Align2::LEFT_CENTER,
                format!("{} {reason} · {team}", model::state_mark(kind)),
                FontId::proportional(40.0 * scale),
                DIM_INK,
            );
            painter.text(
                egui::pos2(body.right() - 10.0 * scale, middle),
                Align2::RIGHT_CENTER,
                model::duration_text(elapsed),
                FontId::monospace(54.0 * scale),
                colour,
            );
        }
        if alerts.len() > fit {
            painter.text(
                body.left_bottom(),
                Align2::LEFT_BOTTOM,
                format!("and {} more", alerts.len() - fit),
                FontId::proportional(36.0 * scale),
                DIM_INK,
            );
        }
        let reds = alerts
            .iter()
            .filter(|alert| alert.level == Level::Red)
            .count();
        ui.painter().text(
            body.right_bottom(),
            Align2::RIGHT_BOTTOM,
            format!("{reds} red · {} amber", alerts.len() - reds),
            FontId::proportional(36.0 * scale),
            DIM_INK,
        );
    }

    /// Over the pages whenever the data is not live: since when it is old, and that the
    /// wallboard is reconnecting.
    fn stale_overlay(&self, ui: &mut Ui, body: Rect, scale: f32) {
        // Syncing is connected with a snapshot on its way: the data on screen is the last
        // live view, and the snapshot follows within a tick.
        if self.session.link != Link::Connecting || self.session.last_update_ms == 0 {
            return;
        }
        let painter = ui.painter();
        painter.rect_filled(
            body,
            12.0 * scale,
            Color32::from_rgba_unmultiplied(60, 0, 0, 225),
        );
        let since = local_time(self.session.last_update_ms).format("%H:%M:%S");
        let age = model::duration_text(self.now_ms.saturating_sub(self.session.last_update_ms));
        let centre = body.center();
        painter.text(
            centre - Vec2::new(0.0, 90.0 * scale),
            Align2::CENTER_CENTER,
            "DATA NOT LIVE",
            FontId::proportional(110.0 * scale),
            Color32::WHITE,
        );
        painter.text(
            centre + Vec2::new(0.0, 30.0 * scale),
            Align2::CENTER_CENTER,
            format!("Last update at {since}, {age} ago"),
            FontId::proportional(54.0 * scale),
            Color32::WHITE,
        );
        painter.text(
            centre + Vec2::new(0.0, 110.0 * scale),
            Align2::CENTER_CENTER,
            match &self.session.problem_words {
                Some(words) => format!("{}, reconnecting…", crate::app::capitalised(words)),
                None => "Reconnecting…".to_owned(),
            },
            FontId::proportional(40.0 * scale),
            DIM_INK,
        );
        // Why, so that whoever walks past can tell IT (a refused certificate, the proxy, an
        // app older than the server supports).
        let problem = match &self.session.update {
            Some(update) => {
                let link = update.download_url.as_deref().unwrap_or_default();
                format!("{} {link}", update.text()).trim_end().to_owned()
            }
            None => self.session.problem.clone().unwrap_or_default(),
        };
        if !problem.is_empty() {
            let galley = painter.layout(
                problem.clone(),
                FontId::proportional(30.0 * scale),
                Color32::WHITE,
                body.width() * 0.85,
            );
            let top_left = centre + Vec2::new(-galley.size().x / 2.0, 160.0 * scale);
            painter.galley(top_left, galley, Color32::WHITE);
        }
        ui.allocate_rect(body, egui::Sense::hover())
            .widget_info(|| {
                let why = if problem.is_empty() {
                    String::new()
                } else {
                    format!(". {problem}")
                };
                egui::WidgetInfo::labeled(
                    egui::Role::Alert,
                    true,
                    format!("Data not live: last update at {since}, {age} ago{why}"),
                )
            });
    }

    /// Dims the whole screen during the configured night hours.
    fn night(&self, ui: &mut Ui, screen: Rect) {
        let Some(night) = &self.config.night else {
            return;
        };
        let time = local_time(self.now_ms);
        if night.contains(time.hour() * 60 + time.minute()) {
            let alpha = 255 - (u32::from(night.brightness_percent.min(100)) * 255 / 100) as u8;
            let painter = ui.ctx().layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("monti-night"),
            ));
            painter.rect_filled(screen, 0.0, Color32::from_black_alpha(alpha));
        }
    }
}

/// The bar at a row's left edge in its threshold colour.
fn level_bar(
    painter: &egui::Painter,
    left: f32,
    top: f32,
    height: f32,
    scale: f32,
    colour: Color32,
) {
    let bar = Rect::from_min_size(
        egui::pos2(left, top + 4.0 * scale),
        Vec2::new(12.0 * scale, height - 8.0 * scale),
    );
    painter.rect_filled(bar, 3.0 * scale, colour);
}

/// Gives a painted area a name for screen readers (and tests).
fn describe(ui: &mut Ui, rect: Rect, salt: impl std::hash::Hash + std::fmt::Debug, text: String) {
    let id = ui.scope_id().with(salt);
    ui.interact(rect, id, egui::Sense::hover())
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ListItem, true, &text));
}

fn scope_text(config: &WallboardConfig) -> String {
    let mut parts = Vec::new();
    if !config.teams.is_empty() {
        parts.push(config.teams.join(", "));
    }
    if !config.sites.is_empty() {
        parts.push(config.sites.join(", "));
    }
    if config.hidden_teams || config.hidden_sites {
        parts.push(
            "some of this wallboard's teams or sites are outside this device's access".into(),
        );
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  {}", parts.join(" · "))
    }
}

fn centred(ui: &mut Ui, text: &str, size: f32, colour: Color32) {
    ui.centered_and_justified(|ui| {
        ui.label(RichText::new(text).size(size).color(colour));
    });
}

/// The unattended sign-in screen: the code and a QR code big enough to scan from a phone across
/// a desk, and no buttons (nobody is there to press them).
pub fn sign_in(ui: &mut Ui, session: &Session, now_ms: u64) {
    let screen = ui.max_rect();
    ui.painter().rect_filled(screen, 0.0, Color32::BLACK);
    let scale = (screen.height() / 1080.0).max(0.3);
    ui.with_layout(Layout::top_down(Align::Center), |ui| {
        ui.add_space(40.0 * scale);
        match &session.sign_in {
            SignIn::Code(code) => {
                ui.label(
                    RichText::new("This wallboard needs to be signed in")
                        .size(48.0 * scale)
                        .color(INK),
                );
                ui.label(
                    RichText::new(format!("Scan the code or open {}", code.verification_uri))
                        .size(34.0 * scale)
                        .color(DIM_INK),
                );
                ui.label(
                    RichText::new(&code.user_code)
                        .size(120.0 * scale)
                        .color(INK)
                        .monospace(),
                );
                signin::qr(ui, &code.qr_uri, 480.0 * scale);
                let left = code.expires_at_ms.saturating_sub(now_ms);
                ui.label(
                    RichText::new(format!(
                        "The code expires in {}; a new one follows by itself",
                        model::duration_text(left)
                    ))
                    .size(30.0 * scale)
                    .color(DIM_INK),
                );
            }
            SignIn::Browser { url } => {
                ui.label(
                    RichText::new("This wallboard needs to be signed in")
                        .size(48.0 * scale)
                        .color(INK),
                );
                ui.label(
                    RichText::new(
                        "Its provider signs in through a browser: sign in in the window that \
                         opened on this PC, or open",
                    )
                    .size(34.0 * scale)
                    .color(DIM_INK),
                );
                ui.label(RichText::new(url).size(24.0 * scale).color(INK).monospace());
            }
            _ => {
                ui.label(
                    RichText::new(format!("Connecting to {}…", session.server))
                        .size(48.0 * scale)
                        .color(INK),
                );
                let problem = match &session.sign_in {
                    SignIn::Needed { problem } => problem.as_ref().or(session.problem.as_ref()),
                    _ => session.problem.as_ref(),
                };
                if let Some(problem) = problem {
                    ui.label(
                        RichText::new(problem)
                            .size(34.0 * scale)
                            .color(style::level_colour(Level::Red, true).unwrap_or(INK)),
                    );
                }
            }
        }
    });
}

/// The states a wallboard counts: every one but offline (in the footer), and "no signal" only
/// while some agent is in it, so that six large tiles stay six on a healthy floor.
fn shown_kinds(counts: &[u32; StateKind::COUNT]) -> Vec<StateKind> {
    StateKind::ALL
        .into_iter()
        .filter(|&kind| match kind {
            StateKind::Offline => false,
            StateKind::Stale => counts[kind.index()] > 0,
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use monti_protocol::rest::WallboardPage;

    use super::*;

    #[test]
    fn pages_turn_in_order_after_their_time_and_arrows_turn_them_at_once() {
        let config = WallboardConfig {
            pages: vec![
                WallboardPage {
                    kind: PageKind::Attention,
                    seconds: 10,
                },
                WallboardPage {
                    kind: PageKind::Totals,
                    seconds: 5,
                },
            ],
            ..WallboardConfig::default()
        };
        let mut kiosk = Kiosk::new(None);
        assert_eq!(kiosk.turn(&config, 1_000, 0), (PageKind::Attention, 0.0));
        assert_eq!(kiosk.turn(&config, 6_000, 0), (PageKind::Attention, 0.5));
        assert_eq!(kiosk.turn(&config, 11_000, 0).0, PageKind::Totals);
        assert_eq!(kiosk.turn(&config, 15_999, 0).0, PageKind::Totals);
        assert_eq!(kiosk.turn(&config, 16_000, 0).0, PageKind::Attention);
        assert_eq!(kiosk.turn(&config, 16_500, -1), (PageKind::Totals, 0.0));
        assert_eq!(kiosk.turn(&config, 17_000, 1).0, PageKind::Attention);
        assert_eq!(kiosk.turn(&config, 26_999, 0).0, PageKind::Attention);

        // A page of three screenfuls stays three times its time, each screenful a third of
        // its progress; the next page starts at one screenful again.
        let mut kiosk = Kiosk::new(None);
        assert_eq!(kiosk.turn(&config, 0, 0).0, PageKind::Attention);
        kiosk.set_page_screens(3);
        assert_eq!(kiosk.turn(&config, 15_000, 0), (PageKind::Attention, 0.5));
        assert_eq!(kiosk.turn(&config, 29_999, 0).0, PageKind::Attention);
        assert_eq!(kiosk.turn(&config, 30_000, 0), (PageKind::Totals, 0.0));
        assert_eq!(kiosk.turn(&config, 35_000, 0).0, PageKind::Attention);
    }

    #[test]
    fn local_files_are_read_as_toml_or_json_and_checked() {
        let dir = std::env::temp_dir().join(format!("monti-kiosk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let toml_file = dir.join("wallboard.toml");
        // The example from docs/WALLBOARD.md.
        std::fs::write(
            &toml_file,
            "teams = [\"Sales 1\"]\n\n[[pages]]\nkind = \"totals\"\nseconds = 20\n\n\
             [[pages]]\nkind = \"attention\"\nseconds = 20\n",
        )
        .expect("write");
        let config = read_config(&toml_file).expect("valid TOML");
        assert_eq!(config.teams, vec!["Sales 1".to_owned()]);
        assert_eq!(config.pages[1].kind, PageKind::Attention);

        let json_file = dir.join("wallboard.json");
        std::fs::write(&json_file, r#"{"pages":[{"kind":"sites","seconds":1}]}"#).expect("write");
        let err = read_config(&json_file).expect_err("too short a page");
        assert!(err.to_string().contains("3 to 3600"), "{err}");
        std::fs::write(&json_file, "{").expect("write");
        let err = read_config(&json_file).expect_err("not JSON");
        assert!(
            err.to_string().contains("is not a wallboard configuration"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_burn_in_shift_moves_every_two_minutes_and_stays_small() {
        let shifts: Vec<Vec2> = (0..16).map(|step| burn_in_shift(step * 120_000)).collect();
        assert!(shifts.windows(2).all(|pair| pair[0] != pair[1]));
        assert!(
            shifts
                .iter()
                .all(|shift| shift.x.abs() <= 4.0 && shift.y.abs() <= 4.0)
        );
        assert_eq!(burn_in_shift(0), burn_in_shift(119_999));
    }
}
