"""``snabbpy selftest apps.vguest --pci ADDR``: vguest on a real PCI device,
inside a VM, against whatever the host puts on the other side.

The guest sends ``--packets N`` numbered frames out through the device and
expects ``--expect-rx M`` frames sent in from the host (the host sends them
in the numbered format of ``snabbpy.testing.frames``; 0 expects none). It
stops when all N are sent and reclaimed and M have arrived, or at ``--timeout``,
then prints one summary line with packet rates. The exit status is 0 only
when every packet is accounted for: N sent, exactly M received, none
corrupt or out of order, no bad ring entries, no packet leaked, and
VGuest's own counters (printed) say N out and M in.

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
from snabbpy.apps.vguest.selftest import graph
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.core import packet
from snabbpy.core.config import ConfigError
from snabbpy.core.hugepages import HugepageError
from snabbpy.testing.frames import HEAD, frame_sizes

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
    p.add_argument("--size", default="60",
                   help="frame size, 18..10240, or sizes to cycle through: 60,1514,9000")
    p.add_argument("--queue-size", type=int, default=1024, help="modern: descriptors per queue")
    p.add_argument("--rx-buffer-size", type=int, default=None,
                   help="bytes per receive buffer (smaller than a frame: merged buffers)")
    p.add_argument("--event-idx", action="store_true", help="negotiate RING_EVENT_IDX")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        raise ConfigError(f"selftest apps.vguest: bad arguments {argv}") from e
    try:
        args.size = frame_sizes([int(s) for s in args.size.split(",")])
    except ValueError:
        args.size = ()
    if not args.size or min(args.size) < HEAD or args.packets < 0 or args.expect_rx < 0:
        raise ConfigError("selftest apps.vguest: --size must be 18..10240 (or a list of "
                          "such, comma-separated), --packets and --expect-rx >= 0")
    return args


def size_text(sizes: tuple[int, ...]) -> str:
    """The frame sizes for the summary: "60 bytes", "60..9000 bytes"."""
    low, high = min(sizes), max(sizes)
    return f"{low} bytes" if low == high else f"{low}..{high} bytes"


def rate(count: int, seconds: float) -> str:
    """``count`` packets over ``seconds`` as a short rate."""
    return f"{count / seconds:,.0f} pps" if seconds > 0 and count else "-"


def run(args: argparse.Namespace) -> dict:
    """The graph Source -> VGuest(pci) -> Sink until done or timeout."""
    nic_conf = {"pciaddr": args.pci, "pci_mode": args.pci_mode, "queue_size": args.queue_size,
                "event_idx": args.event_idx}
    if args.rx_buffer_size is not None:
        nic_conf["rx_buffer_size"] = args.rx_buffer_size
    engine = graph.start(nic_conf, args.packets, args.size)
    source, nic, sink = engine.apps["source"], engine.apps["nic"], engine.apps["sink"]
    print(f"vguest selftest: {nic.transport.name}, rx queue {nic.device.rx.size}, "
          f"tx queue {nic.device.tx.size}, mac {(nic.device.mac or b'').hex(':') or '-'}, "
          f"{nic.device.rings()}", flush=True)
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
    bad = graph.bad_entries(counts, ("bad", "over", "unmapped"))
    leaked = packet.in_use() - before
    ok = (counts["sent"] == args.packets and counts["tx_in_flight"] == 0
          and counts["received"] == args.expect_rx and not counts["corrupt"]
          and not counts["out_of_order"] and not bad and leaked == 0
          and counts["tx_packets"] == args.packets and counts["rx_packets"] == args.expect_rx)
    print(f"vguest counters: tx {counts['tx_packets']:,} packets {counts['tx_bytes']:,} bytes, "
          f"rx {counts['rx_packets']:,} packets {counts['rx_bytes']:,} bytes", flush=True)
    print(f"vguest selftest: sent {counts['sent']:,}/{args.packets:,} ({counts['tx_rate']}), "
          f"received {counts['received']:,}/{args.expect_rx:,} ({counts['rx_rate']}), "
          f"{size_text(args.size)}, corrupt {counts['corrupt']}, out of order "
          f"{counts['out_of_order']}, bad entries {bad or 0}, leaked {leaked}: "
          f"{'ok' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1
