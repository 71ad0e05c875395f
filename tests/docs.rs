//! `completions` and `man`: the scripts load in their shells and complete
//! our flags and commands; every page renders in man(1) without warnings
//! and lists the flags clap defines. CI installs bash, zsh, fish and
//! man-db; elsewhere a missing one says it skipped.

mod common;

use common::have;

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

const BIN: &str = env!("CARGO_BIN_EXE_ldm-sniff");

fn script(shell: &str) -> String {
    let out = Command::new(BIN).args(["completions", shell]).output().expect("runs");
    assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// What bash offers after `words` (the last one being completed).
fn bash_completes(words: &[&str]) -> Vec<String> {
    let program = format!(
        "source <('{BIN}' completions bash)\n\
         COMP_WORDS=({words})\n\
         COMP_CWORD={last}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _ldm__sniff ldm-sniff \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        last = words.len() - 1,
    );
    let out = Command::new("bash").args(["-c", &program]).output().expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn bash_loads_the_completions_and_completes_flags_and_commands() {
    if !have("bash", "bash_loads_the_completions") {
        return;
    }
    let program = format!("source <('{BIN}' completions bash); complete -p ldm-sniff");
    let out = Command::new("bash").args(["-c", &program]).output().expect("bash runs");
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && registered.contains("ldm-sniff"), "{registered}");

    let flags = bash_completes(&["ldm-sniff", "-"]);
    for flag in ["-r", "-Y", "-z", "-b", "-F", "--annotate", "--fail-on"] {
        assert!(flags.iter().any(|f| f == flag), "{flag} not offered: {flags:?}");
    }
    assert_eq!(bash_completes(&["ldm-sniff", "emu"]), ["emulate"]);
    let formats = bash_completes(&["ldm-sniff", "-F", ""]);
    assert_eq!(formats, ["pcapng", "pcap"]);
    let emulate = bash_completes(&["ldm-sniff", "emulate", "--al"]);
    assert_eq!(emulate, ["--allocate"]);
}

#[test]
fn zsh_and_fish_read_their_scripts() {
    for (shell, check) in [("zsh", vec!["-n"]), ("fish", vec!["--no-execute"])] {
        if !have(shell, "zsh_and_fish_read_their_scripts") {
            continue;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(format!("ldm-sniff.{shell}"));
        std::fs::write(&path, script(shell)).expect("written");
        let out = Command::new(shell).args(&check).arg(&path).output().expect("shell runs");
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // elvish and powershell are not in Debian: their scripts are at least
    // made, and name our flags.
    for shell in ["elvish", "powershell"] {
        let text = script(shell);
        assert!(text.contains("--annotate") && text.contains("emulate"), "{shell}");
    }
}

/// Renders a page as man(1) does, with groff's warnings on.
fn render(page: &Path) -> String {
    let out =
        Command::new("man").env("MANWIDTH", "100").args(["--warnings", "-l"]).arg(page).output().expect("man runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{}: {stderr}", page.display());
    // Bold and underline, if any, are overstruck: a character, a backspace, another.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    text
}

#[test]
fn every_page_renders_and_lists_its_flags() {
    if !have("man", "every_page_renders_and_lists_its_flags") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(BIN).args(["man", "--dir"]).arg(dir.path()).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut command = ldm_sniff::cli::Args::command().disable_help_subcommand(true);
    command.build();
    let mut pages = vec![("ldm-sniff.1".to_string(), command.clone())];
    for sub in command.get_subcommands() {
        pages.push((format!("ldm-sniff-{}.1", sub.get_name()), sub.clone()));
    }
    let written = std::fs::read_dir(dir.path()).expect("readable").count();
    assert_eq!(written, pages.len(), "one page per command");
    for (file, cmd) in pages {
        let text = render(&dir.path().join(&file));
        assert!(text.contains("NAME") && text.contains("SYNOPSIS"), "{file}");
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional()) {
            let name = arg.get_long().map(|l| format!("--{l}")).or(arg.get_short().map(|c| format!("-{c}")));
            let name = name.expect("a flag has a name");
            assert!(text.contains(&name), "{file} does not list {name}");
        }
    }
}

#[test]
fn one_page_prints_for_man_l_and_an_unknown_one_is_an_error() {
    let page = Command::new(BIN).args(["man", "conform"]).output().expect("runs");
    assert!(page.status.success());
    let roff = String::from_utf8_lossy(&page.stdout);
    assert!(roff.starts_with(".ie \\n(.g .ds Aq") || roff.contains(".TH ldm-sniff-conform"), "{roff}");
    let unknown = Command::new(BIN).args(["man", "nope"]).output().expect("runs");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("the commands are discover, check-mac"));
    let shell = Command::new(BIN).args(["completions", "tcsh"]).output().expect("runs");
    assert_eq!(shell.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&shell.stderr).contains("bash"));
}
