#!/usr/bin/env bash
# Records captures/libvirt/virsh-lossy.pcap: a real libvirtd (Debian's
# libvirt-daemon, test driver) in a network namespace of its own, as nobody,
# with 40 virsh clients at once, captured by a tcpdump whose kernel buffer is
# too small to keep up (-B), so that the capture loses packets as a busy
# capture host does. Needs root, iproute2, tcpdump, libvirt-daemon,
# libvirt-clients. The recording is kept only if tcpdump reports drops.
#   bash captures/libvirt/record-lossy.sh [CLIENTS] [BUFFER_KIB]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/daemon.sh"
out="$here/virsh-lossy.pcap"
clients=${1:-40}
buffer=${2:-1024}
ns="ldmlossy$$"
dir=$(mktemp -d /tmp/ldm-libvirt-lossy.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null || true
  [ -n "${tcpdump:-}" ] && kill "$tcpdump" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
prepare_libvirtd "$ns" "$dir"
# The daemon serves the clients at once (its defaults queue beyond 5).
echo "max_clients = 100" >> "$dir/libvirtd.conf"
echo "max_workers = 40" >> "$dir/libvirtd.conf"
start_libvirtd "$ns" "$dir"
ip netns exec "$ns" tcpdump -i lo --immediate-mode -U -B "$buffer" -w "$dir/session.pcap" 'tcp port 16509' 2> "$dir/tcpdump.log" &
tcpdump=$!
sleep 1
uri=test+tcp://127.0.0.1/default
for i in $(seq "$clients"); do
  ip netns exec "$ns" timeout 60 virsh -q -c "$uri" \
    "list --all; dominfo test; domstate test; dumpxml test; version; nodeinfo; domstate nosuch$i; list --all; dumpxml test" \
    > /dev/null 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
pids=()
sleep 2
kill -INT "$tcpdump"
wait "$tcpdump" || true
tcpdump=
cat "$dir/tcpdump.log" >&2
dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$dir/tcpdump.log")
if [ "${dropped:-0}" -eq 0 ]; then
  echo "record-lossy.sh: tcpdump dropped nothing; try a smaller buffer (second argument) or more clients" >&2
  exit 1
fi
cp "$dir/session.pcap" "$out"
chown --reference="$here" "$out"
echo "wrote $out ($dropped packets dropped by kernel)"
