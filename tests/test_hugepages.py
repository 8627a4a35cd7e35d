"""Hugepage DMA memory with physical addresses (what PCI devices need).

Needs root and reserved hugepages: the test reserves a few itself (as root)
and gives them back. It runs in a child process, because a process picks
its kind of DMA memory once, before any packet exists."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from snabbpy.core import config, hugepages, memory
from snabbpy.core.config import ConfigError
from snabbpy.core.engine import Engine

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")


@pytest.fixture
def reserved_hugepages():
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("hugepage tests need root in CI")
        pytest.skip("hugepage tests need root")
    before = int(NR_HUGEPAGES.read_text())
    NR_HUGEPAGES.write_text(str(before + 64))
    yield
    NR_HUGEPAGES.write_text(str(before))


CHILD = textwrap.dedent("""
    from snabbpy.core import hugepages, memory, packet
    from snabbpy.core.native import ffi
    memory.set_backend(hugepages.HugepageBackend())
    ps = [packet.allocate() for _ in range(3000)]   # several pages' worth
    stride = ffi.sizeof("struct packet")
    for p in ps:
        a = int(ffi.cast("uintptr_t", p))
        # never across a hugepage: the device sees it as one contiguous buffer
        assert a // hugepages.HUGEPAGE_SIZE == (a + stride - 1) // hugepages.HUGEPAGE_SIZE
        # the translation table agrees with the kernel's page map
        assert memory.dma.dma_address(a) == hugepages.physical_address(a), hex(a)
    for p in ps:
        packet.free(p)
    print("pages", sum(len(c.pieces) for c in memory.dma.chunks))
""")


def test_packets_get_physical_addresses_page_by_page(reserved_hugepages):
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[1]) >= 16


def test_without_hugepages_the_error_says_how_to_reserve_them(monkeypatch):
    def no_hugepages(*args, **kw):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(hugepages.reservation, "map", no_hugepages)
    with pytest.raises(hugepages.HugepageError, match="nr_hugepages"):
        hugepages.HugepageBackend().new_chunk(1)


def test_an_app_asking_for_hugepages_after_packets_exist_is_a_config_error():
    class PciLike:
        @classmethod
        def dma_backend(cls, conf):
            return hugepages.HugepageBackend()

        def __init__(self, conf):
            pass

    memory.dma.allocate(64)  # this process already uses memfd memory
    c = config.new()
    config.app(c, "nic", PciLike)
    with pytest.raises(ConfigError, match="app 'nic': DMA memory is already in use"):
        Engine().configure(c)
