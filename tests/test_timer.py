"""Timers run on the engine's clock, so tests drive them exactly."""

from snabbpy.core.timer import Timer, Timers


def test_a_timer_runs_once_when_due():
    runs = []
    t = Timers()
    t.activate(Timer(name="once", fn=lambda: runs.append(1), delay_ns=100), now=0)
    assert t.run_due(99) == 0
    assert t.run_due(100) == 1
    assert t.run_due(1000) == 0
    assert runs == [1]


def test_a_repeating_timer_keeps_its_period_without_bursts():
    runs = []
    t = Timers()
    t.activate(Timer(fn=lambda: runs.append(1), delay_ns=10, repeating=True), now=0)
    for now in range(0, 101):
        t.run_due(now)
    assert len(runs) == 10
    t.run_due(10_000)  # a long pause runs it once, not a thousand times
    assert len(runs) == 11


def test_timers_run_in_due_order_and_cancelled_ones_never():
    order = []
    t = Timers()
    t.activate(Timer(name="b", fn=lambda: order.append("b"), delay_ns=20), now=0)
    t.activate(Timer(name="a", fn=lambda: order.append("a"), delay_ns=10), now=0)
    c = t.activate(Timer(name="c", fn=lambda: order.append("c"), delay_ns=5), now=0)
    c.cancel()
    t.run_due(100)
    assert order == ["a", "b"]
    assert t.next_due() is None
