#!/usr/bin/env bash
# Live capture cost, side by side with tcpdump, on the same blast over a veth
# pair between two network namespaces (as root):
#   bash bench/live.sh [COUNT]
# Runs twice: all ldm, then 10% ldm and 90% other UDP. Reports frames seen,
# kernel drops and CPU seconds of ldm-sniff -i and tcpdump -w /dev/null.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-500000}
cargo build --release -q --example blast
cargo build --release -q
a=ldmbench-a; b=ldmbench-b
source bench/netns.sh
blast_link "$a" "$b" vba vbb 10.80.0
tmp=$(mktemp -d)
for percent in 100 10; do
  ip netns exec "$b" /usr/bin/time -f "%U %S" -o "$tmp/ls.time" ./target/release/ldm-sniff -i vbb -q -a duration:30 2> "$tmp/ls.err" &
  pid_ls=$!
  ip netns exec "$b" /usr/bin/time -f "%U %S" -o "$tmp/td.time" tcpdump -i vbb -w /dev/null 'udp port 64535' 2> "$tmp/td.err" &
  pid_td=$!
  sleep 2
  ip netns exec "$a" ./target/release/examples/blast 10.80.0.1 239.129.9.27 "$count" "$percent"
  sleep 1
  interrupt_timed "$pid_ls"
  interrupt_timed "$pid_td"
  wait
  echo "== $percent% ldm, $count datagrams"
  echo "ldm-sniff: $(grep -h 'kernel:' "$tmp/ls.err" | sed 's/ldm-sniff: //'); CPU user+sys s: $(cat "$tmp/ls.time")"
  echo "tcpdump:   $(grep -h 'captured\|dropped by kernel' "$tmp/td.err" | tr '\n' ' '); CPU user+sys s: $(cat "$tmp/td.time")"
done
rm -rf "$tmp"
