"""Sleeping on interlinks: an idle end waits on a futex in the ring and the
other end wakes it when it puts records in or makes room, so a process
with nothing to do costs no CPU and wakes when there is work."""

import threading

from snabbpy.core import interlink
from snabbpy.core.interlink import RECORDS, ROOM, Ring, Waiter
from snabbpy.core.link import Link
from snabbpy.core.native import lib
from tests.helpers import drain, fill

#: Long enough never to end a wait that a wake should end (a failing test
#: then takes this long and fails on what wait() returned, not on a clock).
LONG_NS = 60 * 10**9


def wait_in_thread(waiter: Waiter, ns: int = LONG_NS):
    """Starts ``waiter.wait(ns)`` in a thread; returns it and the result box."""
    got = []
    thread = threading.Thread(target=lambda: got.append(waiter.wait(ns)))
    thread.start()
    return thread, got


def until(condition) -> None:
    """Spins until ``condition()`` (the other thread got that far)."""
    while not condition():
        pass


def test_an_empty_ring_times_out_and_leaves_nothing_armed(ends):
    tx, rx = ends
    out = Link("out")
    assert Waiter([(rx, RECORDS, out)]).wait(1_000_000) == 0
    assert rx.c.s.rx_wait == 0


def test_records_waiting_already_mean_no_sleep(ends, no_leaks):
    tx, rx = ends
    src, out = Link("src"), Link("out")
    fill(src, [b"x" * 60])
    tx.send(src)
    assert Waiter([(rx, RECORDS, out)]).wait(LONG_NS) == 1
    rx.receive(out)
    drain(out)


def test_the_sender_wakes_a_receiver_that_sleeps_when_its_stream_pauses(ends, no_leaks):
    tx, rx = ends
    src, out = Link("src"), Link("out")
    bell = rx.c.s.rx_bell
    thread, got = wait_in_thread(Waiter([(rx, RECORDS, out)]))
    until(lambda: rx.c.s.rx_wait == 1)  # armed: the sender must see it
    fill(src, [b"y" * 60])
    assert tx.send(src) == 1
    assert rx.c.s.rx_bell == bell and rx.c.s.rx_wait == 1  # more may come: not yet
    assert tx.send(src) == 0  # nothing more: the stream paused, wake it now
    thread.join()
    assert got[0] in (1, 2)  # saw the record, or slept and was woken
    assert rx.c.s.rx_bell == bell + 1 and rx.c.s.rx_wait == 0
    fill(src, [b"z" * 60])
    tx.send(src)
    assert rx.c.s.rx_bell == bell + 1  # nobody waits: no wake, no syscall
    rx.receive(out)
    assert drain(out) == [b"y" * 60, b"z" * 60]


def test_a_receiver_whose_link_is_full_does_not_wait_for_records(ends, no_leaks):
    tx, rx = ends
    out = Link("out")
    fill(out, [b""] * out.nwritable())
    assert Waiter([(rx, RECORDS, out)]).wait(1_000_000) == 0
    assert rx.c.s.rx_wait == 0
    drain(out)


def test_a_blocked_sender_is_woken_once_half_the_ring_is_free(ends, no_leaks):
    tx, rx = ends
    src, out = Link("src"), Link("out")
    fill(src, [bytes(1000)] * 200)
    sent = tx.send(src)  # the ring is full, packets wait on src
    assert 0 < sent < 200
    bell = tx.c.s.tx_bell
    thread, got = wait_in_thread(Waiter([(tx, ROOM, src)]))
    until(lambda: tx.c.s.tx_wait != 0)
    rx.receive(out, sent // 4)  # a quarter free: not worth a wake
    assert tx.c.s.tx_bell == bell
    rx.receive(out, sent // 2)  # three quarters
    thread.join()
    assert got[0] in (1, 2) and tx.c.s.tx_bell == bell + 1 and tx.c.s.tx_wait == 0
    assert tx.send(src) > 0
    drain(out)
    rx.discard()
    drain(src)


def test_a_sender_with_nothing_to_send_does_not_wait_for_room(ends):
    tx, rx = ends
    assert Waiter([(tx, ROOM, Link("empty"))]).wait(1_000_000) == 0
    assert tx.c.s.tx_wait == 0


def test_one_wait_covers_several_rings(tmp_path, no_leaks):
    rings = []
    for k in range(3):
        interlink.create(tmp_path / f"r{k}", 1 << 16)
        rings.append((Ring(tmp_path / f"r{k}"), Ring(tmp_path / f"r{k}")))
    outs = [Link(f"out{k}") for k in range(3)]
    waits = [(rx, RECORDS, o) for (_, rx), o in zip(rings, outs, strict=True)]
    thread, got = wait_in_thread(Waiter(waits))
    until(lambda: all(rx.c.s.rx_wait for _, rx in rings))
    src = Link("src")
    fill(src, [b"last"])
    rings[2][0].send(src)
    rings[2][0].send(src)  # nothing more to send: the wake
    thread.join()
    assert got[0] in (1, 2)
    assert [rx.c.s.rx_wait for _, rx in rings] == [0, 0, 0]  # all disarmed
    rings[2][1].receive(outs[2])
    assert drain(outs[2]) == [b"last"]
    for tx, rx in rings:
        tx.close()
        rx.close()


def receiver_asleep(rx: Ring, out: Link):
    """Starts a wait for records on ``rx`` in a thread, returns once it is
    armed: the bell's value before, the thread and its result box."""
    bell = rx.c.s.rx_bell
    thread, got = wait_in_thread(Waiter([(rx, RECORDS, out)]))
    until(lambda: rx.c.s.rx_wait == 1)
    return bell, thread, got


def test_a_busy_sender_wakes_a_sleeping_receiver_after_a_few_sends(ends, no_leaks):
    tx, rx = ends
    src, out = Link("src"), Link("out")
    bell, thread, got = receiver_asleep(rx, out)
    for _ in range(lib.INTERLINK_WAKE_SENDS - 1):  # one record a breath, never pausing
        fill(src, [b"b" * 60])
        assert tx.send(src) == 1
    assert rx.c.s.rx_bell == bell  # a few records: the wake is not worth it yet
    fill(src, [b"b" * 60])
    tx.send(src)
    thread.join()
    assert got[0] == 2 and rx.c.s.rx_bell == bell + 1 and rx.c.s.rx_wait == 0
    rx.receive(out)
    assert drain(out) == [b"b" * 60] * lib.INTERLINK_WAKE_SENDS


def test_a_quarter_of_the_ring_waiting_wakes_the_receiver_at_once(ends, no_leaks):
    tx, rx = ends
    src, out = Link("src"), Link("out")
    bell, thread, got = receiver_asleep(rx, out)
    capacity = rx.c.s.capacity
    fill(src, [bytes(1000)] * (capacity // 4 // 1008))  # records of 1008 bytes
    tx.send(src)
    assert rx.c.s.rx_bell == bell  # just short of a quarter
    fill(src, [bytes(1000)])
    assert tx.send(src) == 1
    thread.join()
    assert got[0] == 2 and rx.c.s.rx_bell == bell + 1
    rx.discard()
