#!/usr/bin/env bash
# The capture loop's cost of --metrics with a scrape every second (issue 27),
# A/B on one blast (as root):
#   bash bench/metrics-ab.sh [COUNT] [RUNS]
# A and B are the same build, capturing the same all-ldm blast over a veth
# pair at the same time (as bench/live-ab.sh); B also serves --metrics and
# is scraped once a second (curl, in B's namespace) while the blast runs.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}; runs=${2:-5}
cargo build --release -q --example blast
bin=$(realpath target/release/ldm-sniff)
a=ldmmx-a; b=ldmmx-b
source bench/netns.sh
blast_link "$a" "$b" vma vmb 10.83.0
ip -n "$b" link set lo up
tmp=$(mktemp -d)
echo "run  A user+sys s  B (--metrics, scraped 1/s) user+sys s  ($count datagrams)"
for run in $(seq "$runs"); do
  ip netns exec "$b" /usr/bin/time -f "%U %S" -o "$tmp/a" "$bin" -i vmb -q -a duration:60 2> "$tmp/a.err" &
  pid_a=$!
  ip netns exec "$b" /usr/bin/time -f "%U %S" -o "$tmp/b" "$bin" -i vmb -q -a duration:60 \
    --metrics 127.0.0.1:19464 2> "$tmp/b.err" &
  pid_b=$!
  sleep 2
  ip netns exec "$b" bash -c 'for i in $(seq 120); do curl -s -o /dev/null 127.0.0.1:19464/metrics; sleep 1; done' &
  pid_scrape=$!
  ip netns exec "$a" ./target/release/examples/blast 10.83.0.1 239.129.9.27 "$count" 100 > /dev/null
  sleep 1
  ip netns exec "$b" curl -s 127.0.0.1:19464/metrics | grep -E '^ldm_sniff_(frames_total|kernel_packets_dropped_total) ' > "$tmp/scraped" || true
  kill "$pid_scrape" 2>/dev/null || true
  interrupt_timed "$pid_a"
  interrupt_timed "$pid_b"
  wait "$pid_a" "$pid_b" || true
  echo "$run    $(cat "$tmp/a")     $(cat "$tmp/b")    ($(tr '\n' ' ' < "$tmp/scraped"))"
done
rm -rf "$tmp"
