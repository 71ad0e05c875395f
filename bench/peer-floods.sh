#!/usr/bin/env bash
# Time and peak memory of the sending commands under a hostile peer
# (issue 23, items 13-16): the emulator under a flood of valid requests,
# discover under a flood of answers from a million "hosts", conform against
# a target that answers one request 200,000 times, and libvirt conform
# against a daemon that floods events. Needs root (a namespace pair).
#   bash bench/peer-floods.sh
#   LDM_SNIFF=/path/to/an/older/ldm-sniff bash bench/peer-floods.sh   # before/after
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/netns.sh
cargo build --release -q
cargo build --release -q --example peer-flood
bin=${LDM_SNIFF:-$PWD/target/release/ldm-sniff}
flood=$PWD/target/release/examples/peer-flood
tmp=$(mktemp -d)
blast_link ldm-pf-send ldm-pf-cap pf-send pf-cap 10.81.0
# Remove the namespaces (blast_link's trap) and the temporary files.
trap 'for ns in "${blast_link_namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
in_send=(ip netns exec ldm-pf-send)
in_cap=(ip netns exec ldm-pf-cap)
# Every run is bounded: a command that would run away is stopped at 60 s.
# Its figures go to the script's standard error (fd 3), as the command's own
# output is redirected.
exec 3>&2
measure() {
  local label=$1; shift
  /usr/bin/time -f "$label: %e s, peak RSS %M KB" -o "$tmp/time" timeout 60 "$@" || true
  cat "$tmp/time" >&3
}

echo "== emulator: valid discovery requests from one host for 10 s"
measure "emulate" "${in_cap[@]}" "$bin" emulate -i pf-cap --duration 12 -T json >"$tmp/emulate.out" 2>"$tmp/emulate.err" &
emulator=$!
sleep 1
"${in_send[@]}" "$flood" requests 10.81.0.1 10.81.0.2 10
wait "$emulator" || true
grep "answered with" "$tmp/emulate.err"
echo "log: $(wc -l <"$tmp/emulate.out") lines, $(wc -c <"$tmp/emulate.out") bytes"

echo "== discover: answers naming a different host each, for 7 s"
"${in_send[@]}" "$flood" responses 10.81.0.1 7 &
flooder=$!
sleep 0.5
measure "discover" "${in_cap[@]}" "$bin" discover -i pf-cap --timeout 5 >"$tmp/discover.out" 2>"$tmp/discover.err"
wait "$flooder" || true
echo "listed: $(($(wc -l <"$tmp/discover.out") - 1)) host(s), $(wc -c <"$tmp/discover.out") bytes"
cat "$tmp/discover.err"

echo "== conform: the target answers the first request 200,000 times"
"${in_send[@]}" "$flood" answer 10.81.0.1 200000 &
flooder=$!
sleep 0.5
measure "conform" "${in_cap[@]}" "$bin" conform captures/conformance/discovery.pcapng -i pf-cap --pace fast --color never >"$tmp/conform.out" 2>&1
wait "$flooder" || true
echo "transcript: $(wc -l <"$tmp/conform.out") lines"
grep "not kept" "$tmp/conform.out" || true

echo "== libvirt conform: a daemon floods every connection with events for 20 s"
port=$((20000 + RANDOM % 20000))
"$flood" libvirt "$port" 20 &
flooder=$!
sleep 0.3
measure "libvirt conform" "$bin" conform captures/libvirt/virsh-session.pcap --protocol libvirt \
  --target "127.0.0.1:$port" --window 1 --color never >"$tmp/libvirt.out" 2>&1
kill "$flooder" 2>/dev/null || true
wait "$flooder" 2>/dev/null || true
echo "transcript: $(wc -l <"$tmp/libvirt.out") lines, $(grep -c "not kept" "$tmp/libvirt.out") call(s) with messages not kept"
