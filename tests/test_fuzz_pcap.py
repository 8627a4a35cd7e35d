"""Coverage-guided fuzzing of the capture-file readers: the PcapReader
app's C classic and pcapng readers and the writer after them
(tests/fuzz/fuzz_pcap_read.c), and lib/pcap.py and lib/pcapng.py
(tests/fuzz/fuzz_pcap.py, atheris)."""

from __future__ import annotations

from fuzz_helpers import fuzz


def test_fuzz_pcap_record_reader():
    fuzz("pcap_read")


def test_fuzz_pcap_lib():
    fuzz("pcap")
