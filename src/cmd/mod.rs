//! The subcommands: flags to library calls and results to exit statuses.
//! `main.rs` parses and dispatches; each command lives here.

pub mod analyze;
pub mod conform;
pub mod docs;
pub mod emulate;
pub mod live;
pub mod probe;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use ldm_sniff::cli::Color;
use ldm_sniff::output;

pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

pub fn use_color(choice: Color) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// An error for the user: what is wrong and what to do, exit 2. Control
/// characters quoted from their input are shown escaped.
pub fn error(message: &str) -> ExitCode {
    note(message);
    ExitCode::from(EXIT_ERROR)
}

/// A line for the user on stderr. Control characters (from a file name, an
/// interface, a hostname) are shown escaped so they cannot drive the terminal.
pub fn note(message: &str) {
    eprintln!("ldm-sniff: {}", output::escape_controls(message));
}

/// `-i`, or the interface of the default route.
pub fn interface(named: Option<&str>) -> Result<String, ExitCode> {
    match named {
        Some(iface) => Ok(iface.to_string()),
        None => ldm_sniff::probe::default_interface().map_err(|e| error(&e.to_string())),
    }
}
