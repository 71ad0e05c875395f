//! `completions` and `man`: shell completion scripts and manual pages,
//! generated from the same clap definitions that parse the flags, so they
//! cannot drift from what the binary accepts.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::CommandFactory;
use ldm_sniff::cli::{Args, CompletionsArgs, ManArgs};

use super::error;

/// The command tree as clap builds it (subcommands named `ldm-sniff-emulate`
/// and so on, as their pages are).
fn command() -> clap::Command {
    let mut command = Args::command().disable_help_subcommand(true);
    command.build();
    command
}

pub fn completions(args: &CompletionsArgs) -> ExitCode {
    let mut command = command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "ldm-sniff", &mut out);
    if args.shell == clap_complete::Shell::Bash {
        out = bash_fixed(&out);
    }
    write_stdout(&out)
}

/// clap_complete's bash script spells a subcommand's state two ways when
/// the binary's name has a hyphen (`ldm__sniff__subcmd__emulate` where it
/// is set, `ldm__subcmd__sniff__subcmd__emulate` where it is matched), so
/// no subcommand's flags complete (clap-rs/clap#6421, open). Spelling the
/// matched names as the set ones mends it; once fixed upstream this
/// replaces nothing, and tests/docs.rs checks the completions either way.
fn bash_fixed(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script).replace("ldm__subcmd__sniff__", "ldm__sniff__").into_bytes()
}

pub fn man(args: &ManArgs) -> ExitCode {
    let command = command();
    if let Some(dir) = &args.dir {
        return match clap_mangen::generate_to(command, dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => error(&format!("{}: cannot write the pages: {e}; check the directory exists", dir.display())),
        };
    }
    let page = match args.page.as_deref() {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => sub.clone(),
            None => {
                let names: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
                return error(&format!("no page for '{name}': the commands are {}", names.join(", ")));
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut out) {
        return error(&format!("cannot render the page: {e}"));
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => error(&format!("cannot write: {e}")),
    }
}
