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
        .map(|(name, _)| *name)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "README.md's \"Display filters\" does not list: {missing:?}");
}
