//! Colours and sizes. Every state has a colour *and* a two-letter mark; thresholds add a thick
//! amber or red border *and* `!` or `!!`, so nothing depends on colour alone.

use egui::Color32;
use monti_protocol::model::StateKind;

use crate::model::Level;

/// A state's colour, readable on both themes.
pub fn state_colour(kind: StateKind) -> Color32 {
    match kind {
        StateKind::Offline => Color32::from_rgb(0x80, 0x80, 0x88),
        StateKind::Available => Color32::from_rgb(0x2e, 0xa0, 0x4f),
        StateKind::Ringing => Color32::from_rgb(0x14, 0xa5, 0xb5),
        StateKind::OnCall => Color32::from_rgb(0x3b, 0x76, 0xdd),
        StateKind::OnHold => Color32::from_rgb(0x93, 0x5c, 0xd8),
        StateKind::WrapUp => Color32::from_rgb(0xb8, 0x8a, 0x2a),
        StateKind::NotReady => Color32::from_rgb(0xc2, 0x4f, 0x8a),
        StateKind::Stale => Color32::from_rgb(0x8a, 0x6d, 0x3b),
    }
}

/// The window's background: the colour the frame is cleared to. Panels draw no fill of their
/// own (see [`without_panel_fills`]): under a software renderer clearing costs next to nothing,
/// while a fill is one more pass over every pixel of every frame.
pub fn background(dark: bool) -> Color32 {
    if dark {
        egui::Visuals::dark().panel_fill
    } else {
        egui::Visuals::light().panel_fill
    }
}

/// Makes panels transparent in both themes, so that the [`background`] shows through them.
pub fn without_panel_fills(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| style.visuals.panel_fill = Color32::TRANSPARENT);
}

/// The tile background for a state: the state's colour, muted towards the panel colour.
pub fn tile_fill(kind: StateKind, dark: bool) -> Color32 {
    let base = if dark {
        Color32::from_rgb(0x24, 0x26, 0x2b)
    } else {
        Color32::from_rgb(0xf4, 0xf4, 0xf6)
    };
    base.lerp_to_gamma(state_colour(kind), if dark { 0.28 } else { 0.22 })
}

/// The threshold colour, if the level has one.
pub fn level_colour(level: Level) -> Option<Color32> {
    match level {
        Level::Normal => None,
        Level::Amber => Some(Color32::from_rgb(0xff, 0xb3, 0x00)),
        Level::Red => Some(Color32::from_rgb(0xe5, 0x39, 0x35)),
    }
}

/// The mark that says the level without colour.
pub fn level_mark(level: Level) -> &'static str {
    match level {
        Level::Normal => "",
        Level::Amber => "!",
        Level::Red => "!!",
    }
}

/// The connection chip's colours.
pub const LIVE: Color32 = Color32::from_rgb(0x15, 0x80, 0x3d);
/// Syncing or reconnecting without data yet.
pub const PENDING: Color32 = Color32::from_rgb(0xb8, 0x8a, 0x2a);
/// Showing data that is not live.
pub const STALE: Color32 = Color32::from_rgb(0xe5, 0x39, 0x35);

/// An agent tile's size in points (before zoom).
pub const TILE: egui::Vec2 = egui::vec2(188.0, 56.0);
/// The gap between tiles.
pub const GAP: f32 = 6.0;
