#!/usr/bin/env bash
# Peak memory of the analysis under a flood of distinct MACs from distinct
# hosts: the tables are capped, so the peak must not grow with the flood.
#   bash bench/flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --example gen-big
cargo build --release -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for frames in 250000 1000000; do
  ./target/release/examples/gen-big "$tmp/flood.pcap" "$frames" flood
  /usr/bin/time -f "$frames lookups of distinct MACs: %e s, peak RSS %M KB" \
    ./target/release/ldm-sniff -r "$tmp/flood.pcap" -q -z ldm,summary | grep evicted
done
