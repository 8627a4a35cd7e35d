"""Split-ring layout: sizes and offsets for a queue size, and the C header."""

from pathlib import Path

import cffi
import pytest

from snabbpy.lib.virtio import constants as c
from snabbpy.lib.virtio import ring

VRING_H = Path(__file__).parent.parent / "snabbpy" / "lib" / "virtio" / "vring.h"


def test_part_sizes_for_a_256_entry_queue():
    assert ring.desc_table_size(256) == 256 * 16
    assert ring.avail_ring_size(256, event_idx=False) == 4 + 2 * 256
    assert ring.avail_ring_size(256, event_idx=True) == 4 + 2 * 256 + 2
    assert ring.used_ring_size(256, event_idx=False) == 4 + 8 * 256
    assert ring.used_ring_size(256, event_idx=True) == 4 + 8 * 256 + 2


def test_legacy_layout_puts_used_ring_on_next_page():
    layout = ring.legacy_layout(256)
    assert (layout.desc_offset, layout.avail_offset) == (0, 4096)
    # desc 4096 + avail 518 = 4614 -> next 4096 boundary is 8192
    assert layout.used_offset == 8192
    assert layout.total == 8192 + 6 + 8 * 256
    assert layout.used_event_offset == 4096 + 4 + 2 * 256
    assert layout.avail_event_offset == 8192 + 4 + 8 * 256


def test_legacy_layout_matches_qemu_size_formula():
    # vring_size() of the legacy spec: desc + avail (3+num u16) rounded up,
    # then used (3 u16 + num elements).
    for size in (1, 2, 64, 256, 1024, 32768):
        expected = ring.align_up(16 * size + 2 * (3 + size), 4096) + 2 * 3 + 8 * size
        assert ring.legacy_layout(size).total == expected


def test_modern_layout_is_compact_and_aligned():
    layout = ring.modern_layout(8, event_idx=False)
    assert (layout.desc_offset, layout.avail_offset) == (0, 128)
    assert layout.avail_size == 20
    assert layout.used_offset == 148  # 128 + 20, already 4-aligned
    assert layout.total == 148 + 4 + 64
    ring.check_modern_addresses(layout.desc_offset, layout.avail_offset, layout.used_offset)


def test_modern_layout_aligns_used_ring_to_four():
    layout = ring.modern_layout(1, event_idx=False)
    assert layout.avail_offset + layout.avail_size == 16 + 6  # ends on 2 mod 4
    assert layout.used_offset == 24


def test_misaligned_modern_address_is_named():
    with pytest.raises(ValueError, match="used ring address 0x1002 is not 4-byte aligned"):
        ring.check_modern_addresses(0x1000, 0x2000, 0x1002)


@pytest.mark.parametrize("bad", [0, 3, 100, 65536, -8, 1.0, True])
def test_invalid_queue_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="virtqueue size"):
        ring.check_queue_size(bad)


def test_largest_queue_size_is_accepted():
    assert ring.legacy_layout(32768).queue_size == 32768


def test_feature_names_for_logs():
    mask = c.feature_mask(c.Feature.VERSION_1, c.Feature.NET_MRG_RXBUF, 45)
    assert c.feature_names(mask) == ["NET_MRG_RXBUF", "VERSION_1", "bit45"]
    assert c.has_feature(mask, c.Feature.VERSION_1)
    assert not c.has_feature(mask, c.Feature.NET_CSUM)
    assert c.VHOST_USER_F_PROTOCOL_FEATURES == 30


def test_flag_values_match_the_spec():
    assert c.DescFlag.NEXT | c.DescFlag.WRITE == 3
    assert c.DeviceStatus.FEATURES_OK == 8 and c.DeviceStatus.FAILED == 128
    assert c.AvailFlag.NO_INTERRUPT == c.UsedFlag.NO_NOTIFY == 1


def test_vring_h_feeds_cffi_cdef_with_the_spec_layout():
    ffi = cffi.FFI()
    ffi.cdef(VRING_H.read_text())
    assert ffi.sizeof("struct vring_desc") == 16
    assert ffi.offsetof("struct vring_desc", "next") == 14
    assert ffi.sizeof("struct vring_used_elem") == 8
    assert ffi.offsetof("struct vring_used", "ring") == 4
    assert ffi.offsetof("struct vring_avail", "ring") == 4
    assert ffi.sizeof("struct virtio_net_hdr_mrg_rxbuf") == 12
    lib = ffi.dlopen(None)
    assert lib.VRING_DESC_F_WRITE == c.DescFlag.WRITE
    assert lib.VIRTIO_NET_HDR_GSO_ECN == c.NetHdrGso.ECN


def test_vring_h_agrees_with_python_layout():
    ffi = cffi.FFI()
    ffi.cdef(VRING_H.read_text())
    used = ffi.new("struct vring_used *")
    assert ffi.sizeof(used[0]) + 256 * ffi.sizeof("struct vring_used_elem") == ring.used_ring_size(
        256, event_idx=False
    )
