"""The interlink ring: payloads copied through shared memory between two
ends, each packet sent on or freed exactly once, with a link's counters."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from snabbpy.core import interlink, packet
from snabbpy.core.interlink import InterlinkError, Ring
from snabbpy.core.link import Link
from snabbpy.core.native import ffi, lib
from tests.helpers import drain, fill

ROOT = str(Path(__file__).resolve().parent.parent)


def through(tx: Ring, rx: Ring, payloads: list[bytes]) -> list[bytes]:
    """Sends ``payloads`` from one end and returns what the other received."""
    src, dst = Link("src"), Link("dst")
    fill(src, payloads)
    got = []
    while not src.empty() or not tx.empty():
        tx.send(src)
        rx.receive(dst)
        got += drain(dst)
    return got


def test_payloads_cross_in_order_and_the_books_balance(ends, no_leaks):
    tx, rx = ends
    payloads = [bytes([i % 256]) * (i % 97) for i in range(500)]
    assert through(tx, rx, payloads) == payloads
    c = tx.counters()
    assert c == rx.counters()
    assert c["txpackets"] == c["rxpackets"] == 500
    assert c["txbytes"] == c["rxbytes"] == sum(map(len, payloads))


def test_a_full_ring_leaves_packets_on_the_sending_link(ends, no_leaks):
    tx, rx = ends
    src = Link("src")
    fill(src, [bytes(1500)] * 100)
    sent = tx.send(src)
    assert 0 < sent < 100 and src.nreadable() == 100 - sent  # 64 KiB holds ~43
    assert tx.send(src) == 0
    assert rx.discard() == sent
    assert tx.send(src) > 0  # room again once the receiver took the records
    src.drain()
    rx.discard()
    assert tx.counters()["txdrop"] == 0


def test_records_wrap_around_the_end_of_the_ring(ends, no_leaks):
    tx, rx = ends
    for round_ in range(40):  # ~40 x 30 KiB through a 64 KiB ring
        payloads = [bytes([round_]) * (100 + 37 * k) for k in range(20)]
        assert through(tx, rx, payloads) == payloads


def test_receive_stops_at_a_full_output_and_keeps_the_rest(ends, no_leaks):
    tx, rx = ends
    src, dst = Link("src"), Link("dst")
    fill(src, [b"x" * 10] * 1023)
    tx.send(src)
    fill(src, [b"y" * 10] * 5)
    tx.send(src)
    assert rx.receive(dst) == 1023 and dst.full()
    assert not rx.empty()
    dst.drain()
    assert rx.receive(dst) == 5
    assert drain(dst) == [b"y" * 10] * 5


def test_a_maximum_size_packet_crosses(ends, no_leaks):
    tx, rx = ends
    src, dst = Link("src"), Link("dst")
    big = os.urandom(packet.PAYLOAD_SIZE)
    fill(src, [big])
    assert tx.send(src) == 1 and rx.receive(dst) == 1
    assert drain(dst) == [big]


def test_a_corrupt_record_is_refused_and_nothing_is_allocated(ends, no_leaks):
    tx, rx = ends
    src, dst = Link("src"), Link("dst")
    fill(src, [b"abc"])
    tx.send(src)
    data = ffi.cast("uint64_t *", ffi.cast("uint8_t *", rx.c.data))
    data[0] = packet.PAYLOAD_SIZE + 1  # a length no packet can have
    with pytest.raises(InterlinkError, match="corrupt"):
        rx.receive(dst)
    assert dst.empty()


def test_a_file_that_is_not_a_ring_is_refused(tmp_path):
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\0" * 70000)
    with pytest.raises(InterlinkError, match="not an interlink ring"):
        Ring(bogus)
    with pytest.raises(InterlinkError, match="No such file"):
        Ring(tmp_path / "missing")
    with pytest.raises(ValueError, match="power of two"):
        interlink.create(tmp_path / "odd", 100000)


SENDER = """
import sys
from snabbpy.core import packet
from snabbpy.core.interlink import Ring
from snabbpy.core.link import Link
ring, src, sent = Ring(sys.argv[1]), Link("src"), 0
while sent < 20000:
    if src.empty():
        for _ in range(100):
            src.transmit(packet.from_bytes(sent.to_bytes(4, "little") * 16))
    sent += ring.send(src)
sys.exit(0 if packet.in_use() == 0 else 3)
"""


def test_the_two_ends_work_from_two_processes(tmp_path, no_leaks):
    # Spawned, not forked: a forked child would share this process's packet
    # memory and its freelist, and both would hand out the same buffers.
    path = tmp_path / "ring"
    interlink.create(path, 1 << 16)
    sender = subprocess.Popen([sys.executable, "-P", "-c", SENDER, str(path)],
                              env={**os.environ, "PYTHONPATH": ROOT})
    ring, dst = Ring(path), Link("dst")
    got = []
    while len(got) < 20000:
        ring.receive(dst)
        got += drain(dst)
    assert sender.wait() == 0
    assert [int.from_bytes(g[:4], "little") for g in got[::100]] == list(range(0, 20000, 100))
    assert ring.counters()["rxpackets"] == 20000 == ring.counters()["txpackets"]
    ring.close()


def test_the_pointer_variant_moves_packets_without_copying(ends, no_leaks):
    tx, rx = ends
    src, dst = Link("src"), Link("dst")
    fill(src, [b"same buffer"])
    before = src.c.ring[0]
    assert lib.interlink_send_pointers(tx.c, src.c, -1) == 1
    assert lib.interlink_receive_pointers(rx.c, dst.c, -1) == 1
    assert dst.c.ring[0] == before
    assert drain(dst) == [b"same buffer"]


def test_selftest_passes(capsys):
    interlink.selftest()
    assert "interlink selftest: ok" in capsys.readouterr().out
