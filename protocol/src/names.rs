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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    }
}
