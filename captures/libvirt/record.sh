#!/usr/bin/env bash
# Re-records captures/libvirt/virsh-session.pcap: a real libvirtd (Debian's
# libvirt-daemon, test driver) in a network namespace of its own, run as
# nobody from a temporary directory with libvirtd.conf, driven by virsh over
# test+tcp://127.0.0.1/default, captured by tcpdump on the namespace's
# loopback. Needs root, iproute2, tcpdump, libvirt-daemon, libvirt-clients.
# A new recording changes the decode snapshots: review them (cargo insta review).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out="$here/virsh-session.pcap"
ns="ldmrec$$"
dir=$(mktemp -d /tmp/ldm-libvirt.XXXXXX)
cleanup() {
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$dir/home" "$dir/run"
cp "$here/libvirtd.conf" "$dir/"
echo "unix_sock_dir = \"$dir/run\"" >> "$dir/libvirtd.conf"
chown -R 65534:65534 "$dir"
chmod 755 "$dir"
ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups \
  env -i PATH=/usr/bin:/usr/sbin HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" \
  XDG_CONFIG_HOME="$dir/home/.config" XDG_CACHE_HOME="$dir/home/.cache" \
  /usr/sbin/libvirtd --listen -f "$dir/libvirtd.conf" 2> "$dir/daemon.log" &
daemon=$!
for _ in $(seq 100); do
  ip netns exec "$ns" ss -Hltn 'sport = :16509' | grep -q LISTEN && break
  sleep 0.1
done
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
