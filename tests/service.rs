//! ldm-sniff as a long-running service: `--metrics` scraped by a real
//! Prometheus server (Debian's `prometheus`), the alert rules checked and
//! unit-tested with promtool, the systemd unit checked with
//! systemd-analyze. CI installs them and runs as root; elsewhere each test
//! says it skipped. Prometheus runs in the test's own network namespace and
//! temporary directory, and is stopped by PID, also when a test fails.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{can_run, have, in_namespace, interrupt, wait, Pair, BIN};
use ldm_sniff::wire::ldm::{self, MsgType, Repr};

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(path)
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    if !have("promtool", "alert_rules_pass_promtool") {
        return;
    }
    let check =
        Command::new("promtool").arg("check").arg("rules").arg(contrib("prometheus/ldm-sniff.rules.yml")).output();
    let check = check.expect("promtool runs");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = Command::new("promtool")
        .args(["test", "rules", "ldm-sniff.rules.test.yml"])
        .current_dir(contrib("prometheus"))
        .output()
        .expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&test.stdout), String::from_utf8_lossy(&test.stderr));
    assert!(test.status.success() && text.contains("SUCCESS"), "{text}");
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    if !have("systemd-analyze", "the_systemd_unit_verifies") {
        return;
    }
    // verify wants ExecStart's binary to exist: the unit names where the
    // README installs it; here it is pointed at the one just built.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let unit = std::fs::read_to_string(contrib("systemd/ldm-sniff@.service")).expect("the unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/ldm-sniff -i %I"), "{unit}");
    std::fs::write(dir.path().join("ldm-sniff@.service"), unit.replace("/usr/local/bin/ldm-sniff", BIN)).unwrap();
    let instance = dir.path().join("ldm-sniff@eth0.service");
    // The man page is not installed where the test runs.
    let verify = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&instance).output().expect("runs");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    // verify exits 0 on a directive it ignores: a warning is a failure here.
    assert!(verify.status.success() && stderr.trim().is_empty(), "{stderr}");
    let security =
        Command::new("systemd-analyze").args(["security", "--offline=yes"]).arg(&instance).output().expect("runs");
    let text = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ldm-sniff@eth0.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    // systemd's scale: 0 is locked down, 10 is exposed; "OK" is below 4.
    assert!(exposure < 3.0, "exposure {exposure}: {text}");
}

/// A process started by this test, stopped by PID when dropped (also on failure).
struct Started(Option<Child>);

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Prometheus in namespace `ns`, scraping `target` every second, with its
/// files in `dir`; its API on 127.0.0.1:19090 there.
fn start_prometheus(ns: &str, dir: &Path, target: &str) -> Started {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ldm-sniff\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("config written");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "prometheus"])
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .args(["--web.listen-address=127.0.0.1:19090", "--log.level=warn"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    Started(Some(child))
}

/// GET `path` from 127.0.0.1:`port` inside namespace `ns`; the body, if any.
fn http_get(ns: &str, port: u16, path: &str, accept: &str) -> Option<(String, String)> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n");
    in_namespace(ns, move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        Some((head.to_string(), body.to_string()))
    })
    .join()
    .expect("the request thread")
}

/// The value Prometheus has for an instant query, if it has one.
fn query(ns: &str, expression: &str) -> Option<f64> {
    let encoded: String = expression
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let (_, body) = http_get(ns, 19090, &format!("/api/v1/query?query={encoded}"), "application/json")?;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = json["data"]["result"].as_array()?;
    let sum: f64 = result.iter().filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok()).sum();
    (!result.is_empty()).then_some(sum)
}

/// Waits (at most 30 s) until Prometheus answers `expression` with `want`;
/// returns the last answer.
fn wait_for(ns: &str, expression: &str, want: f64) -> Option<f64> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(30) {
        last = query(ns, expression);
        if last == Some(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    last
}

/// Sends from namespace `a`: a discovery answered twice, a lookup answered
/// at once (a collision), a lookup answered after 1.3 s (a late response).
fn send_story(pair: &Pair) {
    let source: Ipv4Addr = pair.addr_a.parse().expect("address");
    let sender = in_namespace(&pair.a, move || -> std::io::Result<()> {
        let socket = UdpSocket::bind(SocketAddrV4::new(source, 64535))?;
        socket.set_multicast_ttl_v4(1)?;
        let group = SocketAddrV4::new(ldm::GROUP, 64535);
        let pause = |ms| std::thread::sleep(Duration::from_millis(ms));
        let (taken, late) = ([0x00, 0x14, 0x4f, 0xf8, 0x00, 0x01], [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x02]);
        let story: [(Repr, u64); 7] = [
            (Repr::discovery_request(), 5),
            (Repr::discovery_response("3.6.1.0.11", "ns-a", source), 5),
            (Repr::discovery_response("3.6.1.0.11", "ns-a", source), 5),
            (Repr::lookup(MsgType::SendMsg, taken, source), 5),
            (Repr::lookup(MsgType::ResponseMsg, taken, source), 5),
            (Repr::lookup(MsgType::SendMsg, late, source), 1300),
            (Repr::lookup(MsgType::ResponseMsg, late, source), 5),
        ];
        for (message, then) in story {
            socket.send_to(&message.to_bytes(), group)?;
            pause(then);
        }
        Ok(())
    });
    sender.join().expect("sender thread").expect("sending inside the namespace");
}

#[test]
fn prometheus_scrapes_what_a_live_capture_saw() {
    if !can_run("prometheus_scrapes_what_a_live_capture_saw") || !have("prometheus", "prometheus_scrapes") {
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let written = dir.path().join("live.pcapng");
    let capture =
        pair.capture(&["-q", "--fail-on", "never", "--metrics", "127.0.0.1:19464", "-w", written.to_str().unwrap()]);
    let mut capture = Started(Some(capture));
    let _prometheus = start_prometheus(&pair.b, dir.path(), "127.0.0.1:19464");
    assert_eq!(wait_for(&pair.b, "up{job=\"ldm-sniff\"}", 1.0), Some(1.0), "Prometheus scrapes the sniffer");

    // Both formats, as the Accept header asks.
    let (head, body) = http_get(&pair.b, 19464, "/metrics", "text/plain").expect("metrics");
    assert!(
        head.contains("text/plain; version=0.0.4") && body.contains("# TYPE ldm_sniff_frames_total counter"),
        "{head}"
    );
    let (head, body) =
        http_get(&pair.b, 19464, "/metrics", "application/openmetrics-text;version=1.0.0").expect("metrics");
    assert!(head.contains("application/openmetrics-text") && body.ends_with("# EOF\n"), "{head}");

    send_story(&pair);
    let expected = [
        ("ldm_sniff_packets_total{msg_type=\"LDMD_DISC_SEND\"}", 1.0),
        ("ldm_sniff_packets_total{msg_type=\"LDMD_DISC_RESP\"}", 2.0),
        ("ldm_sniff_packets_total{msg_type=\"SEND_MSG\"}", 2.0),
        ("ldm_sniff_packets_total{msg_type=\"RESPONSE_MSG\"}", 2.0),
        ("ldm_sniff_lookups_total", 2.0),
        ("ldm_sniff_collisions_total", 1.0),
        ("ldm_sniff_late_responses_total", 1.0),
        ("ldm_sniff_findings_total{key=\"ldm.late_response\",severity=\"error\"}", 1.0),
        ("ldm_sniff_duplicate_owners_total", 0.0),
        ("ldm_sniff_lookup_response_seconds_count", 2.0),
        ("ldm_sniff_discovery_response_seconds_count", 2.0),
        ("ldm_sniff_hosts", 1.0),
        ("ldm_sniff_macs", 2.0),
        ("ldm_sniff_kernel_packets_dropped_total", 0.0),
        ("ldm_sniff_frames_total", 7.0),
    ];
    for (expression, want) in expected {
        assert_eq!(wait_for(&pair.b, expression, want), Some(want), "{expression}");
    }
    // The late answer is in the histogram's top bucket only.
    assert_eq!(query(&pair.b, "ldm_sniff_lookup_response_seconds_bucket{le=\"1.0\"}"), Some(1.0));
    assert!(query(&pair.b, "process_resident_memory_bytes").is_some_and(|bytes| bytes > 1e6));

    let child = capture.0.take().expect("running");
    interrupt(&child);
    let output = wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    // The file written alongside holds the same 7 frames, findings included.
    let reread = Command::new(BIN).args(["-q", "--fail-on", "never", "-z", "ldm,summary", "-r"]).arg(&written).output();
    let text = String::from_utf8_lossy(&reread.expect("runs").stdout).to_string();
    assert!(text.contains("frames read                             7"), "{text}");
}

#[test]
fn prometheus_scrapes_the_emulator() {
    if !can_run("prometheus_scrapes_the_emulator") || !have("prometheus", "prometheus_scrapes_the_emulator") {
        return;
    }
    let pair = Pair::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let owned = "00:14:4f:f8:00:07";
    let emulator = Command::new("ip")
        .args(["netns", "exec", &pair.b, BIN, "emulate", "-i", &pair.veth_b, "--own", owned])
        .args(["--metrics", "127.0.0.1:19465", "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the emulator starts");
    let mut emulator = Started(Some(emulator));
    let _prometheus = start_prometheus(&pair.b, dir.path(), "127.0.0.1:19465");
    assert_eq!(wait_for(&pair.b, "up{job=\"ldm-sniff\"}", 1.0), Some(1.0), "Prometheus scrapes the emulator");

    let source: Ipv4Addr = pair.addr_a.parse().expect("address");
    in_namespace(&pair.a, move || -> std::io::Result<()> {
        let socket = UdpSocket::bind(SocketAddrV4::new(source, 64535))?;
        socket.set_multicast_ttl_v4(1)?;
        let group = SocketAddrV4::new(ldm::GROUP, 64535);
        let mac = [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x07];
        socket.send_to(&Repr::discovery_request().to_bytes(), group)?;
        socket.send_to(&Repr::lookup(MsgType::SendMsg, mac, source).to_bytes(), group)?;
        socket
            .send_to(&Repr::lookup(MsgType::SendMsg, [0x00, 0x14, 0x4f, 0xf8, 0x00, 0x08], source).to_bytes(), group)?;
        socket.send_to(b"not an ldm message", group)?;
        Ok(())
    })
    .join()
    .expect("sender thread")
    .expect("sending inside the namespace");

    let expected = [
        ("ldm_sniff_emulator_requests_total{type=\"LDMD_DISC_SEND\"}", 1.0),
        // The lookup of a MAC it does not own is not answered, but counted.
        ("ldm_sniff_emulator_requests_total{type=\"SEND_MSG\"}", 2.0),
        ("ldm_sniff_emulator_replies_sent_total", 2.0),
        ("ldm_sniff_emulator_malformed_total", 1.0),
        ("ldm_sniff_emulator_replies_rate_limited_total", 0.0),
    ];
    for (expression, want) in expected {
        assert_eq!(wait_for(&pair.b, expression, want), Some(want), "{expression}");
    }
    let child = emulator.0.take().expect("running");
    interrupt(&child);
    let output = wait(child);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_metrics_port_in_use_is_an_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["emulate", "--bind", "127.0.0.1", "--port", "64999", "--metrics", &addr, "--duration", "5"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("--metrics: cannot listen on {addr}")), "{stderr}");
    let out = Command::new(BIN).args(["-r", "captures/discovery.pcapng", "--metrics", "9464"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--metrics"), "metrics are for live capture");
}

/// Every metric's name, type and help text: renaming one, or changing what
/// it says, is a visible change to review (dashboards and the alert rules
/// use the names).
#[test]
fn metric_names_and_help_texts() {
    // A family is exported once it has a series: libvirt messages need libvirt traffic.
    let (_, text) = run_with_metrics("libvirt-anomalies.pcapng");
    let described: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("metric_names", described.join("\n"));
    });
    // Every alert rule names metrics that exist.
    let rules = std::fs::read_to_string(contrib("prometheus/ldm-sniff.rules.yml")).expect("the rules");
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("ldm_sniff_") {
            assert!(text.contains(&format!("# TYPE {word} ")), "the rules use {word}, which is not exported");
        }
    }
}

/// Reads a bundled capture through the pipeline with capture metrics; the
/// closing summary and the metrics' text exposition.
fn run_with_metrics(name: &str) -> (ldm_sniff::analyze::Summary, String) {
    use ldm_sniff::{analyze, dissect, output, pipeline};
    let mut metrics = ldm_sniff::metrics::Metrics::new();
    let counters = ldm_sniff::metrics::CaptureMetrics::register(metrics.registry());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures").join(name);
    let reader = ldm_sniff::capture::CaptureReader::open(path.to_str().unwrap()).expect("opens");
    let config = pipeline::Config {
        dissect: dissect::Options::default(),
        output: output::Options {
            format: output::Format::Text,
            verbose: false,
            hex: false,
            style: output::Style { color: false },
            line_buffered: false,
            time_format: Default::default(),
        },
        count: None,
        all: false,
        quiet: true,
        analysis: analyze::Options::default(),
        stats: Vec::new(),
        filter: None,
        write: None,
        hold: false,
        columns: Default::default(),
        metrics: Some(counters),
        report: None,
    };
    let outcome = pipeline::run(reader, std::io::sink(), config).expect("runs");
    ldm_sniff::metrics::EmulatorMetrics::register(metrics.registry());
    (outcome.summary, metrics.encode("text/plain").0)
}

/// The value of every sample in a Prometheus text exposition.
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

/// Over bundled captures, the counters say what the closing summary says:
/// frames, packets by type, and findings by key (every key, 0 included);
/// libvirt messages and RPC times come through too.
#[test]
fn capture_metrics_count_what_the_summary_counts() {
    for name in [
        "late-response.pcapng",
        "two-owners.pcapng",
        "allocation-failure.pcapng",
        "lookup-storm.pcapng",
        "mac-collision.pcapng",
        "libvirt-anomalies.pcapng",
        "anomalies.pcapng",
    ] {
        let (summary, text) = run_with_metrics(name);
        let values = samples(&text);
        let get = |series: &str| values.get(series).copied().unwrap_or_else(|| panic!("{name}: no {series}"));
        assert_eq!(get("ldm_sniff_frames_total"), summary.frames as f64, "{name}");
        for (msg_type, count) in [
            ("SEND_MSG", summary.send_msg),
            ("RESPONSE_MSG", summary.response_msg),
            ("LDMD_DISC_SEND", summary.disc_send),
            ("LDMD_DISC_RESP", summary.disc_resp),
            ("other", summary.other),
        ] {
            assert_eq!(
                get(&format!("ldm_sniff_packets_total{{msg_type=\"{msg_type}\"}}")),
                count as f64,
                "{name} {msg_type}"
            );
        }
        for (key, info) in ldm_sniff::expert::Key::ALL.iter().zip(ldm_sniff::expert::CATALOGUE) {
            let series =
                format!("ldm_sniff_findings_total{{key=\"{}\",severity=\"{}\"}}", info.key, info.severity.name());
            assert_eq!(get(&series), summary.count(*key).unwrap_or(0) as f64, "{name}: {series}");
        }
        if name.starts_with("libvirt") {
            let messages: f64 =
                values.iter().filter(|(k, _)| k.starts_with("ldm_sniff_libvirt_messages_total{")).map(|(_, v)| v).sum();
            assert!(messages > 5.0, "{name}: {messages} libvirt messages");
            assert!(get("ldm_sniff_libvirt_rpc_seconds_count") > 0.0, "{name}");
        }
    }
}
