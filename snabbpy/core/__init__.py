"""The core: packets, links, the engine, configuration, counters, DMA memory."""

#: This package's C parts for snabbpy._native: (header, source), either may be
#: None, relative to this directory, in the order C must see them.
#: native_build.py reads this list without importing the package.
C_PARTS = [("dma.h", "dma.c"), ("packet.h", "packet.c"), ("link.h", "link.c"),
           ("batch.h", "batch.c"),
           ("batch_switch.h", "batch_switch.c"), ("interlink.h", "interlink.c")]
