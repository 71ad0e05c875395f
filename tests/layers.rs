//! Data flows one way (src/lib.rs): capture -> dissect -> analyze -> filter
//! -> output. No module imports one that comes after it, so a change to an
//! output never reaches back into decoding (issue 24: analyze and output
//! once imported each other).

use std::path::{Path, PathBuf};

/// Each layer, and the crate modules it must not use.
const LAYERS: &[(&str, &[&str])] = &[
    ("wire", &["capture", "dissect", "analyze", "filter", "output", "report", "pipeline"]),
    ("capture", &["dissect", "analyze", "filter", "output", "report", "pipeline"]),
    ("dissect", &["analyze", "filter", "output", "report", "pipeline"]),
    ("analyze", &["filter", "output", "report", "pipeline"]),
    ("filter", &["output", "report", "pipeline"]),
    ("output", &["report", "pipeline"]),
    ("report", &["output", "pipeline"]),
];

fn sources(layer: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.join(layer)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let file = src.join(format!("{layer}.rs"));
    if file.is_file() {
        files.push(file);
    }
    files.sort();
    files
}

/// The code before the file's unit tests (tests may build what they need).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[test]
fn no_layer_imports_a_later_one() {
    let mut wrong = Vec::new();
    for (layer, later) in LAYERS {
        let files = sources(layer);
        assert!(!files.is_empty(), "no sources for {layer}");
        for path in files {
            let code = code(&path);
            for module in *later {
                let uses = [format!("crate::{module}::"), format!("crate::{module};"), format!("crate::{module}}}")];
                if uses.iter().any(|pattern| code.contains(pattern.as_str())) {
                    wrong.push(format!("{} uses crate::{module}", path.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the flow:\n{}", wrong.join("\n"));
}
