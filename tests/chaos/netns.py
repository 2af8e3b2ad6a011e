"""The harness's network: one namespace per node on a bridge in the root namespace,
and the network faults (iptables rules and tc netem inside the namespaces).

Everything this module creates carries the `gchaos` prefix, and only such names are ever
deleted: namespaces gchaos-n1..n5, the bridge gchaos-br and the veths gchaos-v1..v5 (the
node side of each veth is `eth0` inside its namespace). Addresses are in 10.77.0.0/24:
the bridge (where the workload's clients live) is 10.77.0.1, node i is 10.77.0.(10+i).
No namespace has a default route, so nothing leaves that subnet or loopback.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess

PREFIX = "gchaos"
BRIDGE = f"{PREFIX}-br"
SUBNET = "10.77.0"
BRIDGE_IP = f"{SUBNET}.1"
NS_DEV = "eth0"


def ns_name(node: int) -> str:
    return f"{PREFIX}-n{node}"


def veth_name(node: int) -> str:
    return f"{PREFIX}-v{node}"


def node_ip(node: int) -> str:
    return f"{SUBNET}.{10 + node}"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a command (no shell), raising with its stderr when `check` and it fails."""
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def in_ns(node: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns_name(node), *args, check=check)


# ---------------------------------------------------------------- setup and teardown


def our_namespaces() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if re.fullmatch(rf"{PREFIX}-n\d+", n)]


def our_links() -> list[str]:
    """Links of the root namespace named by this harness (the bridge and root-side veths)."""
    out = sh("ip", "-o", "link", "show", check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n == BRIDGE or re.fullmatch(rf"{PREFIX}-v\d+", n)]


def kill_processes_in(ns: str) -> list[int]:
    """SIGKILLs (after SIGCONT, for a paused one) every process left in one of our
    namespaces: only the harness's own nodes ever run there."""
    pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).stdout.split()]
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    return pids


def destroy() -> list[str]:
    """Removes every namespace and link with our prefix (this run's or a previous run's
    leftovers), killing processes left inside; returns what was removed."""
    removed = []
    for ns in our_namespaces():
        kill_processes_in(ns)
        sh("ip", "netns", "del", ns, check=False)
        removed.append(ns)
    for link in our_links():  # deleting one end of a veth deletes both
        sh("ip", "link", "del", link, check=False)
        removed.append(link)
    return removed


def disable_ipv6(dev: str, node: int | None = None) -> None:
    """No IPv6 link-local chatter on our links (best effort)."""
    path = f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"
    if node is None:
        try:
            with open(path, "w") as f:
                f.write("1")
        except OSError:
            pass
    else:
        in_ns(node, "sh", "-c", f"[ -e {path} ] && echo 1 > {path}", check=False)


def create(nodes: list[int]) -> None:
    """The bridge with the clients' address, then one namespace per node with a veth on it."""
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    disable_ipv6(BRIDGE)
    sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for node in nodes:
        ns, veth = ns_name(node), veth_name(node)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", NS_DEV, "netns", ns)
        disable_ipv6(veth)
        disable_ipv6(NS_DEV, node)
        sh("ip", "link", "set", veth, "master", BRIDGE, "up")
        sh("ip", "-n", ns, "addr", "add", f"{node_ip(node)}/24", "dev", NS_DEV)
        sh("ip", "-n", ns, "link", "set", NS_DEV, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")


# ---------------------------------------------------------------- faults


def drop_from(node: int, peer: int) -> None:
    """`node` no longer receives anything from `peer` (one way)."""
    in_ns(node, "iptables", "-A", "INPUT", "-s", node_ip(peer), "-j", "DROP")


def drop_to(node: int, peer: int) -> None:
    in_ns(node, "iptables", "-A", "OUTPUT", "-d", node_ip(peer), "-j", "DROP")


def cut(node: int, peers: list[int]) -> None:
    """No traffic either way between `node` and each of `peers` (rules in `node` only)."""
    for peer in peers:
        drop_from(node, peer)
        drop_to(node, peer)


def netem(node: int, delay_ms: int, jitter_ms: int, loss_pct: float) -> str:
    """A bad link on both ends of the node's veth (to and from the node): tc netem delay
    and loss; where the kernel has no netem (sch_netem), a slow link instead (tbf: 1 Mbit/s,
    up to `delay_ms` of queueing, then drops) plus random loss with iptables' statistic
    match. Returns what was applied."""
    spec = ["netem", "delay", f"{delay_ms}ms", f"{jitter_ms}ms", "loss", f"{loss_pct:.1f}%"]
    if sh("tc", "qdisc", "replace", "dev", veth_name(node), "root", *spec, check=False).returncode == 0:
        in_ns(node, "tc", "qdisc", "replace", "dev", NS_DEV, "root", *spec)
        return " ".join(spec)
    spec = ["tbf", "rate", "1mbit", "burst", "32kbit", "latency", f"{delay_ms}ms"]
    sh("tc", "qdisc", "replace", "dev", veth_name(node), "root", *spec)
    in_ns(node, "tc", "qdisc", "replace", "dev", NS_DEV, "root", *spec)
    probability = f"{loss_pct / 100:.3f}"
    for chain in ("INPUT", "OUTPUT"):
        in_ns(node, "iptables", "-A", chain, "-m", "statistic", "--mode", "random",
              "--probability", probability, "-j", "DROP")
    return f"no netem in this kernel: {' '.join(spec)} + iptables random loss {loss_pct:.1f}% each way"


def heal(node: int) -> None:
    """Flushes the node's iptables rules and removes its netem qdiscs (idempotent)."""
    in_ns(node, "iptables", "-F", "INPUT", check=False)
    in_ns(node, "iptables", "-F", "OUTPUT", check=False)
    sh("tc", "qdisc", "del", "dev", veth_name(node), "root", check=False)
    in_ns(node, "tc", "qdisc", "del", "dev", NS_DEV, "root", check=False)


def rules(node: int) -> str:
    """The node's iptables rules and qdiscs, for the timeline's evidence."""
    ipt = in_ns(node, "iptables", "-S", check=False).stdout
    qd = in_ns(node, "tc", "qdisc", "show", "dev", NS_DEV, check=False).stdout
    return (ipt + qd).strip()
