"""The two ways a BPF program runs, the C interpreter (bpf.c) and C
translated from the program (bpf_codegen), agree on random valid programs
over random packets: loads past the end, division by a zero X, shifts,
scratch memory and every jump."""

import random

from snabbpy.lib import bpf
from snabbpy.lib.bpf import Insn

RET_A, RET_K = 0x16, 0x06


def random_program(rnd, length: int) -> list[Insn]:
    """A random program that passes validate(): any opcode, in-range jumps,
    loads near and far past the packet's end."""
    insns = []
    for pc in range(length - 1):
        code = rnd.choice(sorted(bpf.OPCODES - {RET_K, RET_A}))
        room = length - 2 - pc
        k = rnd.choice([0, 1, 2, 12, 14, 23, 40, 63, 0xFFFFFFFF, rnd.randrange(1 << 32)])
        if code in (0x60, 0x61, 0x02, 0x03):
            k = rnd.randrange(16)
        elif code in (0x34, 0x94):
            k = k or 3
        elif code in (0x64, 0x74):
            k %= 32
        elif code == 0x05:
            k = rnd.randint(0, room)
        insns.append(Insn(code, rnd.randint(0, room), rnd.randint(0, room), k))
    insns.append(Insn(rnd.choice([RET_K, RET_A]), 0, 0, rnd.choice([0, 1, 0xFFFF])))
    return insns


def test_compiled_c_and_the_interpreter_agree_on_random_programs(tmp_path, monkeypatch):
    # Differential: random (valid, often absurd) programs over random
    # packets, interpreted and compiled, must return the same values.
    monkeypatch.setenv("SNABBPY_CACHE_DIR", str(tmp_path))
    rnd = random.Random(7)
    packets = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 80)))
               for _ in range(100)]
    for _ in range(40):
        insns = random_program(rnd, rnd.randint(2, 24))
        interpreted, compiled_c = bpf.Filter(insns), bpf.Filter(insns)
        compiled_c.use_codegen()
        for p in packets:
            assert interpreted.run(p) == compiled_c.run(p), (insns, p.hex())


def test_the_filter_selftest_passes_both_ways(tmp_path):
    import os
    import subprocess

    from helpers import SNABBPY, need_libpcap

    need_libpcap()
    r = subprocess.run([*SNABBPY, "selftest", "apps.filter"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, SNABBPY_CACHE_DIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "compiled to C: ok" in r.stdout and "interpreted: ok" in r.stdout
