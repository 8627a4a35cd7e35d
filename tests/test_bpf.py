"""snabbpy.lib.bpf: libpcap's compiler through cffi, the program checker,
the native interpreter on hostile programs and packets, the numpy mask,
and PcapFilter's configuration (exit 2 from the CLI on a bad expression)."""

import subprocess

import numpy as np
import pytest
from helpers import SNABBPY, drain, fill, need_libpcap, wire

from snabbpy.apps.filter import PcapFilter
from snabbpy.core import config, packet
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine
from snabbpy.core.link import Link
from snabbpy.lib import bpf
from snabbpy.lib.bpf import Insn

RET_A, RET_K = 0x16, 0x06
ETH_IP_TCP80 = (bytes(12) + b"\x08\x00" + bytes.fromhex("45000028000000004006000001020304c0a80001")
                + bytes.fromhex("1234005000000000000000005002000000000000"))


@pytest.fixture(params=["interpreter", "codegen"], autouse=True)
def mode(request, tmp_path_factory, monkeypatch):
    """Every test runs with programs interpreted, then compiled to C."""
    monkeypatch.setenv("SNABBPY_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    global CODEGEN
    CODEGEN = request.param == "codegen"
    return request.param


CODEGEN = False


def prog(*insns) -> bpf.Filter:
    f = bpf.Filter([Insn(*i) for i in insns])
    if CODEGEN:
        f.use_codegen()
        assert f.compiled
    return f


def compiled(expression: str, linktype="EN10MB") -> bpf.Filter:
    need_libpcap()
    return bpf.compile_expression(expression, linktype, codegen=CODEGEN)


def test_libpcap_compiles_an_expression_into_a_checked_program():
    f = compiled("tcp port 80 and not src net 10.0.0.0/8")
    assert f.expression.startswith("tcp port 80")
    assert len(f) > 5 and f.insns[-1].code in (RET_A, RET_K)
    assert f.matches(ETH_IP_TCP80)
    assert not f.matches(ETH_IP_TCP80[:14 + 20 + 2])  # the port lies past the end


def test_libpcap_message_names_the_fault():
    need_libpcap()
    with pytest.raises(bpf.BpfError, match=r"filter 'tcp prot 80': .*syntax error"):
        bpf.compile_expression("tcp prot 80")
    with pytest.raises(bpf.BpfError, match="NUL"):
        bpf.compile_expression("tcp\0")
    with pytest.raises(bpf.BpfError, match="no such link type"):
        bpf.compile_expression("tcp", "NOT_A_DLT")


def test_link_types_by_name_and_number():
    need_libpcap()
    raw = compiled("tcp port 80", "RAW")
    assert raw.matches(ETH_IP_TCP80[14:]) and not raw.matches(ETH_IP_TCP80)
    assert bpf.linktype_value("DLT_EN10MB") == bpf.linktype_value(1) == 1
    with pytest.raises(bpf.BpfError, match="out of range"):
        bpf.linktype_value(1 << 20)


@pytest.mark.parametrize("insns,message", [
    ([], "0 instructions"),
    ([(RET_K, 0, 0, 0)] * 4097, "4097 instructions"),
    ([(0xFF, 0, 0, 0), (RET_K, 0, 0, 0)], "unknown opcode"),
    ([(0x05, 0, 0, 1), (RET_K, 0, 0, 0)], "jump past the end"),
    ([(0x15, 1, 0, 0), (RET_K, 0, 0, 0)], "jump past the end"),
    ([(0x15, 0, 5, 0), (RET_K, 0, 0, 0)], "jump past the end"),
    ([(0x60, 0, 0, 16), (RET_K, 0, 0, 0)], "scratch cell 16"),
    ([(0x02, 0, 0, 99), (RET_K, 0, 0, 0)], "scratch cell 99"),
    ([(0x34, 0, 0, 0), (RET_K, 0, 0, 0)], "division by zero"),
    ([(0x94, 0, 0, 0), (RET_K, 0, 0, 0)], "division by zero"),
    ([(0x64, 0, 0, 32), (RET_K, 0, 0, 0)], "shift by 32"),
    ([(0x00, 0, 0, 1)], "last instruction is not a return"),
    ([(0x00, 0, 0, 1 << 32), (RET_K, 0, 0, 0)], "field out of range"),
])
def test_hostile_programs_are_refused(insns, message):
    with pytest.raises(bpf.BpfError, match=message):
        prog(*insns)


def test_loads_past_the_end_reject_as_the_kernel_does():
    word = prog((0x20, 0, 0, 6), (RET_K, 0, 0, 1))          # ld [6]
    assert word.run(bytes(10)) == 1 and word.run(bytes(9)) == 0
    half = prog((0x28, 0, 0, 8), (RET_K, 0, 0, 1))          # ldh [8]
    assert half.run(bytes(10)) == 1 and half.run(bytes(9)) == 0
    byte = prog((0x30, 0, 0, 9), (RET_K, 0, 0, 1))          # ldb [9]
    assert byte.run(bytes(10)) == 1 and byte.run(bytes(9)) == 0
    # Indirect: X + k overflowing 32 bits must not wrap to the start.
    ind = prog((0x01, 0, 0, 0xFFFFFFFF), (0x50, 0, 0, 1), (RET_K, 0, 0, 1))
    assert ind.run(bytes(100)) == 0
    msh = prog((0xB1, 0, 0, 5), (RET_K, 0, 0, 1))           # ldxb 4*([5]&0xf)
    assert msh.run(bytes(6)) == 1 and msh.run(bytes(5)) == 0
    assert prog((RET_K, 0, 0, 7)).run(b"") == 7


def test_arithmetic_division_by_x_and_scratch_memory():
    # A = len; X = 0; A /= X  -> rejects instead of trapping
    assert prog((0x80, 0, 0, 0), (0x01, 0, 0, 0), (0x3C, 0, 0, 0), (RET_K, 0, 0, 1)).run(b"ab") == 0
    assert prog((0x80, 0, 0, 0), (0x01, 0, 0, 0), (0x9C, 0, 0, 0), (RET_K, 0, 0, 1)).run(b"ab") == 0
    # M[3] = 40; X = M[3]; A = 2; A = A*X + 2 -> 82, via txa/tax round trip
    p = prog((0x00, 0, 0, 40), (0x02, 0, 0, 3), (0x61, 0, 0, 3), (0x00, 0, 0, 2),
             (0x2C, 0, 0, 0), (0x04, 0, 0, 2), (0x07, 0, 0, 0), (0x87, 0, 0, 0), (RET_A, 0, 0, 0))
    assert p.run(b"") == 82
    # shifts by X of 32 or more give 0, never undefined behaviour
    assert prog((0x00, 0, 0, 1), (0x01, 0, 0, 40), (0x6C, 0, 0, 0), (RET_A, 0, 0, 0)).run(b"") == 0
    # jset / jgt / jeq with both branches
    jset = prog((0x30, 0, 0, 0), (0x45, 0, 1, 2), (RET_K, 0, 0, 9), (RET_K, 0, 0, 0))
    assert jset.run(b"\x02") == 9 and jset.run(b"\x01") == 0


def test_match_gives_a_mask_over_any_uint8_array():
    f = compiled("tcp dst port 80")
    other = ETH_IP_TCP80[:36] + b"\x01\xbb" + ETH_IP_TCP80[38:]
    mem = np.frombuffer(ETH_IP_TCP80 + other + ETH_IP_TCP80, dtype=np.uint8).copy()
    n = len(ETH_IP_TCP80)
    offsets = np.array([0, n, 2 * n, 2 * n, 3 * n - 4, -1], dtype=np.int64)
    lengths = np.array([n, n, n, 30, 8, 5], dtype=np.int64)
    mask = f.match(mem, offsets, lengths)
    assert mask.dtype == np.bool_
    # a short view does not match; views reaching outside mem never do
    assert mask.tolist() == [True, False, True, False, False, False]
    assert f.match(mem, [], []).tolist() == []
    with pytest.raises(TypeError):
        f.match(mem.astype(np.int16), [0], [1])
    with pytest.raises(ValueError):
        f.match(mem, [0, 1], [1])


def test_pcapfilter_passes_counts_and_optionally_rejects():
    need_libpcap()
    other = ETH_IP_TCP80[:36] + b"\x01\xbb" + ETH_IP_TCP80[38:]
    app = wire(PcapFilter({"filter": "tcp port 80", "linktype": "EN10MB",
                                "codegen": CODEGEN}),
               ["input"], ["output"])
    fill(app.input["input"], [ETH_IP_TCP80, other, ETH_IP_TCP80])
    app.push()
    assert drain(app.output["output"]) == [ETH_IP_TCP80, ETH_IP_TCP80]
    assert app.stats.snapshot() == {"passed": 2, "rejected": 1}
    both = wire(PcapFilter({"filter": "not tcp port 80", "linktype": 1,
                                "codegen": CODEGEN}),
                ["input"], ["output", "rejected"])
    fill(both.input["input"], [ETH_IP_TCP80, other])
    both.push()
    assert drain(both.output["output"]) == [other]
    assert drain(both.output["rejected"]) == [ETH_IP_TCP80]


def test_an_invalid_expression_is_a_config_error_naming_the_app():
    need_libpcap()
    c = config.new()
    config.app(c, "web", "filter.PcapFilter", {"filter": "tcp port 99999"})
    with pytest.raises(ConfigError, match=r"app 'web': PcapFilter: filter 'tcp port 99999': "
                                          r"illegal port number 99999"):
        Engine().configure(c)


def test_the_cli_exits_2_on_an_invalid_expression(tmp_path):
    need_libpcap()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""
apps:
  src: {class: basic.Source}
  web: {class: filter.PcapFilter, config: {filter: "ip and and tcp"}}
  sink: {class: basic.Sink}
links:
  - src.output -> web.input
  - web.output -> sink.input
""")
    r = subprocess.run([*SNABBPY, "run", str(cfg), "--duration", "1"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert "app 'web': PcapFilter: filter 'ip and and tcp': " in r.stderr
    assert "syntax error" in r.stderr


def test_codegen_is_cached_by_content_and_says_how_it_runs(tmp_path, monkeypatch):
    need_libpcap()
    from snabbpy.lib import bpf_codegen

    monkeypatch.setenv("SNABBPY_CACHE_DIR", str(tmp_path))
    a = bpf.compile_expression("udp port 53", codegen=True)
    b = bpf.compile_expression("udp port 53", codegen=True)
    assert a.compiled and int(bpf.native_ffi.cast("uintptr_t", a.fn)) == int(
        bpf.native_ffi.cast("uintptr_t", b.fn))
    assert len(list((tmp_path / "bpf").glob("*.so"))) == 1
    assert "A = ld16(P + 12ULL)" in bpf_codegen.translate(a.insns)
    app = PcapFilter({"filter": "udp port 53", "linktype": 1, "codegen": True})
    assert app.report().endswith("compiled to C")
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(bpf_codegen.sysconfig, "get_config_var", lambda name: None)
    slow = PcapFilter({"filter": "udp port 54", "linktype": 1, "codegen": True})
    assert not slow.program.compiled
    assert "interpreted (no C compiler found" in slow.report()


def test_an_unwritable_cache_falls_back_to_the_interpreter(tmp_path, monkeypatch):
    need_libpcap()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SNABBPY_CACHE_DIR", str(blocker))
    app = PcapFilter({"filter": "udp port 55", "linktype": 1, "codegen": True})
    assert not app.program.compiled
    assert "interpreted (cannot build or load" in app.report()



def test_the_filter_masks_a_batch_received_from_a_link():
    """The batch API and PcapFilter share one compiled program: a mask over a
    Batch selects the matching packets, the rest are freed."""
    f = compiled("tcp dst port 80")
    https = ETH_IP_TCP80[:36] + b"\x01\xbb" + ETH_IP_TCP80[38:]
    l, out = Link(), Link()
    for frame in (ETH_IP_TCP80, https, ETH_IP_TCP80, https[:20]):
        l.transmit(packet.from_bytes(frame))
    b = l.receive_batch()
    mask = f.match(packet.memory(), b.offsets, b.lengths)
    assert mask.tolist() == [True, False, True, False]
    b.free(~mask)
    b.transmit(out)
    assert drain(out) == [ETH_IP_TCP80, ETH_IP_TCP80]
