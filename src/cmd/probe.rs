//! `discover` and `check-mac`: they ask the segment, as ldmd does.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use ldm_sniff::cli::{CheckMacArgs, DiscoverArgs, ProbeArgs, ProbeFormat};
use ldm_sniff::output;
use ldm_sniff::probe::{self, Probe};

use super::{error, note, EXIT_FINDINGS};

fn open_probe(args: &ProbeArgs) -> Result<Probe, ExitCode> {
    let iface = match args.interface.clone().map_or_else(probe::default_interface, Ok) {
        Ok(iface) => iface,
        Err(e) => return Err(error(&e.to_string())),
    };
    Probe::open(&iface, args.ttl).map_err(|e| error(&e.to_string()))
}

pub fn discover(args: &DiscoverArgs) -> ExitCode {
    let probe = match open_probe(&args.probe) {
        Ok(probe) => probe,
        Err(code) => return code,
    };
    let found = match probe::discover(&probe, Duration::from_secs_f64(args.timeout)) {
        Ok(found) => found,
        Err(e) => return error(&e.to_string()),
    };
    let responders = &found.responders;
    if args.probe.format == ProbeFormat::Json {
        println!("{}", serde_json::to_string_pretty(&responders).unwrap_or_default());
    } else {
        let mut rows = vec![["hostname", "ip_address", "port", "ldmd_version", "rtt_ms", "from", "anomalies"]
            .map(String::from)
            .to_vec()];
        for r in responders {
            rows.push(vec![
                r.hostname.clone(),
                r.ip_address.map_or("-".into(), |ip| ip.to_string()),
                r.port.map_or("-".into(), |p| p.to_string()),
                r.ldmd_version.clone(),
                format!("{:.1}", r.rtt_ms),
                r.from.to_string(),
                if r.anomalies.is_empty() { "-".into() } else { r.anomalies.join(" ") },
            ]);
        }
        let _ = output::table::write_aligned(&mut io::stdout().lock(), &rows);
    }
    note(&format!("{} ldmd host(s) answered on {} within {} s", responders.len(), probe.iface, args.timeout));
    if found.repeated > 0 {
        note(&format!("{} further response(s) from hosts already listed (each is listed once)", found.repeated));
    }
    if found.not_kept > 0 {
        note(&format!(
            "{} more sender(s) past {} not listed: a flood, probably from spoofed addresses",
            found.not_kept,
            probe::MAX_RESPONDERS
        ));
    }
    if responders.is_empty() {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn check_mac(args: &CheckMacArgs) -> ExitCode {
    let probe = match open_probe(&args.probe) {
        Ok(probe) => probe,
        Err(code) => return code,
    };
    let check = match probe::check_mac(&probe, args.mac, Duration::from_secs_f64(args.window), args.retries) {
        Ok(check) => check,
        Err(e) => return error(&e.to_string()),
    };
    if check.automatic_range {
        note(&format!(
            "note: {} is in the automatic range (00:14:4f:f8:00:00-00:14:4f:fb:ff:ff), which ldmd hands out itself; manual MACs belong in 00:14:4f:fc:00:00-00:14:4f:ff:ff:ff",
            check.mac
        ));
    }
    if args.probe.format == ProbeFormat::Json {
        println!("{}", serde_json::to_string_pretty(&check).unwrap_or_default());
    } else if check.in_use {
        let owners: Vec<String> = check.owners.iter().map(|o| format!("{} ({:.1} ms)", o.ip, o.rtt_ms)).collect();
        println!("{}: IN USE, answered by {}", check.mac, owners.join(", "));
    } else {
        println!("{}: free (no answer to {} lookup(s) of {} s each)", check.mac, check.lookups, args.window);
    }
    if check.in_use {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
