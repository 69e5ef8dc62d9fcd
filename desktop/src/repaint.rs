//! When the window redraws. egui repaints the whole window for every frame, and under a
//! software renderer (a wallboard PC without a GPU driver) each frame costs tens of milliseconds
//! of CPU, so the app draws only when what it shows has changed: when the network thread has
//! news ([`DataRepaint`], at most once per its interval), when a clock on screen turns to the
//! next second ([`until_next_second`]), and on input.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::lock;

/// Asks for a frame when the network thread learns something, at most one per `every` counting
/// every frame drawn: news arriving sooner is drawn in the frame at the end of the interval, so
/// nothing is lost and a burst of deltas costs one frame. Clones share the pace.
#[derive(Clone)]
pub struct DataRepaint {
    ctx: egui::Context,
    pace: Arc<Mutex<Pace>>,
}

impl DataRepaint {
    /// The desktop draws news five times a second: two of the server's 100 ms ticks, which a
    /// person watching a floor does not tell from every tick, at half the frames.
    pub const DESKTOP: Duration = Duration::from_millis(200);
    /// A wallboard is read from across the room: twice a second is enough.
    pub const WALLBOARD: Duration = Duration::from_millis(500);

    /// Repaints `ctx` for news at most once per `every`.
    pub fn new(ctx: egui::Context, every: Duration) -> DataRepaint {
        DataRepaint {
            ctx,
            pace: Arc::new(Mutex::new(Pace::new(every))),
        }
    }

    /// Called by the network thread with each piece of news.
    pub fn news(&self) {
        let delay = lock(&self.pace).frame_for_news(Instant::now());
        // Never zero: egui answers `request_repaint()` with two frames (for widgets that settle
        // a frame late), and news needs one.
        self.ctx
            .request_repaint_after(delay.max(Duration::from_millis(1)));
    }

    /// Called by the UI after a frame that began at `started`: that frame drew all news
    /// that came before it, whatever asked for it (a clock, input).
    pub fn drawn(&self, started: Instant) {
        lock(&self.pace).drawn(started);
    }
}

/// The arithmetic of [`DataRepaint`]: when the frame for news arriving at a time is due.
#[derive(Debug)]
struct Pace {
    every: Duration,
    /// The time of the last frame, drawn or asked for news (which may lie ahead).
    last: Option<Instant>,
}

impl Pace {
    fn new(every: Duration) -> Pace {
        Pace { every, last: None }
    }

    /// How long until the frame that draws news arriving `now`. When that frame was asked for
    /// already it is asked for again: any frame egui draws in between (input, a clock) takes the
    /// place of the one asked for, and news arriving after it needs one of its own.
    fn frame_for_news(&mut self, now: Instant) -> Duration {
        let due = match self.last {
            Some(last) if last > now => last,
            Some(last) => (last + self.every).max(now),
            None => now,
        };
        self.last = Some(due);
        due - now
    }

    /// A frame began at `started` and drew everything that came before it. A frame asked for
    /// news later is forgotten: egui drew this one in its place.
    fn drawn(&mut self, started: Instant) {
        self.last = Some(started);
    }
}

/// How long until the wall clock turns to the next second, for a screen with times on it.
pub fn until_next_second(now_ms: u64) -> Duration {
    Duration::from_millis(1000 - now_ms % 1000)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn news_is_drawn_at_once_when_the_last_frame_is_an_interval_old() {
        let start = Instant::now();
        let mut pace = Pace::new(ms(500));
        assert_eq!(pace.frame_for_news(start), Duration::ZERO);
        assert_eq!(pace.frame_for_news(start + ms(700)), Duration::ZERO);
    }

    #[test]
    fn news_within_the_interval_waits_for_its_end_and_shares_its_frame() {
        let start = Instant::now();
        let mut pace = Pace::new(ms(500));
        assert_eq!(pace.frame_for_news(start), Duration::ZERO);
        // Ticks every 100 ms: the frame at 500 ms draws the next four.
        for at in [100, 200, 300, 400] {
            assert_eq!(
                start + ms(at) + pace.frame_for_news(start + ms(at)),
                start + ms(500),
                "at {at} ms"
            );
        }
        // The tick after that frame waits for the one after.
        assert_eq!(pace.frame_for_news(start + ms(600)), ms(400));
    }

    #[test]
    fn ten_ticks_a_second_cost_two_frames_a_second_on_a_wallboard() {
        let start = Instant::now();
        let mut pace = Pace::new(DataRepaint::WALLBOARD);
        let frames: BTreeSet<Instant> = (0..100)
            .map(|tick| start + ms(tick * 100))
            .map(|at| at + pace.frame_for_news(at))
            .filter(|&due| due < start + ms(10_000))
            .collect();
        assert_eq!(frames.len(), 20);
    }

    #[test]
    fn with_no_interval_every_tick_is_drawn_at_once() {
        let start = Instant::now();
        let mut pace = Pace::new(Duration::ZERO);
        for tick in 0..10 {
            let at = start + ms(tick * 100);
            assert_eq!(pace.frame_for_news(at), Duration::ZERO);
        }
    }

    #[test]
    fn a_frame_drawn_for_another_reason_counts() {
        let start = Instant::now();
        let mut pace = Pace::new(ms(500));
        assert_eq!(pace.frame_for_news(start), Duration::ZERO);
        assert_eq!(pace.frame_for_news(start + ms(100)), ms(400));
        // The clock's frame at 300 ms draws that news; egui forgets the one asked for 500 ms.
        pace.drawn(start + ms(300));
        // News after it waits an interval from it, and is asked for again.
        assert_eq!(pace.frame_for_news(start + ms(350)), ms(450));
        assert_eq!(pace.frame_for_news(start + ms(400)), ms(400));
    }

    #[test]
    fn the_next_second_is_never_now() {
        assert_eq!(until_next_second(5_000), ms(1000));
        assert_eq!(until_next_second(5_999), ms(1));
        assert_eq!(until_next_second(5_250), ms(750));
    }
}
