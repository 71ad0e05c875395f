#!/usr/bin/env bash
# The throughput comparison, one command (run it on a quiet machine):
#   bash bench/run.sh
# Generates deterministic captures (2M-frame mixed, 10% ldm; 1M-frame
# ldm-only; the pcapng form of both) under $BENCH_DIR (default
# /tmp/ldm-bench, about 4 GB), installs tcpdump and tshark if missing, then
# times each tool $RUNS times (default 3) on each capture and prints a
# markdown table of medians: seconds, frames/s, MB/s, peak RSS, the
# ratio of each time to `ldm-sniff -q` on the same capture, and the most
# major page faults of any run (a cache that was not warm).
# tshark is slow (minutes per run on the mixed capture): it runs
# $TSHARK_RUNS times (default 1), on the classic pcap captures only.
# CAPTURES="mixed.pcap ..." limits the captures measured.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp/ldm-bench}
runs=${RUNS:-3}
tshark_runs=${TSHARK_RUNS:-1}
captures=${CAPTURES:-mixed.pcap mixed.pcapng ldm-only.pcap ldm-only.pcapng}
mkdir -p "$dir"

for tool in tcpdump tshark; do
  if ! command -v "$tool" > /dev/null; then
    echo "installing $tool" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" > /dev/null
  fi
done
cargo build --release -q
cargo build --release -q --example gen-big --example walk-headers
bin=./target/release/ldm-sniff

generate() { # FILE FRAMES LDM_PERCENT
  [ -s "$1" ] || ./target/release/examples/gen-big "$1" "$2" "$3" > /dev/null
}
generate "$dir/mixed.pcap" 2000000 10
generate "$dir/mixed.pcapng" 2000000 10
generate "$dir/ldm-only.pcap" 1000000 100
generate "$dir/ldm-only.pcapng" 1000000 100

# Median of the lines of "seconds kilobytes faults" on stdin, by seconds.
median() { sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

# time_it LABEL CAPTURE COMMAND...: prints "LABEL|CAPTURE|seconds|peak
# KB|major faults", the median run's time and RSS, and the most major page
# faults of any run: a run that faulted read the disk, not the page cache,
# and its time says so.
time_it() {
  local label=$1 capture=$2 n=$runs; shift 2
  if [[ $1 == tshark ]]; then n=$tshark_runs; fi
  local results=""
  for _ in $(seq "$n"); do
    # Warm cache for every run: the first reading of a file pays the disk.
    /usr/bin/time -f "%e %M %F" -o "$dir/time.out" "$@" > /dev/null 2> "$dir/stderr.out" || true
    results+="$(tail -1 "$dir/time.out")"$'\n'
  done
  local middle faults
  middle=$(printf '%s' "$results" | median | awk '{ print $1 "|" $2 }')
  faults=$(printf '%s' "$results" | awk '$3 > m { m = $3 } END { print m + 0 }')
  echo "$label|$capture|$middle|$faults"
}

rows="$dir/rows.txt"
: > "$rows"
for capture in $captures; do
  f="$dir/$capture"
  cat "$f" > /dev/null # into the page cache
  {
    time_it "cat > /dev/null (floor)" "$capture" cat "$f"
    if [[ $capture == *.pcap ]]; then
      time_it "walk record headers, read() (floor)" "$capture" ./target/release/examples/walk-headers "$f"
      time_it "walk record headers, mmap (floor)" "$capture" ./target/release/examples/walk-headers --mmap "$f"
    fi
    time_it "ldm-sniff -q" "$capture" "$bin" -r "$f" -q --fail-on never
    time_it "ldm-sniff (one line per ldm packet)" "$capture" "$bin" -r "$f" --fail-on never
    time_it "ldm-sniff -T jsonl" "$capture" "$bin" -r "$f" -T jsonl --fail-on never
    time_it "tcpdump filter only (-w /dev/null)" "$capture" tcpdump -nn -r "$f" 'udp port 64535' -w /dev/null
    time_it "tcpdump one line per match" "$capture" tcpdump -nn -r "$f" 'udp port 64535'
    if [[ $capture == *.pcap ]]; then
      time_it "tshark + Lua dissector, -Y ldm" "$capture" tshark -X lua_script:bench/ldm.lua -r "$f" -Y ldm
    fi
  } | tee -a "$rows" >&2
done

frames_of() { case $1 in mixed*) echo 2000000 ;; *) echo 1000000 ;; esac; }

echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(date -u +%F); median of $runs runs ($tshark_runs for tshark)."
echo
echo "| capture | command | median s | frames/s | MB/s | peak RSS MB | time / ldm-sniff -q | major faults (most of any run) |"
echo "|---|---|---|---|---|---|---|---|"
while IFS='|' read -r label capture secs kb faults; do
  base=$(awk -F'|' -v c="$capture" '$1 == "ldm-sniff -q" && $2 == c { print $3 }' "$rows")
  size=$(stat -c %s "$dir/$capture")
  awk -v l="$label" -v c="$capture" -v s="$secs" -v kb="$kb" -v b="$base" -v n="$(frames_of "$capture")" -v size="$size" -v f="$faults" 'BEGIN {
    fps = (s > 0) ? n / s : 0; mbs = (s > 0) ? size / 1e6 / s : 0
    printf "| %s | %s | %.2f | %.2fM | %.0f | %.1f | %.2fx | %d |\n", c, l, s, fps / 1e6, mbs, kb / 1024, (b > 0) ? s / b : 0, f
  }'
done < "$rows"
