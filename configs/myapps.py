"""An example of a user's own apps, written against the link and packet API.

Name them in a graph as ``class: myapps:MacSwap`` (modules next to the YAML
file are found)."""

from snabbpy.core import packet
from snabbpy.core.app import App, Param


class MacSwap(App):
    """Swaps the Ethernet destination and source addresses of every packet
    (a reflector), and frees packets too short to be Ethernet frames."""

    inputs, outputs = ("input",), ("output",)
    link_types = (1,)  # parses Ethernet frames (core/linktypes.py)
    counters = ("swapped", "runts")

    def push(self):
        i, o = self.input["input"], self.output["output"]
        receive, transmit, free, view = i.receive, o.transmit, packet.free, packet.view
        swapped = runts = 0
        for _ in range(min(i.nreadable(), o.nwritable())):
            p = receive()
            if p.length < 14:
                free(p)
                runts += 1
                continue
            mac = view(p, 12)
            t = mac.tobytes()
            mac[0:12] = t[6:12] + t[0:6]
            transmit(p)
            swapped += 1
        self.stats.add("swapped", swapped)
        self.stats.add("runts", runts)


class SizeFilter(App):
    """Passes packets of at least ``min_size`` bytes, counts the others."""

    inputs, outputs = ("input",), ("output",)
    config = {"min_size": Param(int, default=64)}
    counters = ("passed", "dropped")

    def __init__(self, conf):
        self.min_size = conf["min_size"]

    def push(self):
        i, o = self.input["input"], self.output["output"]
        receive, transmit, free = i.receive, o.transmit, packet.free
        min_size, dropped, n = self.min_size, 0, min(i.nreadable(), o.nwritable())
        for _ in range(n):
            p = receive()
            if p.length >= min_size:
                transmit(p)
            else:
                free(p)
                dropped += 1
        self.stats.add("passed", n - dropped)
        self.stats.add("dropped", dropped)
