//! Text shown to a person on a terminal, from input they or a peer gave.

/// `text` for a terminal: control characters (other than line breaks) as
/// `\xNN`, bidirectional overrides as `\u{NNNN}`, so that an error message quoting a user's input
/// (a filter, a config file, a path) cannot move the cursor or recolour
/// the terminal, as packet text cannot.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('\n'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            // Bidirectional overrides and isolates reorder what a terminal shows.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
