#!/usr/bin/env bash
# What --report costs (issue 28): wall time and peak memory of `-q` and of
# `-q --report` on the same captures, alternated, and the page's size:
#   bash bench/report.sh [RUNS] [CAPTURE...]
# Without captures it uses bench/run.sh's 2M-frame mixed capture and its
# 1M-frame all-ldm one (generated if missing, in /tmp/ldm-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}; shift || true
dir=/tmp/ldm-bench
mkdir -p "$dir"
cargo build --release -q
cargo build --release -q --example gen-big
bin=./target/release/ldm-sniff
captures=("$@")
if [ ${#captures[@]} -eq 0 ]; then
  [ -s "$dir/mixed.pcap" ] || ./target/release/examples/gen-big "$dir/mixed.pcap" 2000000 10 > /dev/null
  [ -s "$dir/ldm-only.pcap" ] || ./target/release/examples/gen-big "$dir/ldm-only.pcap" 1000000 100 > /dev/null
  [ -s "$dir/flood.pcap" ] || ./target/release/examples/gen-big "$dir/flood.pcap" 2000000 flood > /dev/null
  captures=("$dir/mixed.pcap" "$dir/ldm-only.pcap" "$dir/flood.pcap")
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf "%-16s %10s %10s %7s %10s %10s %12s\n" capture "-q s" "report s" ratio "-q MiB" "report MiB" "page bytes"
for capture in "${captures[@]}"; do
  cat "$capture" > /dev/null # in the page cache for both
  : > "$tmp/q"; : > "$tmp/r"
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$bin" -q -r "$capture" 2> /dev/null || true
    tail -n1 "$tmp/t" >> "$tmp/q"
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$bin" -q -r "$capture" --report "$tmp/page.html" 2> /dev/null || true
    tail -n1 "$tmp/t" >> "$tmp/r"
  done
  q=$(cut -d' ' -f1 "$tmp/q" | median); r=$(cut -d' ' -f1 "$tmp/r" | median)
  qm=$(cut -d' ' -f2 "$tmp/q" | median); rm_=$(cut -d' ' -f2 "$tmp/r" | median)
  printf "%-16s %10s %10s %7.2f %10d %10d %12d\n" "$(basename "$capture")" "$q" "$r" \
    "$(echo "$r / $q" | bc -l)" $((qm / 1024)) $((rm_ / 1024)) "$(wc -c < "$tmp/page.html")"
done
