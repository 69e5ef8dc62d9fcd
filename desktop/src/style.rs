//! Colours and sizes. Every state has a colour *and* a two-letter mark; thresholds add a thick
//! amber or red border *and* `!` or `!!`, so nothing depends on colour alone.

use egui::Color32;
use monti_protocol::model::StateKind;

use crate::model::Level;

/// A state's colour: white text on it reads at 4.5:1 or more (WCAG AA), on chips, the
/// strip and table cells, on both themes.
pub fn state_colour(kind: StateKind) -> Color32 {
    match kind {
        StateKind::Offline => Color32::from_rgb(0x74, 0x74, 0x7b),
        StateKind::Available => Color32::from_rgb(0x26, 0x84, 0x41),
        StateKind::Ringing => Color32::from_rgb(0x0f, 0x80, 0x8d),
        StateKind::OnCall => Color32::from_rgb(0x39, 0x72, 0xd6),
        StateKind::OnHold => Color32::from_rgb(0x8e, 0x59, 0xd1),
        StateKind::WrapUp => Color32::from_rgb(0x93, 0x6e, 0x21),
        StateKind::NotReady => Color32::from_rgb(0xbc, 0x4c, 0x85),
        StateKind::Stale => Color32::from_rgb(0x8a, 0x6d, 0x3b),
    }
}

/// The test access line's fill: black text on it reads at 14:1, and it looks like no state.
pub const TEST_ACCESS: Color32 = Color32::from_rgb(0xff, 0xd3, 0x3d);

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

/// The threshold colour, if the level has one, for text and borders on the theme's
/// background (`dark`: the dark theme and the wallboard): 4.5:1 or more against it.
pub fn level_colour(level: Level, dark: bool) -> Option<Color32> {
    match (level, dark) {
        (Level::Normal, _) => None,
        (Level::Amber, true) => Some(Color32::from_rgb(0xff, 0xb3, 0x00)),
        (Level::Amber, false) => Some(Color32::from_rgb(0x75, 0x4b, 0x00)),
        (Level::Red, true) => Some(Color32::from_rgb(0xff, 0x8a, 0x80)),
        (Level::Red, false) => Some(Color32::from_rgb(0xa3, 0x1b, 0x1b)),
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

/// The connection chip's colours (white text on each).
pub const LIVE: Color32 = Color32::from_rgb(0x15, 0x80, 0x3d);
/// Syncing or reconnecting without data yet.
pub const PENDING: Color32 = Color32::from_rgb(0x93, 0x6e, 0x21);
/// Showing data that is not live.
pub const STALE: Color32 = Color32::from_rgb(0xc6, 0x28, 0x28);

/// An agent tile's size in points (before zoom).
pub const TILE: egui::Vec2 = egui::vec2(188.0, 56.0);
/// The gap between tiles.
pub const GAP: f32 = 6.0;

#[cfg(test)]
mod tests {
    use super::*;

    const AA: f32 = 4.5;

    /// The contrast ratio of two colours (WCAG 2): 1 for the same, 21 for black on white. AA asks
    /// 4.5 for text, 3 for large text and for the parts of controls.
    fn contrast(a: Color32, b: Color32) -> f32 {
        let luminance = |colour: Color32| {
            let channel = |value: u8| {
                let value = f32::from(value) / 255.0;
                if value <= 0.039_28 {
                    value / 12.92
                } else {
                    ((value + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(colour.r())
                + 0.7152 * channel(colour.g())
                + 0.0722 * channel(colour.b())
        };
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn every_colour_that_carries_text_reads_at_aa_on_both_themes() {
        assert!((contrast(Color32::BLACK, Color32::WHITE) - 21.0).abs() < 0.01);
        for kind in StateKind::ALL {
            let ratio = contrast(Color32::WHITE, state_colour(kind));
            assert!(ratio >= AA, "white on {kind:?}: {ratio:.2}");
        }
        for (name, chip) in [("LIVE", LIVE), ("PENDING", PENDING), ("STALE", STALE)] {
            let ratio = contrast(Color32::WHITE, chip);
            assert!(ratio >= AA, "white on the {name} chip: {ratio:.2}");
        }
        for dark in [true, false] {
            let visuals = if dark {
                egui::Visuals::dark()
            } else {
                egui::Visuals::light()
            };
            let backgrounds = [
                ("window", background(dark)),
                ("panel", visuals.panel_fill),
                ("text field", visuals.extreme_bg_color),
            ];
            let mut inks = vec![
                ("text", visuals.text_color()),
                ("strong text", visuals.strong_text_color()),
            ];
            for level in [Level::Amber, Level::Red] {
                inks.push((level.word(), level_colour(level, dark).expect("a colour")));
            }
            for (ink_name, ink) in &inks {
                for (ground_name, ground) in backgrounds {
                    let ratio = contrast(*ink, ground);
                    assert!(
                        ratio >= AA,
                        "{ink_name} on the {ground_name} ({}): {ratio:.2}",
                        if dark { "dark" } else { "light" }
                    );
                }
            }
            // Tiles: their text (strong) and the threshold colours on every state's fill.
            for kind in StateKind::ALL {
                let fill = tile_fill(kind, dark);
                for (ink_name, ink) in inks.iter().skip(1) {
                    let ratio = contrast(*ink, fill);
                    assert!(
                        ratio >= AA,
                        "{ink_name} on a {kind:?} tile ({dark}): {ratio:.2}"
                    );
                }
            }
        }
    }
}
