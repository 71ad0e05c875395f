#!/usr/bin/env bash
# Records captures/recorded/* with the real tcpdump and dumpcap, as root:
#   bash captures/recorded/record.sh
# Two network namespaces joined by a veth pair (10.77.0.0/24, nothing leaves
# them); ns-a sends one of each ldm message to 239.129.9.27 with TTL 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
a=ldmrec-a; b=ldmrec-b
# Stops only what this script started (its background jobs, by PID).
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$a"; ip netns add "$b"
ip link add veth-a netns "$a" type veth peer name veth-b netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev veth-a; ip -n "$b" addr add 10.77.0.2/24 dev veth-b
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set veth-a up; ip -n "$b" link set veth-b up
ip -n "$a" route add 224.0.0.0/4 dev veth-a
(cd "$root" && cargo build -q --example send-ldm)
sender="$root/target/debug/examples/send-ldm"
tmp=$(mktemp -d)
# Receiving side: classic pcap (tcpdump), nanosecond pcap (tcpdump), pcapng (dumpcap).
ip netns exec "$b" tcpdump -U -q -i veth-b -w "$tmp/tcpdump-classic.pcap" udp port 64535 2>/dev/null &
ip netns exec "$b" tcpdump -U -q -i veth-b --time-stamp-precision=nano -w "$tmp/tcpdump-nano.pcap" udp port 64535 2>/dev/null &
ip netns exec "$b" dumpcap -q -i veth-b -f "udp port 64535" -w "$tmp/dumpcap.pcapng" 2>/dev/null &
# Sending side, -i any: Linux cooked v2 with outgoing frames (checksum offload).
ip netns exec "$a" tcpdump -U -q -i any -w "$tmp/tcpdump-any-sll2.pcap" udp port 64535 2>/dev/null &
sleep 2
ip netns exec "$a" "$sender" 10.77.0.1 239.129.9.27 2
sleep 1
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true
for f in tcpdump-classic.pcap tcpdump-nano.pcap dumpcap.pcapng tcpdump-any-sll2.pcap; do
  cp "$tmp/$f" "$here/$f"
  echo "$f: $(tshark -r "$here/$f" 2>/dev/null | wc -l) frames"
done
rm -rf "$tmp"
