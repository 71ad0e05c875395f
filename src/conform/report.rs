//! How a comparison is shown: a unified diff for people, JUnit XML for CI
//! systems, JSON for programs.

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use super::transcript::{render, Exchange};

/// A unified diff of two transcripts, or None when they are equal.
pub fn diff(expected: &str, actual: &str, expected_name: &str, actual_name: &str, color: bool) -> Option<String> {
    if expected == actual {
        return None;
    }
    let text_diff = TextDiff::from_lines(expected, actual);
    let unified = text_diff.unified_diff().context_radius(3).header(expected_name, actual_name).to_string();
    if !color {
        return Some(unified);
    }
    let colored = unified
        .lines()
        .map(|line| match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => format!("\x1b[32m{line}\x1b[0m"),
            Some(b'-') if !line.starts_with("---") => format!("\x1b[31m{line}\x1b[0m"),
            Some(b'@') => format!("\x1b[36m{line}\x1b[0m"),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(colored + "\n")
}

/// Lines that differ, for a one-line reason per request.
fn changed_lines(expected: &str, actual: &str) -> String {
    let text_diff = TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    for change in text_diff.iter_all_changes() {
        let sign = match change.tag() {
            ChangeTag::Delete => "-",
            ChangeTag::Insert => "+",
            ChangeTag::Equal => continue,
        };
        let _ = write!(out, "{sign}{change}");
    }
    out
}

fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test case per request, failed when its exchange differs.
/// Exchanges are paired by position; a transcript of another length adds
/// failing cases for the extra or missing requests.
pub fn junit(suite: &str, expected: &[Exchange], actual: &[Exchange], seconds: f64) -> String {
    let count = expected.len().max(actual.len());
    let mut cases = String::new();
    let mut failures = 0;
    for i in 0..count {
        let want = expected.get(i).map(|e| render(std::slice::from_ref(e))).unwrap_or_default();
        let got = actual.get(i).map(|e| render(std::slice::from_ref(e))).unwrap_or_default();
        let name = expected.get(i).or(actual.get(i)).map(Exchange::heading).unwrap_or_default();
        let _ = write!(cases, "    <testcase classname=\"{}\" name=\"{}\"", escape_xml(suite), escape_xml(&name));
        if want == got {
            cases.push_str("/>\n");
            continue;
        }
        failures += 1;
        let changed = changed_lines(&want, &got);
        let _ = write!(
            cases,
            ">\n      <failure message=\"replies differ from the reference\">{}</failure>\n    </testcase>\n",
            escape_xml(&changed)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{count}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        escape_xml(suite)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(index: usize, replies: &[&str]) -> Exchange {
        Exchange {
            index,
            frame: index as u64,
            request: "LDMD_DISC_SEND".into(),
            replies: replies.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn diff_names_the_changed_line() {
        let want = render(&[exchange(1, &["LDMD_DISC_RESP version_no=1"])]);
        let got = render(&[exchange(1, &["LDMD_DISC_RESP version_no=2"])]);
        assert_eq!(diff(&want, &want, "a", "b", false), None);
        let shown = diff(&want, &got, "recorded", "target", false).unwrap();
        assert!(shown.contains("--- recorded") && shown.contains("+++ target"), "{shown}");
        assert!(shown.contains("-  reply: LDMD_DISC_RESP version_no=1"), "{shown}");
        assert!(shown.contains("+  reply: LDMD_DISC_RESP version_no=2"), "{shown}");
    }

    #[test]
    fn junit_has_one_case_per_request() {
        let want = [exchange(1, &["x"]), exchange(2, &["y"])];
        let got = [exchange(1, &["x"]), exchange(2, &["<z>"])];
        let xml = junit("ref.pcapng", &want, &got, 1.5);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("+  reply: &lt;z&gt;"), "{xml}");
        assert_eq!(xml.matches("<testcase").count(), 2);
    }
}
