#!/usr/bin/env bash
# Re-records captures/libvirt/virsh-session.pcap: a real libvirtd (Debian's
# libvirt-daemon, test driver) in a network namespace of its own, run as
# nobody from a temporary directory with libvirtd.conf, driven by virsh over
# test+tcp://127.0.0.1/default, captured by tcpdump on the namespace's
# loopback. Needs root, iproute2, tcpdump, libvirt-daemon, libvirt-clients.
# A new recording changes the decode snapshots: review them (cargo insta review).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/daemon.sh"
out="$here/virsh-session.pcap"
ns="ldmrec$$"
dir=$(mktemp -d /tmp/ldm-libvirt.XXXXXX)
cleanup() {
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
prepare_libvirtd "$ns" "$dir"
start_libvirtd "$ns" "$dir"
ip netns exec "$ns" tcpdump -i lo --immediate-mode -U -w "$dir/session.pcap" 'tcp port 16509' 2> "$dir/tcpdump.log" &
tcpdump=$!
sleep 1
uri=test+tcp://127.0.0.1/default
virsh() { ip netns exec "$ns" virsh -c "$uri" "$@"; }
virsh list --all
virsh dominfo test
virsh domstate nosuch || true
virsh 'destroy test; start test; list; version'
sleep 0.5
kill -INT "$tcpdump"
wait "$tcpdump" || true
cp "$dir/session.pcap" "$out"
chown --reference="$here" "$out"
echo "wrote $out"
