//! README.md states what the code does: its anomaly table is the catalogue.

const START: &str = "<!-- anomaly-table:start -->\n";
const END: &str = "<!-- anomaly-table:end -->";

#[test]
fn readme_anomaly_table_matches_the_catalogue() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md present");
    let start = readme.find(START).expect("README has the anomaly-table:start marker") + START.len();
    let end = readme[start..].find(END).expect("README has the anomaly-table:end marker") + start;
    let expected = ldm_sniff::expert::markdown_table();
    assert!(
        readme[start..end] == expected,
        "README.md's anomaly table differs from src/expert.rs; replace it with:\n{expected}"
    );
}

#[test]
fn readme_lists_every_filter_field() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md present");
    let missing: Vec<&str> = ldm_sniff::filter::FIELDS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "README.md's \"Display filters\" does not list: {missing:?}");
}

/// The Usage table of README.md and the flags clap defines: every visible
/// flag is in the table (by its short or long name), every flag in the table
/// exists, and both the table and `--help` name every `-z` table.
#[test]
fn readme_flag_table_matches_the_flags() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md present");
    let start = readme.find("| flag | meaning |").expect("README has the flag table");
    let table: Vec<&str> = readme[start..].lines().skip(2).take_while(|line| line.starts_with('|')).collect();
    let mut listed = std::collections::BTreeSet::new();
    for row in &table {
        let first_cell = row.split(" | ").next().unwrap_or_default();
        for quoted in first_cell.split('`').skip(1).step_by(2) {
            let flag = quoted.split_whitespace().next().unwrap_or_default();
            assert!(flag.starts_with('-'), "a flag cell quotes {quoted:?}");
            listed.insert(flag.to_string());
        }
    }
    let mut command = ldm_sniff::cli::Args::command();
    command.build();
    let mut known = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    for arg in command.get_arguments().filter(|arg| !arg.is_hide_set() && !arg.is_positional()) {
        let names: Vec<String> = arg
            .get_short()
            .map(|c| format!("-{c}"))
            .into_iter()
            .chain(arg.get_long().map(|l| format!("--{l}")))
            .collect();
        if !names.iter().any(|name| listed.contains(name)) {
            missing.push(names.join("/"));
        }
        known.extend(names);
    }
    assert!(missing.is_empty(), "README.md's flag table does not list {missing:?}");
    let unknown: Vec<&String> = listed.iter().filter(|flag| !known.contains(*flag)).collect();
    assert!(unknown.is_empty(), "README.md's flag table lists flags clap does not define: {unknown:?}");
    let stats_help = command
        .get_arguments()
        .find(|arg| arg.get_short() == Some('z'))
        .and_then(|arg| arg.get_help())
        .map(|help| help.to_string())
        .unwrap_or_default();
    let z_row = table.iter().find(|row| row.starts_with("| `-z")).expect("a -z row");
    for kind in ldm_sniff::analyze::StatsKind::ALL {
        assert!(stats_help.contains(kind.name()), "-z's help does not name {}", kind.name());
        assert!(z_row.contains(kind.name()), "README's -z row does not name {}", kind.name());
    }
}
