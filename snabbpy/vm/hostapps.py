"""Host-side apps for talking to a guest in the VM lab.

``Responder`` stands beside the host end of a guest's virtio-net port (a
``vhost.VhostUser``): it passes on what the guest sends (to a capture,
say) and, once the guest's first packet shows that the guest driver is up,
sends it a bounded number of numbered frames — the ones
``snabbpy selftest apps.vguest --pci ADDR --expect-rx M`` checks. Waiting
for the guest matters: a vhost-user device drops what it is given before
the guest's queues are ready, and after that it leaves packets on the link
while the guest has no free buffers, so nothing is lost.

DIAGRAM: Responder
          +-----------+
  input ->| Responder |-> output   (what the guest sent, passed on)
          |           |-> reply    (count numbered frames for the guest)
          +-----------+

    apps:
      vhost: {class: vhost.VhostUser, config: {socket_path: /tmp/vm.sock}}
      answer: {class: "snabbpy.vm.hostapps:Responder", config: {count: 1000}}
      pcap: {class: pcap.PcapWriter, config: {path: /tmp/from-guest.pcap}}
    links:
      - vhost.output -> answer.input
      - answer.output -> pcap.input
      - answer.reply -> vhost.input
"""

from __future__ import annotations

from snabbpy.core import packet
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.core.native import lib
from snabbpy.testing.frames import Frames


class Responder(App):
    """Passes the guest's packets on; after the first, sends ``count``
    numbered frames of ``size`` bytes on ``reply``."""

    config = {
        "count": Param(int, default=0, doc="frames to send to the guest"),
        "size": Param(int, default=60, doc="frame size in bytes (18..10240)"),
    }
    counters = ("from_guest", "to_guest")

    def __init__(self, conf: dict) -> None:
        if conf["count"] < 0:
            raise ConfigError("count: must be 0 or more")
        if not 18 <= conf["size"] <= packet.PAYLOAD_SIZE:
            raise ConfigError(f"size: {conf['size']} is outside 18..{packet.PAYLOAD_SIZE}")
        self.left, self.seq, self.frames = conf["count"], 0, Frames(conf["size"])
        self.guest_seen = False

    def push(self) -> None:
        link = self.input.get("input")
        if link is not None and not link.empty():
            self.guest_seen = True
            n = link.nreadable()
            self.stats.add("from_guest", n)
            out = self.output.get("output")
            for _ in range(n):
                p = link.receive()
                if out is not None:
                    out.transmit(p)
                else:
                    packet.free(p)
        self._reply()

    def _reply(self) -> None:
        out = self.output.get("reply")
        if out is None or not self.guest_seen or not self.left:
            return
        n = min(self.left, out.nwritable(), lib.LINK_MAX_PACKETS)
        for _ in range(n):
            out.transmit(packet.from_bytes(self.frames.get(self.seq)))
            self.seq += 1
        self.left -= n
        self.stats.add("to_guest", n)
