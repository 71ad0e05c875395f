#!/usr/bin/env bash
# Re-records captures/libvirt/virsh-concurrent.pcap: a real libvirtd (test
# driver) in a network namespace of its own, as record.sh runs it, with
# several virsh clients at once: two event listeners (domain events, network
# lifecycle) open for the whole session; a domain defined (its UUID left to
# the daemon), started while a network is defined, suspended, resumed while
# the network starts, snapshotted, inspected, destroyed and undefined; a
# storage pool and a volume created and removed; an error reply (a domain
# that does not exist). Needs root, iproute2, tcpdump, libvirt-daemon,
# libvirt-clients. A new recording changes the snapshots: review them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/daemon.sh"
out="$here/virsh-concurrent.pcap"
ns="ldmcon$$"
dir=$(mktemp -d /tmp/ldm-libvirt.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
prepare_libvirtd "$ns" "$dir"
cat > "$dir/vm1.xml" <<'XML'
<domain type='test'>
  <name>vm1</name>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
XML
cat > "$dir/net1.xml" <<'XML'
<network>
  <name>net1</name>
  <bridge name='vbr-ldm1'/>
  <ip address='10.90.0.1' netmask='255.255.255.0'/>
</network>
XML
start_libvirtd "$ns" "$dir"
ip netns exec "$ns" tcpdump -i lo -B 16384 --immediate-mode -U -w "$dir/session.pcap" 'tcp port 16509' 2> "$dir/tcpdump.log" &
tcpdump=$!
sleep 1
uri=test+tcp://127.0.0.1/default
virsh() { ip netns exec "$ns" timeout 30 virsh -q -c "$uri" "$@"; }
# The listeners, open for the whole session (they also keep the test
# driver's shared state alive between the other clients).
ip netns exec "$ns" timeout 60 virsh -q -c "$uri" event --all --loop > "$dir/events.log" &
pids+=($!)
ip netns exec "$ns" timeout 60 virsh -q -c "$uri" net-event --event lifecycle --loop > "$dir/net-events.log" &
pids+=($!)
sleep 0.5
virsh define "$dir/vm1.xml"
virsh start vm1 & a=$!
virsh net-define "$dir/net1.xml" & b=$!
wait "$a" "$b"
virsh suspend vm1
virsh net-start net1 & a=$!
virsh resume vm1 & b=$!
wait "$a" "$b"
virsh snapshot-create-as vm1 snap1
virsh 'dominfo vm1; dominfo test; net-info default; net-list --all'
virsh "pool-define-as pool1 dir --target $dir/pool1; pool-build pool1; pool-start pool1; vol-create-as pool1 vol1 1M; vol-list pool1"
virsh 'vol-delete vol1 --pool pool1; pool-destroy pool1; pool-undefine pool1'
virsh dominfo nosuch || true
virsh 'destroy vm1; undefine vm1 --snapshots-metadata'
virsh 'net-destroy net1; net-undefine net1'
sleep 0.5
for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()
sleep 0.5
kill -INT "$tcpdump"
wait "$tcpdump" || true
cp "$dir/session.pcap" "$out"
chown --reference="$here" "$out"
echo "wrote $out"; cat "$dir/events.log" "$dir/net-events.log"
