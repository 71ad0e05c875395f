# Sourced by the live benchmarks (bench/live.sh, bench/live-ab.sh).
#   blast_link NS_SEND NS_CAPTURE IF_SEND IF_CAPTURE NET
# makes two fresh network namespaces joined by a veth pair, NET.1 on the
# sending side and NET.2 on the capturing side (NET is a 10.x /24 prefix
# such as 10.80.0), with multicast routed out of the sender, and removes
# them again when the calling script exits, also on failure.
# interrupt_timed PID: Ctrl-C for the command that a background
# `/usr/bin/time CMD` (PID, as $! gave it) runs. time ignores SIGINT while it
# waits, so the signal goes to its child: exactly the process this script
# started, never one found by name.
interrupt_timed() {
  local child
  child=$(pgrep -P "$1") || return 0
  kill -INT $child 2>/dev/null || true
}

blast_link() {
  local send=$1 capture=$2 if_send=$3 if_capture=$4 net=$5
  blast_link_namespaces=("$send" "$capture")
  trap 'for ns in "${blast_link_namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done' EXIT
  for ns in "$send" "$capture"; do ip netns del "$ns" 2>/dev/null || true; done
  ip netns add "$send"; ip netns add "$capture"
  ip link add "$if_send" netns "$send" type veth peer name "$if_capture" netns "$capture"
  ip -n "$send" addr add "$net.1/24" dev "$if_send"; ip -n "$capture" addr add "$net.2/24" dev "$if_capture"
  ip -n "$send" link set "$if_send" up; ip -n "$capture" link set "$if_capture" up
  ip -n "$send" route add 224.0.0.0/4 dev "$if_send"
}
