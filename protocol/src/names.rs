//! What a name may be: the one rule for agent, team, site and reason names wherever they enter
//! (the event and roster APIs, Amazon Connect, the simulator) and wherever they are shown.
//!
//! A name is at most [`MAX_NAME_BYTES`] bytes, not blank, and holds no character that only
//! changes how text around it is displayed: control characters, bidirectional overrides and
//! isolates (which can make "Anna" read as another name), and zero-width characters (which make
//! two names that look the same differ). The APIs refuse such names with [`name_problem`]'s
//! reason, since the integrator can fix them; text MONTI does not control (Amazon Connect's
//! names, a stored name from an older server, a frame from an older server) is made to fit with
//! [`fit_name`], so that one bad name never stops a viewer.

pub use crate::codec::MAX_NAME_BYTES;

/// The ellipsis that ends a name [`fit_name`] had to shorten.
pub const CUT_MARK: char = '…';

/// Whether `c` only affects how the text around it is displayed.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional marks, embeddings, overrides and isolates.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Zero-width space, non-joiner, joiner; word joiner and invisible operators; the
            // byte order mark (zero-width no-break space).
            | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        )
}

/// Why `name` cannot be taken as it is, if it cannot.
pub fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "is {} bytes long; names are at most {MAX_NAME_BYTES} bytes",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
        return Some(format!(
            "contains the invisible character U+{:04X} (control, bidirectional or zero-width \
             characters are not allowed in names)",
            u32::from(c)
        ));
    }
    None
}

/// `name` without invisible characters and surrounding blanks, cut to [`MAX_NAME_BYTES`] at a
/// character boundary and then ending in [`CUT_MARK`]. Empty when nothing visible is left.
pub fn fit_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|&c| !is_invisible(c))
        .collect::<String>()
        .trim()
        .to_owned();
    if clean.len() <= MAX_NAME_BYTES {
        return clean;
    }
    let room = MAX_NAME_BYTES - CUT_MARK.len_utf8();
    let mut end = room;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = clean[..end].trim_end().to_owned();
    cut.push(CUT_MARK);
    cut
}

/// [`fit_name`], or [`CUT_MARK`] alone when nothing visible is left: what a viewer is sent for
/// a name that does not fit, so that something shows.
pub fn shown_name(name: &str) -> String {
    let fitted = fit_name(name);
    if fitted.is_empty() {
        CUT_MARK.to_string()
    } else {
        fitted
    }
}

/// Orders names as people read them: letters without regard to case, and runs of digits by
/// their value, so "Billing 2" comes before "Billing 10". Names equal but for case or leading
/// zeros fall back to a plain byte order, so that the order is total and stable.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        if p.is_ascii_digit() && q.is_ascii_digit() {
            let (run_x, rest_x) = x.split_at(x.iter().take_while(|c| c.is_ascii_digit()).count());
            let (run_y, rest_y) = y.split_at(y.iter().take_while(|c| c.is_ascii_digit()).count());
            // Values compare by their digits without leading zeros: first length, then digits,
            // so any length of number works without overflow.
            let value_x = &run_x[run_x.iter().take_while(|&&c| c == b'0').count()..];
            let value_y = &run_y[run_y.iter().take_while(|&&c| c == b'0').count()..];
            match value_x.len().cmp(&value_y.len()).then(value_x.cmp(value_y)) {
                Ordering::Equal => (x, y) = (rest_x, rest_y),
                unequal => return unequal,
            }
        } else {
            match p.to_ascii_lowercase().cmp(&q.to_ascii_lowercase()) {
                Ordering::Equal => (x, y) = (&x[1..], &y[1..]),
                unequal => return unequal,
            }
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_sort_naturally_and_totally() {
        let mut names = vec![
            "Billing 10",
            "billing 2",
            "Billing 1",
            "Billing 11",
            "Billing 02",
            "Alpha",
            "Billing",
            "Billing 2a",
            "Team 9 East",
            "Team 10 East",
            "Team 10",
            "Zeta 007",
            "Zeta 7",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "Alpha",
                "Billing",
                "Billing 1",
                "Billing 02",
                "billing 2",
                "Billing 2a",
                "Billing 10",
                "Billing 11",
                "Team 9 East",
                "Team 10",
                "Team 10 East",
                "Zeta 007",
                "Zeta 7",
            ]
        );
        // A digit run longer than any integer still compares.
        assert_eq!(
            natural_cmp("n 99999999999999999999999", "n 100000000000000000000000"),
            std::cmp::Ordering::Less
        );
    }

    #[test]
    fn problems_are_named() {
        assert_eq!(name_problem("Anna Berg"), None);
        assert_eq!(name_problem("  ").as_deref(), Some("is empty"));
        assert!(
            name_problem(&"x".repeat(257))
                .is_some_and(|why| why.contains("257 bytes") && why.contains("at most 256"))
        );
        assert!(name_problem(&"x".repeat(256)).is_none());
        assert!(
            name_problem("Anna\u{202E}greB")
                .is_some_and(|why| why.contains("U+202E") && why.contains("bidirectional"))
        );
        assert!(name_problem("Ann\u{200B}a").is_some_and(|why| why.contains("U+200B")));
        assert!(name_problem("line\nbreak").is_some_and(|why| why.contains("U+000A")));
        // Letters of every script are names.
        assert_eq!(name_problem("Zoë Ångström 王芳 عائشة"), None);
    }

    #[test]
    fn fitting_removes_what_is_invisible_and_cuts_with_a_mark() {
        assert_eq!(fit_name(" Anna\u{202E}\u{200B} Berg\n"), "Anna Berg");
        assert_eq!(fit_name("\u{200B}\u{FEFF}"), "");
        let long = "ä".repeat(200); // 400 bytes
        let fitted = fit_name(&long);
        assert!(fitted.len() <= MAX_NAME_BYTES);
        assert!(fitted.ends_with(CUT_MARK));
        assert!(fitted.starts_with("ää"));
    }

    proptest! {
        /// Whatever comes in, what comes out is a name the APIs would take (or nothing).
        #[test]
        fn fitted_names_have_no_problem(raw in ".{0,400}") {
            let fitted = fit_name(&raw);
            prop_assert!(fitted.is_empty() || name_problem(&fitted).is_none(), "{fitted:?}");
        }

        /// A name without problems is kept as it is.
        #[test]
        fn good_names_are_kept(raw in "[a-zA-Z0-9äöüß王 ]{1,60}") {
            prop_assume!(!raw.trim().is_empty() && raw.trim() == raw);
            prop_assert_eq!(fit_name(&raw), raw);
        }

        /// The natural order is a total order: equal only for equal names, reversed when the
        /// arguments are, and transitive, so sorting with it is well defined.
        #[test]
        fn the_natural_order_is_total(
            a in "[aB0-9 ]{0,8}", b in "[aB0-9 ]{0,8}", c in "[aB0-9 ]{0,8}"
        ) {
            use std::cmp::Ordering::*;
            prop_assert_eq!(natural_cmp(&a, &b) == Equal, a == b);
            prop_assert_eq!(natural_cmp(&a, &b), natural_cmp(&b, &a).reverse());
            if natural_cmp(&a, &b) != Greater && natural_cmp(&b, &c) != Greater {
                prop_assert_ne!(natural_cmp(&a, &c), Greater, "{:?} {:?} {:?}", a, b, c);
            }
        }
    }
}
