"""Protocol and format code with no engine in it (pcap, BPF, PCI, virtio, vhost-user)."""

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [("bpf.h", "bpf.c")]
