"""What the VhostUser app does with each kind of bad memory table and bad
message: refused with a nack (counted in protocol_errors, the connection
and the memory already mapped kept) or, when the bytes cannot be decoded
or no reply was asked for, counted and the connection ended. Either way no
fd the frontend sent stays open."""

import os
import socket
import struct

import pytest
from helpers import vhost_and_frontend

from snabbpy.lib.vhost_user import MemoryRegion, MemoryTable, Request
from snabbpy.testing.fake_guest import USER_OFFSET

R = Request
GPA = 0x100000
MEM = 4 << 20  # FakeFrontend's memory
NEED_REPLY = 1 | 8


def fds_open():
    """Open fds, but packet memory (grown on first use, kept for good)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "snabbpy-dma" not in os.readlink(f"/proc/self/fd/{fd}"):
                out.add(fd)
        except OSError:
            pass  # the fd of the listing itself
    return out


@pytest.fixture
def pair(tmp_path):
    """A VhostUser app and a FakeFrontend joined by a socketpair; at the end
    no packet and no fd is left over."""
    before_fds = fds_open()
    with vhost_and_frontend(tmp_path) as p:
        yield p
    assert fds_open() <= before_fds


def region(gpa=GPA, size=MEM, user=GPA + USER_OFFSET, offset=0):
    return MemoryRegion(gpa, size, user, offset)


def nacked(app, fe, regions, fds):
    """Sends SET_MEM_TABLE with REPLY_ACK; True if nacked (and counted)."""
    errors = app.stats["protocol_errors"]
    reply = fe.request(R.SET_MEM_TABLE, MemoryTable(tuple(regions)), tuple(fds),
                       need_reply=True)
    assert app.stats["protocol_errors"] == errors + 1
    assert app.channel is not None
    return reply.payload != 0


def raw(app, fe, code, body, fds=(), flags=NEED_REPLY):
    """Sends bytes the encoder would refuse to make; returns after a breath."""
    socket.send_fds(fe.sock, [struct.pack("<III", code, flags, len(body)) + body], list(fds))
    app.tick()


def table_bytes(*regions):
    return struct.pack("<II", len(regions), 0) + b"".join(
        struct.pack("<QQQQ", *r) for r in regions)


# -- memory tables: refused with a nack, the connection kept ----------------

def test_overlapping_regions_are_refused(pair):
    app, fe = pair
    fe.negotiate()
    fd = fe.mem.fds[0]
    assert nacked(app, fe, [region(size=MEM // 2), region(gpa=GPA + MEM // 4, size=MEM // 2,
                                                          user=0x9000000000)], [fd, fd])
    assert "overlaps another" in app.last_error and app.device.memory is None


def test_regions_overlapping_in_user_addresses_only_are_refused(pair):
    app, fe = pair
    fe.negotiate()
    fd = fe.mem.fds[0]
    assert nacked(app, fe, [region(size=MEM // 2), region(gpa=0x40000000, size=MEM // 2)],
                  [fd, fd])
    assert "overlaps another" in app.last_error


@pytest.mark.parametrize("kind", ["eventfd", "pipe", "directory"])
def test_a_region_whose_fd_cannot_be_mapped_is_refused(pair, kind):
    app, fe = pair
    fe.negotiate()
    if kind == "eventfd":
        fd, other = os.eventfd(0), None
    elif kind == "pipe":
        other, fd = os.pipe()
    else:
        fd, other = os.open("/", os.O_RDONLY | os.O_DIRECTORY), None
    try:
        assert nacked(app, fe, [region()], [fd])
    finally:
        os.close(fd)
        if other is not None:
            os.close(other)
    assert "not a file that can be mapped" in app.last_error
    assert app.device.memory is None


def test_a_region_past_the_end_of_its_file_is_refused(pair):
    app, fe = pair
    fe.negotiate()
    assert nacked(app, fe, [region(offset=4096)], fe.mem.fds[:1])
    assert "file has" in app.last_error and app.device.memory is None


def test_a_bad_table_after_a_good_one_keeps_the_running_rings_on_the_old(pair):
    app, fe = pair
    fe.connect()
    memory = app.device.memory
    fd = fe.mem.fds[0]
    assert nacked(app, fe, [region(size=MEM // 2), region(gpa=GPA + 4096, user=1 << 40)],
                  [fd, fd])
    assert app.device.memory is memory
    assert app.device.rx.running and app.device.tx.running
    fe.rings[1].post_tx(b"x" * 60)
    app.pull()
    assert app.stats["txq_packets"] == 1
    app.output["output"].drain()


# -- memory tables the decoder refuses: counted, the connection ended --------

def ended(app, why):
    assert app.channel is None, "the connection should have ended"
    assert app.stats["protocol_errors"] == 1 and app.stats["disconnects"] == 1
    assert why in app.last_error, app.last_error


def test_a_zero_size_region_ends_the_connection(pair):
    app, fe = pair
    fe.negotiate()
    raw(app, fe, R.SET_MEM_TABLE, table_bytes((GPA, 0, GPA, 0)), fe.mem.fds[:1])
    ended(app, "size 0")


def test_a_region_wrapping_past_2_64_ends_the_connection(pair):
    app, fe = pair
    fe.negotiate()
    raw(app, fe, R.SET_MEM_TABLE, table_bytes((2**64 - 4096, 8192, GPA, 0)), fe.mem.fds[:1])
    ended(app, "wraps past 2**64")


def test_more_regions_than_fds_ends_the_connection(pair):
    app, fe = pair
    fe.negotiate()
    fd = fe.mem.fds[0]
    raw(app, fe, R.SET_MEM_TABLE,
        table_bytes((GPA, 4096, GPA, 0), (GPA + 4096, 4096, GPA + 4096, 4096)), [fd])
    ended(app, "came with 1 fds, 2 required")


def test_more_fds_than_regions_ends_the_connection(pair):
    app, fe = pair
    fe.negotiate()
    fd = fe.mem.fds[0]
    raw(app, fe, R.SET_MEM_TABLE, table_bytes((GPA, 4096, GPA, 0)), [fd, fd, fd])
    ended(app, "came with 3 fds, 1 required")


def test_too_many_regions_end_the_connection(pair):
    app, fe = pair
    fe.negotiate()
    regions = [(GPA + i * 4096, 4096, GPA + i * 4096, i * 4096) for i in range(9)]
    body = struct.pack("<II", 9, 0) + b"".join(struct.pack("<QQQQ", *r) for r in regions[:8])
    raw(app, fe, R.SET_MEM_TABLE, body, fe.mem.fds[:1] * 8)
    ended(app, "9 memory regions, at most 8")


def test_a_table_shorter_than_its_count_ends_the_connection(pair):
    app, fe = pair
    fe.negotiate()
    raw(app, fe, R.SET_MEM_TABLE, struct.pack("<II", 2, 0) + bytes(32), fe.mem.fds[:1] * 2)
    ended(app, "payload is 40 bytes but 2 regions need 72")


# -- bad messages ------------------------------------------------------------

@pytest.mark.parametrize("flags, why", [(0, "header version 0"), (2, "header version 2"),
                                        (1 | 4, "reply flag (0x4) set in a request")])
def test_a_bad_header_ends_the_connection(pair, flags, why):
    app, fe = pair
    raw(app, fe, R.GET_FEATURES, b"", flags=flags)
    ended(app, why)


def test_a_payload_of_the_wrong_size_ends_the_connection(pair):
    app, fe = pair
    raw(app, fe, R.SET_FEATURES, bytes(4))
    ended(app, "payload size 4 is not valid")


def test_a_huge_announced_payload_is_refused_before_it_is_buffered(pair):
    app, fe = pair
    socket.send_fds(fe.sock, [struct.pack("<III", R.SET_MEM_TABLE, NEED_REPLY, 2**31)], [])
    app.tick()
    ended(app, "payload size")


def test_an_fd_on_a_request_that_takes_none_ends_the_connection(pair):
    app, fe = pair
    fd = os.eventfd(0)
    try:
        raw(app, fe, R.SET_FEATURES, struct.pack("<Q", 0), [fd])
    finally:
        os.close(fd)
    ended(app, "came with 1 fds, 0 required")


def test_a_ring_index_out_of_range_is_nacked_and_its_fd_closed(pair):
    app, fe = pair
    fe.negotiate()
    fd = os.eventfd(0)
    try:
        raw(app, fe, R.SET_VRING_CALL, struct.pack("<Q", 7), [fd])
    finally:
        os.close(fd)
    assert app.channel is not None and app.stats["protocol_errors"] == 1
    assert "ring index 7 out of range" in app.last_error
