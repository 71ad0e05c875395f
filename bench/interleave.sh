#!/usr/bin/env bash
# Times commands in turn, round after round, so that each round's commands
# share the machine's phase (this VM's speed swings by a third between
# minutes; separate series of one command each cannot be compared):
#   bash bench/interleave.sh ROUNDS 'COMMAND A' 'COMMAND B' ...
# Prints each command's median seconds, CPU seconds and peak RSS, and for
# each command after the first: the median of its per-round ratio to the
# first command (time B / time A in the same round), with the range, and
# the ratio of the medians. Output of the commands goes to /dev/null; a
# failing exit status is ignored (ldm-sniff exits 1 when it finds anomalies).
# WARM="FILE ..." drops those files from the page cache and reads them
# again at the start of each round, as bench/run.sh does (see there why):
# this machine's kernel pages out file pages left untouched for about a
# minute (DAMON proactive reclaim), and a file read back piecemeal maps
# slower than one read whole.
set -euo pipefail
usage() {
  echo "usage: bash bench/interleave.sh ROUNDS 'COMMAND A' 'COMMAND B' ... (ROUNDS a whole number, at least 1)" >&2
  exit 2
}
rounds=${1:-}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || usage
shift
(( $# >= 1 )) || usage
raw=$(mktemp)
one=$(mktemp)
trap 'rm -f "$raw" "$one"' EXIT
for round in $(seq "$rounds"); do
  for file in ${WARM:-}; do
    sync "$file"
    if ! dd if="$file" iflag=nocache count=0 status=none; then
      echo "interleave.sh: could not drop $file from the page cache (dd's message above; GNU dd is needed): it is timed in whatever state the cache holds it" >&2
    fi
    cat "$file" > /dev/null
  done
  for i in $(seq 0 $(($# - 1))); do
    cmd=${*:$((i + 1)):1}
    /usr/bin/time -o "$one" -f "%e %U %S %M" bash -c "$cmd" > /dev/null 2>&1 || true
    echo "$round $i $(tail -1 "$one")" >> "$raw"
  done
done
# median: the middle of the numbers on stdin, one per line.
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
values_of() { awk -v i="$1" -v f="$2" '$2 == i { print $f }' "$raw"; }
first_secs=$(values_of 0 3 | median)
for i in $(seq 0 $(($# - 1))); do
  secs=$(values_of "$i" 3 | median)
  cpu=$(awk -v i="$i" '$2 == i { print $4 + $5 }' "$raw" | median)
  kb=$(values_of "$i" 6 | median)
  printf 'command %d: median %.3f s, cpu %.3f s, peak RSS %.1f MB: %s\n' $((i + 1)) "$secs" "$cpu" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')" "${*:$((i + 1)):1}"
  (( i > 0 )) || continue
  ratios=$(awk -v i="$i" '$2 == 0 { a[$1] = $3 } $2 == i { b[$1] = $3 } END { for (r in b) if (a[r] > 0) print b[r] / a[r] }' "$raw")
  printf '  against command 1: per round %.2fx (%.2f-%.2fx), ratio of medians %.2fx\n' \
    "$(median <<< "$ratios")" "$(sort -g <<< "$ratios" | head -1)" "$(sort -g <<< "$ratios" | tail -1)" \
    "$(awk -v a="$first_secs" -v b="$secs" 'BEGIN { print (a > 0) ? b / a : 0 }')"
done
