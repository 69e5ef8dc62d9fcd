//! Queue figures from counted legs, without IO: service level by the formula the configuration
//! chooses, average speed of answer, abandonment.
//!
//! Contact centers define service level differently, and a floor manager compares MONTI with the
//! dashboard they know, so the formula is a setting and every answer names the one used. With
//! `A` answered within the target, `N` answered, `B` abandoned, `S` of those short abandons
//! (within `[queues] short_abandon_secs`) and `O` offered (every leg that entered the queue,
//! including those still waiting and those transferred on):
//! - `answered_and_abandoned`: A / (N + B), every finished contact counts;
//! - `ignore_short_abandons` (the default): A / (N + B - S), callers who hung up within a few
//!   seconds (misdials) do not count against the floor;
//! - `offered`: A / O;
//! - `answered`: A / N, abandons do not count at all.

pub use crate::config::ServiceLevel;

/// What the store counts for a queue over a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Legs that entered the queue.
    pub offered: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Of those, answered within the queue's target.
    pub answered_in_target: u64,
    /// Legs abandoned.
    pub abandoned: u64,
    /// Of those, within the short-abandon threshold.
    pub abandoned_short: u64,
    /// Sum of the waits of answered legs, ms.
    pub answered_wait_ms: u64,
    /// The longest wait of an answered or abandoned leg, ms.
    pub longest_wait_ms: u64,
}

impl ServiceLevel {
    /// The formula in words, for the apps to show.
    pub fn formula(self) -> &'static str {
        match self {
            ServiceLevel::AnsweredAndAbandoned => "answered within target / (answered + abandoned)",
            ServiceLevel::IgnoreShortAbandons => {
                "answered within target / (answered + abandoned - short abandons)"
            }
            ServiceLevel::Offered => "answered within target / offered",
            ServiceLevel::Answered => "answered within target / answered",
        }
    }

    /// The service level of `counts`, 0 to 1; `None` when nothing counts yet.
    pub fn of(self, counts: &Counts) -> Option<f64> {
        let base = match self {
            ServiceLevel::AnsweredAndAbandoned => counts.answered + counts.abandoned,
            ServiceLevel::IgnoreShortAbandons => {
                (counts.answered + counts.abandoned).saturating_sub(counts.abandoned_short)
            }
            ServiceLevel::Offered => counts.offered,
            ServiceLevel::Answered => counts.answered,
        };
        (base > 0).then(|| counts.answered_in_target as f64 / base as f64)
    }
}

impl Counts {
    /// Average speed of answer, seconds; `None` before the first answer.
    pub fn asa_secs(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.answered_wait_ms as f64 / self.answered as f64 / 1000.0)
    }

    /// Abandoned over offered, 0 to 1; `None` before the first contact.
    pub fn abandon_rate(&self) -> Option<f64> {
        (self.offered > 0).then(|| self.abandoned as f64 / self.offered as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_formula_counts_what_it_says() {
        let counts = Counts {
            offered: 110,
            answered: 80,
            answered_in_target: 60,
            abandoned: 20,
            abandoned_short: 10,
            answered_wait_ms: 80 * 12_000,
            longest_wait_ms: 95_000,
        };
        let cases = [
            (ServiceLevel::AnsweredAndAbandoned, 60.0 / 100.0),
            (ServiceLevel::IgnoreShortAbandons, 60.0 / 90.0),
            (ServiceLevel::Offered, 60.0 / 110.0),
            (ServiceLevel::Answered, 60.0 / 80.0),
        ];
        for (formula, expected) in cases {
            let got = formula.of(&counts).expect("counted");
            assert!((got - expected).abs() < 1e-12, "{formula:?}: {got}");
        }
        assert_eq!(counts.asa_secs(), Some(12.0));
        assert_eq!(counts.abandon_rate(), Some(20.0 / 110.0));
    }

    #[test]
    fn nothing_counted_is_no_figure_not_zero() {
        let empty = Counts::default();
        for formula in [
            ServiceLevel::AnsweredAndAbandoned,
            ServiceLevel::IgnoreShortAbandons,
            ServiceLevel::Offered,
            ServiceLevel::Answered,
        ] {
            assert_eq!(formula.of(&empty), None);
        }
        assert_eq!(empty.asa_secs(), None);
        // Only short abandons: no one the floor could have served.
        let misdials = Counts {
            offered: 3,
            abandoned: 3,
            abandoned_short: 3,
            ..Counts::default()
        };
        assert_eq!(ServiceLevel::IgnoreShortAbandons.of(&misdials), None);
        assert_eq!(ServiceLevel::AnsweredAndAbandoned.of(&misdials), Some(0.0));
    }
}
