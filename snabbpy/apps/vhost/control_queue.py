"""The device's control virtqueue: where a driver sets its queue pairs.

A multiqueue device (``queues`` above 1) has one more ring after its data
rings, index ``2 * pairs``. The frontend may hand it to us like any ring
(vguest with ``control_queue: true`` does); QEMU and DPDK's virtio_user
keep their guest's control queue to themselves and tell us the outcome
with SET_VRING_ENABLE instead. So the control queue gates the receive
queues only once it runs: from then on the device uses pair 0 alone until
a ``VQ_PAIRS_SET`` says more (virtio 1.x 5.1.6.5.5).

``serve(counters)`` answers every pending command, in the app's ``tick()``:
``VQ_PAIRS_SET`` with a valid count is acked OK, anything else ERR and
counted (``ctrl_errors``); a malformed chain is returned with length 0 and
counted by reason (``ctrl_bad_chains``, details in the ring's ``dr_stats``).
The ring is split or packed as negotiated (RING_PACKED): the commands and
their checks are the same, only the C that walks the ring differs.
"""

from __future__ import annotations

import logging

from snabbpy.core.native import ffi, lib
from snabbpy.lib.virtio import Feature, has_feature
from snabbpy.lib.virtio.net_ctrl import ERR, OK, Answer, CtrlError, answer_mq, decode

from .vring import Vring

log = logging.getLogger(__name__)

#: The app counters ``serve`` adds to.
COUNTERS = ("ctrl_commands", "ctrl_errors", "ctrl_bad_chains", "ctrl_pairs_set")


class ControlQueue:
    """The control ring of a device with ``max_pairs`` queue pairs."""

    def __init__(self, max_pairs: int) -> None:
        self.max_pairs = max_pairs
        self.stats = ffi.new("struct dr_stats *")
        self.vring = Vring(2 * max_pairs, self.stats)
        self._cmd = ffi.new("struct dr_ctrl_cmd *")
        self.pairs = 1  # in use, per the last VQ_PAIRS_SET (spec default: 1)
        self.last_error = ""

    def pairs_in_use(self) -> int:
        """Pairs the receive side may use: all of them while the frontend
        keeps the control queue to itself, else what the driver set."""
        return self.pairs if self.vring.started else self.max_pairs

    def reset(self) -> None:
        """A new connection: no command seen."""
        self.pairs = 1
        self.last_error = ""

    def serve(self, features: int, counters) -> int:
        """Answers the commands waiting on the ring; returns how many.
        ``counters`` is the app's ``Counters`` (``COUNTERS`` among them)."""
        q = self.vring.q
        take, complete = ((lib.pd_ctrl_take, lib.pd_ctrl_complete) if self.vring.packed
                          else (lib.dr_ctrl_take, lib.dr_ctrl_complete))
        done = 0
        while q.ready:
            taken = take(q, self._cmd)
            if taken == 0:
                break
            done += 1
            if taken < 0:
                counters.add("ctrl_bad_chains")
                self.last_error = "control queue: malformed chain returned unread"
            else:
                answer = self._answer(features)
                self._count(answer, counters)
                complete(q, self._cmd, answer.ack)
            self.vring.interrupt()
        return done

    def _answer(self, features: int) -> Answer:
        c = self._cmd
        kept = min(c.len, lib.DR_CTRL_MAX)
        try:
            cmd = decode(bytes(ffi.buffer(c.data, kept)), c.len)
        except CtrlError as e:
            return Answer(ERR, why=str(e))
        return answer_mq(cmd, self.max_pairs, has_feature(features, Feature.NET_MQ))

    def _count(self, answer: Answer, counters) -> None:
        counters.add("ctrl_commands")
        if answer.ack == OK:
            self.pairs = answer.pairs
            counters.add("ctrl_pairs_set")
        else:
            counters.add("ctrl_errors")
            self.last_error = answer.why
            log.info("control queue: answered ERR: %s", answer.why)
