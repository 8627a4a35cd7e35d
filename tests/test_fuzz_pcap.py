"""Coverage-guided fuzzing of the classic-pcap readers: the PcapReader
app's C record reader (tests/fuzz/fuzz_pcap_read.c) and lib/pcap.py
(tests/fuzz/fuzz_pcap.py, atheris)."""

from __future__ import annotations

from fuzz_helpers import fuzz


def test_fuzz_pcap_record_reader():
    fuzz("pcap_read")


def test_fuzz_pcap_lib():
    fuzz("pcap")
