#!/usr/bin/env bash
# Live capture cost of two ldm-sniff builds, A/B, on one blast (as root):
#   bash bench/live-ab.sh BINARY_A BINARY_B [COUNT] [RUNS]
# Both capture the same all-ldm blast over a veth pair between two network
# namespaces at the same time, so both see the same traffic and the same
# machine load: on a noisy machine this is the comparison that shows a
# change, where separate runs of bench/live.sh swing by a third.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: bench/live-ab.sh BINARY_A BINARY_B [COUNT] [RUNS]" >&2; exit 2; }
bin_a=$(realpath "$1"); bin_b=$(realpath "$2")
cd "$(dirname "$0")/.."
count=${3:-1000000}; runs=${4:-5}
cargo build --release -q --example blast
a=ldmab-a; b=ldmab-b
source bench/netns.sh
blast_link "$a" "$b" vaa vab 10.82.0
tmp=$(mktemp -d)
echo "run  A user+sys s  B user+sys s  (A: $bin_a, B: $bin_b, $count datagrams)"
for run in $(seq "$runs"); do
  ip netns exec "$b" /usr/bin/time -f "%U %S" -o "$tmp/a" "$bin_a" -i vab -q -a duration:60 2> "$tmp/a.err" &
  pid_a=$!
  ip netns exec "$b" /usr/bin/time -f "%U %S" -o "$tmp/b" "$bin_b" -i vab -q -a duration:60 2> "$tmp/b.err" &
  pid_b=$!
  sleep 2
  ip netns exec "$a" ./target/release/examples/blast 10.82.0.1 239.129.9.27 "$count" 100 > /dev/null
  sleep 1
  interrupt_timed "$pid_a"
  interrupt_timed "$pid_b"
  wait "$pid_a" "$pid_b" || true
  echo "$run    $(cat "$tmp/a")     $(cat "$tmp/b")"
done
rm -rf "$tmp"
