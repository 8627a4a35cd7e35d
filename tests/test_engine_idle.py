"""What an idle engine does: naps of up to MAX_SLEEP_US when some app may
poll the world, and a sleep on its interlinks until another process moves
something (or the next timer) when every app only moves what its links
give it."""

import threading

import pytest

from snabbpy.apps.basic import Sink
from snabbpy.apps.interlink import Receiver
from snabbpy.core import config, interlink
from snabbpy.core.app import App
from snabbpy.core.engine import MAX_SLEEP_US, MAX_WAIT_US, Engine
from snabbpy.core.link import Link
from snabbpy.core.native import lib
from tests.helpers import drain, fill

pytestmark = pytest.mark.usefixtures("no_leaks")


class Poller(App):
    """Stands for an app that looks at the world in every breath (a device,
    a socket): not ``links_only``."""

    def pull(self):
        pass


class Ticking(App):
    """A links-only app with a tick: the engine's tick timer bounds a sleep."""

    links_only = True
    inputs, outputs = (), ()

    def tick(self):
        pass


def receiving_graph(ring_path, *extra):
    """A Receiver on ``ring_path`` into a Sink, and ``extra`` (name, class) apps."""
    c = config.new()
    config.app(c, "rx", Receiver, {"path": str(ring_path)})
    config.app(c, "sink", Sink)
    config.link(c, "rx.output -> sink.input")
    for name, cls in extra:
        config.app(c, name, cls)
    return c


def average_nap_us(e: Engine) -> float:
    return e.nap_us / e.naps


def run_until_received(e: Engine, ring_path, count: int) -> None:
    """Runs ``e`` in a thread; once it has slept, sends ``count`` packets
    into its ring from here (the other end) and waits for it to take them."""
    link = e.links["rx.output -> sink.input"]
    thread = threading.Thread(target=lambda: e.main(
        done=lambda: link.counters["rxpackets"] >= count))
    thread.start()
    tx, src = interlink.Ring(ring_path), Link("src")
    try:
        while e.naps == 0:
            pass
        fill(src, [b"p" * 60] * count)
        while not src.empty():
            tx.send(src)
        thread.join()
    finally:
        tx.close()
        drain(src)
    assert link.counters["rxpackets"] == count


def test_an_engine_of_links_only_apps_sleeps_until_its_interlink_wakes_it(tmp_path):
    interlink.create(tmp_path / "ring")
    e = Engine()
    e.configure(receiving_graph(tmp_path / "ring"))
    run_until_received(e, tmp_path / "ring", 500)
    assert average_nap_us(e) > MAX_SLEEP_US  # long sleeps, not 1..100 us naps
    e.stop()


def test_an_app_that_may_poll_keeps_the_naps_short(tmp_path):
    interlink.create(tmp_path / "ring")
    e = Engine()
    e.configure(receiving_graph(tmp_path / "ring", ("poller", Poller)))
    run_until_received(e, tmp_path / "ring", 500)
    assert average_nap_us(e) <= MAX_SLEEP_US
    e.stop()


def test_with_interlinks_to_wake_it_an_engine_doubles_its_naps(tmp_path):
    interlink.create(tmp_path / "ring")
    e = Engine()
    e.configure(receiving_graph(tmp_path / "ring", ("poller", Poller)))
    e.main(done=lambda: e.naps >= 10)
    assert e.nap_us == 1 + 2 + 4 + 8 + 16 + 32 + 64 + 3 * MAX_SLEEP_US  # not 1 + 2 + ... + 10
    e.stop()


def test_a_timer_bounds_the_sleep(tmp_path):
    interlink.create(tmp_path / "ring")
    e = Engine(tick_hz=1000)
    e.configure(receiving_graph(tmp_path / "ring", ("ticking", Ticking)))
    e.main(done=lambda: e.naps >= 20)
    assert MAX_SLEEP_US < average_nap_us(e) <= 1000 < MAX_WAIT_US
    e.stop()


def test_a_busywaiting_engine_never_sleeps_on_its_interlinks(tmp_path):
    interlink.create(tmp_path / "ring")
    e = Engine(busywait=True)
    e.configure(receiving_graph(tmp_path / "ring"))
    e.main(done=lambda: e.breaths >= 1000)
    assert e.naps == 0
    e.stop()


def test_taking_packets_off_a_link_is_progress():
    """A breath that only freed packets made room upstream: not idle."""
    link = Link("l")
    fill(link, [b"a", b"b", b"c"])
    before = lib.link_progress()
    lib.link_free_all(link.c)
    assert lib.link_progress() == before + 3
