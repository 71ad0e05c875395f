//! How a comparison is shown: a unified diff for people, JUnit XML for CI
//! systems, JSON for programs.

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
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

/// What a JUnit report says of the run besides its test cases.
pub struct Run<'a> {
    /// The suite: the capture replayed.
    pub suite: &'a str,
    /// When the replay began, and how long it took.
    pub started: std::time::SystemTime,
    pub seconds: f64,
    /// Shown as the suite's properties: the target, the window, the pace.
    pub properties: Vec<(&'static str, String)>,
}

/// JUnit XML (written by quick-junit, the format CI dashboards read): one
/// test case per request, failed when its exchange differs, with the
/// target's transcript of it as the case's system-out. Exchanges are paired
/// by position; a transcript of another length adds failing cases for the
/// extra or missing requests.
pub fn junit(run: &Run<'_>, expected: &[Exchange], actual: &[Exchange]) -> Result<String, String> {
    let mut suite = TestSuite::new(run.suite);
    let started = run.started.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    if let Some(at) = chrono::DateTime::from_timestamp(started.as_secs() as i64, started.subsec_nanos()) {
        suite.set_timestamp(at.fixed_offset());
    }
    suite.set_time(std::time::Duration::from_secs_f64(run.seconds.max(0.0)));
    for (name, value) in &run.properties {
        suite.add_property(Property::new(*name, value.as_str()));
    }
    for i in 0..expected.len().max(actual.len()) {
        let want = expected.get(i).map(|e| render(std::slice::from_ref(e))).unwrap_or_default();
        let got = actual.get(i).map(|e| render(std::slice::from_ref(e))).unwrap_or_default();
        let name = expected.get(i).or(actual.get(i)).map(Exchange::heading).unwrap_or_default();
        let status = if want == got {
            TestCaseStatus::success()
        } else {
            let mut failure = TestCaseStatus::non_success(NonSuccessKind::Failure);
            failure.set_message("replies differ from the reference");
            failure.set_description(changed_lines(&want, &got));
            failure
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(run.suite);
        case.set_system_out(got);
        suite.add_test_case(case);
    }
    let mut report = Report::new("ldm-sniff conform");
    report.add_test_suite(suite);
    report.to_string().map_err(|e| format!("cannot write the JUnit report: {e}"))
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
        let run = Run {
            suite: "ref.pcapng",
            started: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
            seconds: 1.5,
            properties: vec![("target", "239.129.9.27:64535".to_string())],
        };
        let xml = junit(&run, &want, &got).unwrap();
        assert!(xml.contains("tests=\"2\"") && xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("+  reply: &lt;z&gt;"), "{xml}");
        assert!(xml.contains("<property name=\"target\" value=\"239.129.9.27:64535\"/>"), "{xml}");
        assert!(xml.contains("timestamp=\"2027-01-15T08:00:00"), "{xml}");
        assert!(xml.contains("<system-out>request 2"), "{xml}");
        assert_eq!(xml.matches("<testcase").count(), 2);
    }
}
