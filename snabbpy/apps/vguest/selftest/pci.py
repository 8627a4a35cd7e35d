"""``snabbpy selftest apps.vguest --pci ADDR``: vguest on a real PCI device,
inside a VM, against whatever the host puts on the other side.

The guest sends ``--packets N`` numbered frames out through the device and
expects ``--expect-rx M`` frames sent in from the host (the host sends them
in the same numbered format, ``loopback.frame``; 0 expects none). It stops
when all N are sent and reclaimed and M have arrived, or at ``--timeout``,
then prints one summary line with packet rates. The exit status is 0 only
when every packet is accounted for: N sent, exactly M received, none
corrupt or out of order, no bad ring entries, no packet leaked.

    snabbpy selftest apps.vguest --pci 0000:00:05.0 --packets 1000 --expect-rx 1000

The first packet goes out only once the device is up, so a host may wait
for it before sending (then nothing it sends finds the device not ready).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from snabbpy.apps.vguest.pci_transport import MODES
from snabbpy.apps.vguest.selftest.loopback import frame
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core import config, packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.core.hugepages import HugepageError

#: Breaths after the last expected packet, to notice extras.
GRACE_BREATHS = 2000


def parse(argv: list[str]) -> argparse.Namespace:
    """The PCI selftest's options (see the module docstring)."""
    env = os.environ.get
    p = argparse.ArgumentParser(prog="snabbpy selftest apps.vguest --pci ADDR")
    p.add_argument("--pci", default=env("SNABBPY_VGUEST_PCI"), required=not env(
        "SNABBPY_VGUEST_PCI"), help="virtio-net PCI address, e.g. 0000:00:05.0")
    p.add_argument("--pci-mode", choices=MODES, default="auto")
    p.add_argument("--packets", type=int, default=1000, help="frames to send (N)")
    p.add_argument("--expect-rx", type=int, default=0, help="frames the host sends in (M)")
    p.add_argument("--size", type=int, default=60, help="frame size, 18..10240")
    p.add_argument("--queue-size", type=int, default=1024, help="modern: descriptors per queue")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        raise ConfigError(f"selftest apps.vguest: bad arguments {argv}") from e
    if not 18 <= args.size <= packet.PAYLOAD_SIZE or args.packets < 0 or args.expect_rx < 0:
        raise ConfigError("selftest apps.vguest: --size must be 18..10240, "
                          "--packets and --expect-rx >= 0")
    return args


class Frames:
    """``loopback.frame(seq, size)`` made cheap: the payload pattern repeats
    every 251 sequence numbers, so it is built 251 times, not per packet
    (a TCG guest spends its time on per-packet Python)."""

    ETHERNET = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5"

    def __init__(self, size: int) -> None:
        self.size = size
        self.patterns = [frame(seq, size)[18:] for seq in range(251)]

    def get(self, seq: int) -> bytes:
        """Frame ``seq``, byte for byte what ``frame(seq, size)`` returns."""
        head = self.ETHERNET + (seq % 2**32).to_bytes(4, "big")
        return (head + self.patterns[seq % 251])[:self.size]


class FrameSource(App):
    """Sends ``count`` numbered frames of ``size`` bytes, as the link takes them."""

    inputs, outputs = (), ("output",)

    config = {"count": Param(int), "size": Param(int)}

    def __init__(self, conf: dict) -> None:
        self.left, self.seq, self.frames = conf["count"], 0, Frames(conf["size"])

    def pull(self) -> None:
        out = self.output["output"]
        n = min(self.left, out.nwritable())
        for seq in range(self.seq, self.seq + n):
            out.transmit(packet.from_bytes(self.frames.get(seq)))
        self.seq += n
        self.left -= n


class OrderedSink(App):
    """Counts arriving frames: intact ones in sequence, corrupt ones (not a
    numbered frame), and ones out of order; frees them all."""

    inputs, outputs = ("input",), ()

    def __init__(self, conf: dict) -> None:
        self.received = self.corrupt = self.out_of_order = 0
        self.first = self.last = 0.0
        self.frames: dict[int, Frames] = {}

    def _frames(self, size: int) -> Frames:
        if size not in self.frames:
            self.frames[size] = Frames(size)
        return self.frames[size]

    def push(self) -> None:
        link = self.input["input"]
        if link.empty():
            return
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        while not link.empty():
            p = link.receive()
            data = packet.to_bytes(p)
            packet.free(p)
            seq = int.from_bytes(data[14:18], "big") if len(data) >= 18 else -1
            if seq < 0 or data != self._frames(len(data)).get(seq):
                self.corrupt += 1
            elif seq != self.received % 2**32:
                self.out_of_order += 1
            self.received += 1


def rate(count: int, seconds: float) -> str:
    """``count`` packets over ``seconds`` as a short rate."""
    return f"{count / seconds:,.0f} pps" if seconds > 0 and count else "-"


def run(args: argparse.Namespace) -> dict:
    """The graph Source -> VGuest(pci) -> Sink until done or timeout."""
    c = config.new()
    config.app(c, "source", FrameSource, {"count": args.packets, "size": args.size})
    config.app(c, "nic", "vguest.VGuest", {"pciaddr": args.pci, "pci_mode": args.pci_mode,
                                            "queue_size": args.queue_size})
    config.app(c, "sink", OrderedSink)
    config.link(c, "source.output -> nic.input")
    config.link(c, "nic.output -> sink.input")
    engine = Engine()
    engine.configure(c)
    source, nic, sink = engine.apps["source"], engine.apps["nic"], engine.apps["sink"]
    print(f"vguest selftest: {nic.transport.name}, rx queue {nic.device.rx.size}, "
          f"tx queue {nic.device.tx.size}, mac {(nic.device.mac or b'').hex(':') or '-'}",
          flush=True)
    start = time.monotonic()
    deadline, sent_at = start + args.timeout, None
    while time.monotonic() < deadline:
        engine.breathe()
        if sent_at is None and not source.left and not nic.device.tx.in_flight():
            sent_at = time.monotonic()
        if sent_at is not None and sink.received >= args.expect_rx:
            break
    for _ in range(GRACE_BREATHS):
        engine.breathe()
    counts = {"sent": args.packets - source.left, "tx_in_flight": nic.device.tx.in_flight(),
              "received": sink.received, "corrupt": sink.corrupt,
              "out_of_order": sink.out_of_order, **nic.stats.snapshot(),
              "tx_rate": rate(args.packets - source.left, (sent_at or time.monotonic()) - start),
              "rx_rate": rate(sink.received, sink.last - sink.first)}
    engine.stop()
    return counts


def main(argv: list[str]) -> int:
    """Runs the PCI selftest; 0 when every packet is accounted for."""
    args = parse(argv)
    before = packet.in_use()
    try:
        counts = run(args)
    except (TransportError, ConfigError, HugepageError) as e:  # VGuest: device unreachable
        print(f"vguest selftest: FAILED: {e}", file=sys.stderr)
        return 1
    bad = {k: v for k, v in counts.items()
           if k.split("_", 1)[-1].startswith(("bad", "over", "unmapped")) and v}
    leaked = packet.in_use() - before
    ok = (counts["sent"] == args.packets and counts["tx_in_flight"] == 0
          and counts["received"] == args.expect_rx and not counts["corrupt"]
          and not counts["out_of_order"] and not bad and leaked == 0)
    print(f"vguest selftest: sent {counts['sent']:,}/{args.packets:,} ({counts['tx_rate']}), "
          f"received {counts['received']:,}/{args.expect_rx:,} ({counts['rx_rate']}), "
          f"{args.size} bytes, corrupt {counts['corrupt']}, out of order "
          f"{counts['out_of_order']}, bad entries {bad or 0}, leaked {leaked}: "
          f"{'ok' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1
