"""PcapFilter: passes the packets a pcap-filter (tcpdump) expression selects."""

from __future__ import annotations

from snabbpy.core import linktypes
from snabbpy.core.app import App, Param
from snabbpy.core.config import ConfigError
from snabbpy.lib import bpf, bpf_codegen


class PcapFilter(App):
    """Sends the packets of ``input`` that match ``filter`` on ``output``;
    the others go to the ``rejected`` output when it is linked and are
    freed otherwise. Counters: ``passed``, ``rejected``.

    libpcap compiles the expression for ``linktype`` (Ethernet by default)
    when the app starts; the program runs in C over each whole link: as C
    translated from it and compiled (``codegen``, the default; cached) or
    in the BPF interpreter (without a C compiler, or ``codegen: false``)."""

    config = {
        "filter": Param(str, doc="pcap-filter expression, e.g. 'tcp port 80'"),
        "linktype": Param(None, default="EN10MB",
                          doc="link type of the packets: a DLT name or number"),
        "codegen": Param(bool, default=True,
                         doc="run the program as compiled C (else interpret it)"),
    }
    inputs, outputs = ("input",), ("output", "rejected")
    counters = ("passed", "rejected")

    def __init__(self, conf: dict) -> None:
        try:
            self.program = bpf.compile_expression(conf["filter"], conf["linktype"])
            #: The link type it parses (core/linktypes.py): the one it compiled for.
            self.link_types = (linktypes.from_dlt(bpf.linktype_value(conf["linktype"])),)
        except bpf.BpfError as exc:
            raise ConfigError(f"PcapFilter: {exc}") from None
        self.how = "interpreted"
        if conf["codegen"]:
            try:
                self.program.use_codegen()
                self.how = "compiled to C"
            except bpf_codegen.CodegenError as exc:
                self.how = f"interpreted ({exc})"
        self._counts = self.stats.pointer + self.stats.index["passed"]
        self._in = self._out = self._rejected = None

    def link(self) -> None:
        """Caches the ports: ``input``, ``output``, optional ``rejected``."""
        self._in = _port(self.input, "input")
        self._out = _port(self.output, "output")
        rejected = self.output.get("rejected")
        self._rejected = rejected.c if rejected is not None else None

    def push(self) -> None:
        """Filters the whole input link in one native call."""
        if self._in is not None and self._out is not None:
            self.program.filter_link(self._in, self._out, self._rejected, self._counts)

    def report(self) -> str:
        """The expression and how it runs."""
        size = len(self.program)
        return f"filter {self.program.expression!r}: {size} BPF instructions, {self.how}"


def _port(ports: dict, name: str):
    link = ports.get(name)
    return link.c if link is not None else None
