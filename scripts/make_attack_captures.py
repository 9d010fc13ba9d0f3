"""Record attack captures with real attack tools, between two network namespaces, as training material.

The shared captures hold few scans, sweeps or probes from common tools (the BoT-IoT sample has 23 ICMP
flows in 223,025), so a model learns little of what nmap and hping3 send. This script creates two
network namespaces joined by a veth pair (an attacker, and a victim with a few listening services and
several addresses), runs each attack below against the victim with a bounded count and time, records
the attacker's side with tcpdump, and writes one capture per attack plus a labels file in the format
of ``pcaps/labels.csv`` (``use = train``), ready to be a training source:

    sudo python scripts/make_attack_captures.py --out build/attack-captures
    flowsentinel train --data build/attack-captures/labels.csv ...

The attacks are the tools' ordinary modes (nmap's SYN, connect, UDP, FIN/Xmas/NULL and ACK scans, its
host-discovery sweeps and OS detection; hping3's SYN, UDP and ICMP floods and its port scan), each in two
variants (other ports, rates or timing) so that a group split can hold one out. Nothing leaves the two
namespaces, which are removed at the end (also on error). Needs root, iproute2, tcpdump, nmap and
hping3 (Debian packages).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ATTACKER, VICTIM = "fs-attacker", "fs-victim"
A_IF, V_IF = "fsatk0", "fsvic0"
A_IP, V_IP = "10.77.0.1", "10.77.0.2"
#: The swept network, routed through the victim (as a network behind a router is): probes to its dead
#: addresses leave the attacker and go unanswered, instead of stopping at a failed ARP lookup.
SWEPT = "10.78.0.0/24"
#: Addresses of the swept network that answer (held by the victim); the rest are dead.
ALIVE = [f"10.78.0.{i}" for i in (3, 5, 9, 17, 33, 40, 66, 100)]
#: Ports the victim listens on (TCP), so scans meet open ports among closed ones.
OPEN_PORTS = (22, 80, 443, 8080)
#: Longest any one attack may run (seconds); each also has a packet count bound.
ATTACK_TIMEOUT = 90

# (name, label, command run in the attacker namespace). {v} is the victim's own address, {w} one it answers
# for behind its route, {net} the swept network.
ATTACKS: list[tuple[str, str, list[str]]] = [
    ("nmap-syn-scan-1", "Reconnaissance", ["nmap", "-n", "-Pn", "-sS", "-T4", "-p", "1-1000", "{v}"]),
    ("nmap-syn-scan-2", "Reconnaissance", ["nmap", "-n", "-Pn", "-sS", "-T3", "--top-ports", "300", "{w}"]),
    ("nmap-connect-scan-1", "Reconnaissance", ["nmap", "-n", "-Pn", "-sT", "-T4", "-p", "1-500", "{v}"]),
    ("nmap-connect-scan-2", "Reconnaissance", ["nmap", "-n", "-Pn", "-sT", "-T4", "--top-ports", "200", "{w}"]),
    ("nmap-udp-scan-1", "Reconnaissance", ["nmap", "-n", "-Pn", "-sU", "-T4", "--top-ports", "60", "{v}"]),
    ("nmap-udp-scan-2", "Reconnaissance", ["nmap", "-n", "-Pn", "-sU", "-T5", "-p", "1-100", "{w}"]),
    ("nmap-fin-scan", "Reconnaissance", ["nmap", "-n", "-Pn", "-sF", "-T4", "--top-ports", "200", "{v}"]),
    ("nmap-xmas-scan", "Reconnaissance", ["nmap", "-n", "-Pn", "-sX", "-T4", "--top-ports", "200", "{v}"]),
    ("nmap-null-scan", "Reconnaissance", ["nmap", "-n", "-Pn", "-sN", "-T4", "--top-ports", "200", "{v}"]),
    ("nmap-ack-scan", "Reconnaissance", ["nmap", "-n", "-Pn", "-sA", "-T4", "--top-ports", "200", "{v}"]),
    ("nmap-ping-sweep-1", "Reconnaissance", ["nmap", "-n", "-sn", "--disable-arp-ping", "-T4", "{net}"]),
    ("nmap-ping-sweep-2", "Reconnaissance", ["nmap", "-n", "-sn", "-PE", "-PS22,443", "--disable-arp-ping", "-T3", "{net}"]),
    ("nmap-icmp-sweep-1", "Reconnaissance", ["nmap", "-n", "-sn", "-PE", "-PP", "-PM", "--disable-arp-ping", "-T4", "{net}"]),
    ("nmap-icmp-sweep-2", "Reconnaissance", ["nmap", "-n", "-sn", "-PE", "--disable-arp-ping", "-T4", "{net}"]),
    ("nmap-os-detect-1", "Reconnaissance", ["nmap", "-n", "-Pn", "-O", "-T4", "{v}"]),
    ("nmap-os-detect-2", "Reconnaissance", ["nmap", "-n", "-Pn", "-O", "--osscan-guess", "-p", "22,80,1", "{w}"]),
    ("nmap-version-scan", "Reconnaissance", ["nmap", "-n", "-Pn", "-sV", "-T4", "-p", "22,80,443,8080", "{v}"]),
    ("hping3-port-scan", "Reconnaissance", ["hping3", "-q", "-S", "--scan", "1-600", "-i", "u2000", "{v}"]),
    ("hping3-syn-flood-1", "DoS", ["hping3", "-q", "-S", "-p", "80", "-c", "3000", "-i", "u300", "{v}"]),
    ("hping3-syn-flood-2", "DoS", ["hping3", "-q", "-S", "-p", "443", "-c", "3000", "-i", "u300", "--rand-source",
                                   "{v}"]),
    ("hping3-syn-flood-3", "DoS", ["hping3", "-q", "-S", "-p", "8080", "-c", "2000", "-i", "u500", "-w", "1024",
                                   "--rand-source", "{w}"]),
    ("hping3-udp-flood", "DoS", ["hping3", "-q", "--udp", "-p", "53", "-c", "2000", "-i", "u400", "-d", "64",
                                 "--rand-source", "{v}"]),
    ("hping3-icmp-flood-1", "DoS", ["hping3", "-q", "--icmp", "-c", "2000", "-i", "u400", "-d", "56", "{v}"]),
    ("hping3-icmp-flood-2", "DoS", ["hping3", "-q", "--icmp", "-c", "2000", "-i", "u400", "--rand-source", "{v}"]),
]


def run(cmd: list[str], ns: str | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    full = (["ip", "netns", "exec", ns] if ns else []) + cmd
    return subprocess.run(full, check=check, capture_output=True, text=True, **kw)


@contextmanager
def namespaces():
    """The attacker and victim namespaces, joined by a veth pair; removed on exit."""
    for ns in (ATTACKER, VICTIM):
        run(["ip", "netns", "del", ns], check=False)
    listeners: list[subprocess.Popen] = []
    try:
        for ns in (ATTACKER, VICTIM):
            run(["ip", "netns", "add", ns])
            run(["ip", "link", "set", "lo", "up"], ns)
        run(["ip", "link", "add", A_IF, "netns", ATTACKER, "type", "veth", "peer", "name", V_IF, "netns", VICTIM])
        run(["ip", "addr", "add", f"{A_IP}/24", "dev", A_IF], ATTACKER)
        run(["ip", "addr", "add", f"{V_IP}/24", "dev", V_IF], VICTIM)
        for ip in ALIVE:
            run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], VICTIM)
        for ns, dev in ((ATTACKER, A_IF), (VICTIM, V_IF)):
            run(["ip", "link", "set", dev, "up"], ns)
        run(["ip", "route", "add", "blackhole", SWEPT], VICTIM)  # the dead addresses: dropped, no reply
        run(["ip", "route", "add", SWEPT, "via", V_IP], ATTACKER)
        for port in OPEN_PORTS:  # one tiny TCP listener per open port: accepts, says hello, closes
            code = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                    f"s.bind(('0.0.0.0',{port}));s.listen(512)\n"
                    "while True:\n c,_=s.accept()\n try: c.sendall(b'hello\\r\\n')\n except OSError: pass\n c.close()\n")
            listeners.append(subprocess.Popen(["ip", "netns", "exec", VICTIM, sys.executable, "-c", code],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        yield
    finally:
        for proc in listeners:
            proc.kill()
            proc.wait(timeout=5)
        for ns in (ATTACKER, VICTIM):
            run(["ip", "netns", "del", ns], check=False)


def record(name: str, cmd: list[str], out: Path) -> int:
    """Run one attack with tcpdump recording the attacker's interface; the capture's packet count."""
    pcap = out / f"{name}.pcap"
    dump = subprocess.Popen(["ip", "netns", "exec", ATTACKER, "tcpdump", "-i", A_IF, "-U", "-n", "-s", "256",
                             "-w", str(pcap)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    try:
        proc = run(cmd, ATTACKER, check=False, timeout=ATTACK_TIMEOUT)
        if proc.returncode not in (0, 1):  # hping3 exits 1 when no reply came; that is a flood's normal end
            raise SystemExit(f"{name}: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    except subprocess.TimeoutExpired:
        print(f"{name}: stopped after {ATTACK_TIMEOUT} s (bounded)", file=sys.stderr)
    time.sleep(1.5)  # the last replies
    dump.terminate()
    _, err = dump.communicate(timeout=10)
    packets = next((int(line.split()[0]) for line in err.splitlines() if "packets captured" in line), -1)
    return packets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/attack-captures"),
                        help="folder for the captures and labels.csv (default build/attack-captures)")
    parser.add_argument("--only", nargs="*", help="record only these attacks (names as in the list)")
    args = parser.parse_args()
    missing = [tool for tool in ("ip", "tcpdump", "nmap", "hping3") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"make_attack_captures: missing {', '.join(missing)}; apt-get install iproute2 tcpdump "
                         "nmap hping3")
    if os.geteuid() != 0:
        raise SystemExit("make_attack_captures: network namespaces need root")
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [a for a in ATTACKS if not args.only or a[0] in args.only]
    rows = []
    with namespaces():
        for name, label, template in chosen:
            cmd = [part.replace("{v}", V_IP).replace("{w}", ALIVE[2]).replace("{net}", "10.78.0.0/25") for part in template]
            started = time.monotonic()
            packets = record(name, cmd, args.out)
            digest = hashlib.sha256((args.out / f"{name}.pcap").read_bytes()).hexdigest()[:16]
            print(f"{name}: {packets} packets in {time.monotonic() - started:.0f} s ({' '.join(cmd)})", file=sys.stderr)
            rows.append({"capture": f"{name}.pcap", "label": label, "use": "train", "repository": "generated",
                         "path": " ".join(cmd), "commit": digest})
    with open(args.out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["capture", "label", "use", "repository", "path", "commit"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"make_attack_captures: {len(rows)} captures and labels.csv in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
