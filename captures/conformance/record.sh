#!/usr/bin/env bash
# Records the reference captures in this directory (as root): the emulator
# (emulator.toml) in one namespace, and in the other ldm-sniff capturing
# while discover and check-mac ask. Addresses 10.78.0.x, inside the pair only.
#   bash captures/conformance/record.sh
# New recordings have new timestamps and addresses: review and accept the
# decode snapshots of these files (snapshots/*@conformance__*.snap) after.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
bin=./target/release/ldm-sniff
out=captures/conformance
a=ldmrec-a; b=ldmrec-b
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$a"; ip netns add "$b"
ip link add vra netns "$a" type veth peer name vrb netns "$b"
ip -n "$a" addr add 10.78.0.1/24 dev vra; ip -n "$b" addr add 10.78.0.2/24 dev vrb
ip -n "$a" link set vra up; ip -n "$b" link set vrb up
ip -n "$a" route add 224.0.0.0/4 dev vra; ip -n "$b" route add 224.0.0.0/4 dev vrb
ip netns exec "$b" "$bin" emulate -i vrb --config "$out/emulator.toml" --duration 30 > /dev/null 2>&1 &
emulator=$!
sleep 1
record() { # NAME COMMAND...
  local name=$1; shift
  ip netns exec "$a" "$bin" -i vra -q -w "$out/$name.pcapng" 2> /dev/null &
  local capture=$!
  sleep 1
  ip netns exec "$a" "$@" > /dev/null 2>&1 || true
  sleep 0.5
  kill -INT "$capture"; wait "$capture" || true
  echo "recorded $out/$name.pcapng"
}
# Discovery: one request, the emulator's reply.
record discovery "$bin" discover -i vra --timeout 1
# A lookup of an owned MAC (answered), then of a free one (ldmd's retries, no answer).
record lookups bash -c "$bin check-mac -i vra 00:14:4f:f8:00:2a --retries 0; $bin check-mac -i vra 00:14:4f:f8:00:99 --retries 1"
kill -INT "$emulator"; wait "$emulator" || true
