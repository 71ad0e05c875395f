//! `--report FILE.html` (issue 28): the page for two bundled stories
//! (snapshots), its promises (deterministic, self-contained, every SVG well
//! formed, -Y narrows what it draws and not the verdict, bounded on long
//! captures), and the page in a real browser: Debian's chromium, headless,
//! in a network namespace of its own with nothing in it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{captures, have, is_root, BIN};

const SECTIONS: [&str; 5] = ["verdict", "timeline", "flows", "rtt", "inventory"];

/// Runs ldm-sniff with `--report` into `dir`; the page and the run's output.
fn report_in(dir: &Path, args: &[&str]) -> (String, Output) {
    let path = dir.join("report.html");
    let output = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .arg("--report")
        .arg(&path)
        .output()
        .expect("ldm-sniff runs");
    let page = std::fs::read_to_string(&path).unwrap_or_default();
    (page, output)
}

fn report(args: &[&str]) -> (String, Output) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    report_in(dir.path(), args)
}

/// Every `<svg>...</svg>` of the page.
fn svgs(page: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let Some(end) = rest[start..].find("</svg>") else { break };
        found.push(&rest[start..start + end + "</svg>".len()]);
        rest = &rest[start + end..];
    }
    found
}

/// The section of the page with this id.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page.find(&format!("<section id=\"{id}\">")).unwrap_or_else(|| panic!("no section {id}"));
    let end = page[start..].find("</section>").expect("the section ends");
    &page[start..start + end]
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn the_incident_report() {
    let (page, output) = report(&["-q", "-r", "captures/incident.pcapng"]);
    assert_eq!(output.status.code(), Some(1), "errors found: exit status 1");
    let verdict = section(&page, "verdict");
    assert!(verdict.contains("Exit status <strong>1</strong>"), "{verdict}");
    // Worst first: the late response and the second owner before the notes.
    let late = verdict.find("ldm.late_response").expect("late response listed");
    let owner = verdict.find("ldm.duplicate_owner").expect("duplicate owner listed");
    let collision = verdict.find("ldm.collision").expect("collisions listed");
    assert!(late < collision && owner < collision, "{verdict}");
    assert!(verdict.contains("11 (21.450 s)") && verdict.contains("14 (41.120 s)"), "{verdict}");
    snapshot!("report_incident", page);
}

#[test]
fn the_libvirt_session_report() {
    let (page, output) = report(&["-q", "-r", "captures/libvirt/virsh-session.pcap"]);
    assert_eq!(output.status.code(), Some(0));
    let inventory = section(&page, "inventory");
    assert!(inventory.contains("<td>CONNECT_OPEN</td>"), "{inventory}");
    assert!(inventory.contains("libvirt reply times per procedure"), "{inventory}");
    snapshot!("report_libvirt_session", page);
}

#[test]
fn the_same_capture_makes_the_same_page() {
    let (first, _) = report(&["-q", "-r", "captures/incident.pcapng"]);
    let (second, _) = report(&["-r", "captures/incident.pcapng"]);
    assert!(!first.is_empty());
    assert_eq!(first, second, "packet output or -q must not change the page");
}

/// Every bundled capture makes a page with every section, whose SVGs are
/// well-formed XML, and that names nothing outside itself.
#[test]
fn every_capture_makes_a_self_contained_page() {
    for capture in captures() {
        let name = capture.to_string_lossy().to_string();
        let (page, output) = report(&["-q", "-r", &name]);
        assert!(matches!(output.status.code(), Some(0 | 1)), "{name}: {output:?}");
        for id in SECTIONS {
            section(&page, id);
        }
        let charts = svgs(&page);
        assert!(!charts.is_empty(), "{name}: at least the timeline");
        for svg in charts {
            if let Err(e) = roxmltree::Document::parse(svg) {
                panic!("{name}: an SVG is not well-formed XML: {e}");
            }
        }
        assert_self_contained(&page, &name);
    }
}

/// Nothing the browser would fetch: no links, sources, imports or URLs but
/// the SVG namespace and the page's own anchors.
fn assert_self_contained(page: &str, name: &str) {
    let without_namespace = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for pattern in ["http://", "https://", "src=", "<link", "@import", "url(", "//cdn", "<iframe", "<object", "<embed"]
    {
        assert!(!without_namespace.contains(pattern), "{name}: the page contains {pattern:?}");
    }
    for href in without_namespace.match_indices("href=\"").map(|(at, _)| &without_namespace[at + 6..]) {
        assert!(href.starts_with('#'), "{name}: a link leaves the page: {}", &href[..href.len().min(60)]);
    }
}

#[test]
fn a_display_filter_narrows_the_pictures_not_the_verdict() {
    let (page, output) = report(&["-q", "-Y", "ldm.mac == 00:14:4f:f8:20:02", "-r", "captures/incident.pcapng"]);
    assert_eq!(output.status.code(), Some(1));
    let verdict = section(&page, "verdict");
    assert!(verdict.contains("ldm.late_response") && verdict.contains("ldm.duplicate_owner"), "{verdict}");
    assert!(page.contains("<code>ldm.mac == 00:14:4f:f8:20:02</code>"));
    let flows = section(&page, "flows");
    assert!(flows.contains("All 1 exchange(s) of the capture, 2 packet(s)."), "{flows}");
    assert!(flows.contains("#7") && flows.contains("#8") && !flows.contains("#10<"), "{flows}");
    let inventory = section(&page, "inventory");
    assert!(inventory.contains("<td>00:14:4f:f8:20:02</td>"), "{inventory}");
    assert!(!inventory.contains("<td>00:14:4f:f8:12:34</td>"), "{inventory}");
    // The two hosts of that exchange, not the other three.
    assert!(inventory.contains("<td>10.1.1.11</td>") && inventory.contains("<td>10.1.1.12</td>"), "{inventory}");
    assert!(!inventory.contains("<td>10.1.1.13</td>"), "{inventory}");
}

/// Past 300 packets the flow graph draws the exchanges with findings and
/// counts the rest where they were left out.
#[test]
fn a_long_capture_gets_a_summarised_flow_graph() {
    let (page, _) = report(&["-q", "-r", "captures/startup-check-too-big.pcapng"]);
    let flows = section(&page, "flows");
    assert!(flows.contains("1100 exchanges: too many to draw, so only the 2 with findings are drawn"), "{flows}");
    assert!(flows.contains("… 19 exchange(s) without findings not drawn …"), "{flows}");
    assert!(flows.contains("… 1004 exchange(s) without findings not drawn …"), "{flows}");
    assert!(flows.contains("… 75 exchange(s) without findings not drawn …"), "{flows}");
    let inventory = section(&page, "inventory");
    assert!(inventory.contains("100 more row(s) not shown"), "1,100 MACs, 1,000 on the page");
    assert!(page.len() < 2_000_000, "{} bytes", page.len());
}

#[test]
fn a_damaged_capture_reports_what_it_read_and_why_it_stopped() {
    let (page, output) = report(&["-q", "-r", "captures/broken/cut-short.pcap"]);
    assert_eq!(output.status.code(), Some(2));
    let verdict = section(&page, "verdict");
    assert!(verdict.contains("Exit status <strong>2</strong>: the capture could not be read to its end"), "{verdict}");
    assert!(verdict.contains("byte offset 764"), "{verdict}");
    assert!(page.contains("2 frames"), "the frames before the damage are reported");
}

#[test]
fn a_report_that_cannot_be_written_is_a_clear_error() {
    let output = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-q", "-r", "captures/incident.pcapng", "--report", "/nonexistent/dir/report.html"])
        .output()
        .expect("ldm-sniff runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--report /nonexistent/dir/report.html: cannot write"), "{stderr}");
    assert!(output.stdout.is_empty(), "refused before reading: {}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn a_report_never_overwrites_the_capture_or_goes_to_standard_output() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let capture = dir.path().join("incident.pcapng");
    let original = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/incident.pcapng")).unwrap();
    std::fs::write(&capture, &original).expect("copied");
    let capture = capture.to_str().unwrap();
    for (report, message) in
        [(capture, "is the capture being read"), ("-", "writes the page to a file, not to standard output")]
    {
        let output = Command::new(BIN).args(["-q", "-r", capture, "--report", report]).output().expect("runs");
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }
    assert_eq!(std::fs::read(capture).unwrap(), original, "the capture is untouched");
}

/// Runs chromium headless on `url` inside an empty network namespace, with
/// every host name resolving to nothing and a net log of every request.
struct Browser {
    namespace: String,
    dir: tempfile::TempDir,
}

impl Browser {
    fn new() -> Browser {
        // One per test: the tests of this file run at once, in one process.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let namespace = format!("ldmrep{}x{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &namespace]).output();
        common::ip(&["netns", "add", &namespace]);
        Browser { namespace, dir: tempfile::tempdir().expect("a temporary directory") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// chromium with `args` on `page`; its net log is `netlog.json`.
    fn run(&self, page: &Path, args: &[&str]) -> Output {
        let profile = self.path("profile");
        let output = Command::new("ip")
            .args(["netns", "exec", &self.namespace, "timeout", "-k", "5", "120", "chromium"])
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--host-resolver-rules=MAP * ~NOTFOUND",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--log-net-log={}", self.path("netlog.json").display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        assert!(output.status.success(), "chromium: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// The URLs of every request a page made in the last run (the net
    /// log's URL_REQUEST_START_JOB events with a page as initiator: the
    /// browser's own, such as its component updater, say "not an origin"),
    /// the page's own file aside.
    fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.path("netlog.json")).expect("chromium wrote its net log");
        let log: serde_json::Value = serde_json::from_str(&log).expect("the net log is JSON");
        let start_job = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
        let mut urls: Vec<String> = log["events"]
            .as_array()
            .expect("net log events")
            .iter()
            .filter(|event| &event["type"] == start_job)
            .filter(|event| event["params"]["initiator"] != "not an origin")
            .filter_map(|event| event["params"]["url"].as_str())
            .filter(|url| !url.starts_with("file:"))
            .map(str::to_string)
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.namespace]).output();
    }
}

fn can_browse(test: &str) -> bool {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: {test} must run");
        eprintln!("{test}: skipped (needs root for its network namespace)");
        return false;
    }
    have("chromium", test)
}

/// A PNG's pixels, and the samples each has.
fn pixels(png_path: &Path) -> (Vec<u8>, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).expect("a PNG")));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    pixels.truncate(info.buffer_size());
    (pixels, info.color_type.samples())
}

/// The share of pixels that are not the page's white, and how many colours.
fn ink(png_path: &Path) -> (f64, usize) {
    let (pixels, channels) = pixels(png_path);
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    let total = pixels.len() / channels;
    for pixel in pixels.chunks(channels) {
        let rgb = &pixel[..3.min(channels)];
        if rgb.iter().any(|&v| v < 240) {
            inked += 1;
        }
        colours.insert(rgb.to_vec());
    }
    (inked as f64 / total as f64, colours.len())
}

#[test]
fn the_report_renders_in_a_real_browser_without_the_network() {
    if !can_browse("the_report_renders_in_a_real_browser_without_the_network") {
        return;
    }
    let browser = Browser::new();
    let (page, _) = report_in(browser.dir.path(), &["-q", "-r", "captures/incident.pcapng"]);
    let page_path = browser.path("report.html");

    // The DOM after loading: every section, every chart, no parse error.
    let dom = String::from_utf8_lossy(&browser.run(&page_path, &["--dump-dom"]).stdout).to_string();
    for id in SECTIONS {
        assert!(dom.contains(&format!("<section id=\"{id}\">")), "the DOM lacks section {id}");
    }
    assert_eq!(dom.matches("<svg").count(), svgs(&page).len(), "every SVG of the page is in the DOM");
    assert!(!dom.contains("parsererror"));
    assert_eq!(browser.requests(), Vec::<String>::new(), "the page fetched something");

    // Every SVG parsed as XML by the browser: one XHTML page holding them all.
    let xhtml = |charts: &[&str]| {
        format!("<html xmlns=\"http://www.w3.org/1999/xhtml\"><body>{}</body></html>", charts.join("\n"))
    };
    let all = browser.path("svgs.xhtml");
    std::fs::write(&all, xhtml(&svgs(&page))).expect("written");
    let parsed = String::from_utf8_lossy(&browser.run(&all, &["--dump-dom"]).stdout).to_string();
    assert!(!parsed.contains("parsererror"), "the browser could not parse an SVG: {parsed}");
    assert_eq!(parsed.matches("<svg").count(), svgs(&page).len());
    // ...and that check can fail: a broken SVG is reported.
    let broken = browser.path("broken.xhtml");
    std::fs::write(&broken, xhtml(&["<svg xmlns=\"http://www.w3.org/2000/svg\"><text>x</svg>"])).expect("written");
    let parsed = String::from_utf8_lossy(&browser.run(&broken, &["--dump-dom"]).stdout).to_string();
    assert!(parsed.contains("parsererror"), "a broken SVG went unnoticed: {parsed}");

    // ...and so can the check for requests.
    let fetching = browser.path("fetching.html");
    std::fs::write(&fetching, "<!DOCTYPE html><img src=\"http://10.255.255.1/logo.png\"><p>x</p>").expect("written");
    browser.run(&fetching, &["--dump-dom"]);
    assert_eq!(browser.requests(), ["http://10.255.255.1/logo.png"]);

    // A picture of it: not blank.
    let png = browser.path("report.png");
    browser.run(&page_path, &["--window-size=1240,2400", &format!("--screenshot={}", png.display())]);
    let (share, colours) = ink(&png);
    assert!(share > 0.03 && colours > 20, "the screenshot looks blank: {share:.3} inked, {colours} colours");
    // Without JavaScript the page looks the same, pixel for pixel (the
    // script only sorts tables when a heading is clicked). Scripts are
    // refused by a content security policy in a copy of the page (headless
    // chromium's own switch for it leaves no screenshot); a marker script
    // shows the policy holds.
    let blocked =
        page.replacen("<head>", "<head><meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\">", 1);
    let blocked = blocked.replacen("</body>", "<script>document.body.id = 'scripts-ran';</script></body>", 1);
    let no_script_page = browser.path("no-script.html");
    std::fs::write(&no_script_page, blocked).expect("written");
    let dom = String::from_utf8_lossy(&browser.run(&no_script_page, &["--dump-dom"]).stdout).to_string();
    assert!(dom.contains("<section id=\"verdict\">") && !dom.contains("<body id=\"scripts-ran\""), "scripts ran");
    let no_script = browser.path("no-script.png");
    let screenshot = format!("--screenshot={}", no_script.display());
    browser.run(&no_script_page, &["--window-size=1240,2400", &screenshot]);
    assert!(pixels(&no_script) == pixels(&png), "the page looks different without JavaScript");

    // Printable: a PDF of more than one page.
    let pdf = browser.path("report.pdf");
    browser.run(&page_path, &["--no-pdf-header-footer", &format!("--print-to-pdf={}", pdf.display())]);
    let bytes = std::fs::read(&pdf).expect("chromium printed the page");
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    assert!(bytes.len() > 20_000, "a {}-byte PDF", bytes.len());
}

/// With JavaScript the inventory sorts by a click on a heading; the test
/// clicks as a user would, through the page's own script.
#[test]
fn the_inventory_sorts_in_a_real_browser() {
    if !can_browse("the_inventory_sorts_in_a_real_browser") {
        return;
    }
    let browser = Browser::new();
    let (page, _) = report_in(browser.dir.path(), &["-q", "-r", "captures/incident.pcapng"]);
    let clicks = "<script>var th = document.querySelectorAll('#macs + div th')[0]; th.click(); th.click();\
                  var look = document.querySelectorAll('#hosts + div th')[7]; look.click();</script></body>";
    let clicked = browser.path("clicked.html");
    std::fs::write(&clicked, page.replace("</body>", clicks)).expect("written");
    let dom = String::from_utf8_lossy(&browser.run(&clicked, &["--dump-dom"]).stdout).to_string();
    let macs = &dom[dom.find("id=\"macs\"").expect("the MAC table")..];
    let first_row = &macs[macs.find("<tbody>").expect("rows")..];
    assert!(first_row[..200].contains("00:14:4f:f8:20:04"), "MACs sorted descending: {}", &first_row[..200]);
    assert!(macs.contains("aria-sort=\"descending\""));
    // Numbers sort as numbers: packets 2, 3, 3, 4, 5... not by their text.
    let hosts = &dom[dom.find("id=\"hosts\"").expect("the host table")..];
    let body = &hosts[hosts.find("<tbody>").expect("rows")..hosts.find("</tbody>").expect("end")];
    let packets: Vec<u64> = body
        .split("<tr")
        .skip(1)
        .map(|row| row.split("<td>").nth(8).and_then(|cell| cell.split('<').next()?.parse().ok()).expect("packets"))
        .collect();
    let mut sorted = packets.clone();
    sorted.sort();
    assert_eq!(packets, sorted, "hosts sorted by packets");
}
