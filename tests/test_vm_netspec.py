"""--net spec parsing and the QEMU arguments each spec becomes."""

import pytest

from snabbpy.vm.netspec import NetSpecError, parse_net, pci_address, qemu_args


def test_vhost_user_client_with_queue_and_mode():
    spec = parse_net("vhost-user:/tmp/vu.sock,queue=1024,mode=modern")
    assert (spec.kind, spec.target, spec.server, spec.queue, spec.mode) == (
        "vhost-user", "/tmp/vu.sock", False, 1024, "modern")
    assert spec.needs_shared_memory
    assert qemu_args(spec, 0) == [
        "-chardev", "socket,id=chr0,path=/tmp/vu.sock",
        "-netdev", "vhost-user,id=net0,chardev=chr0",
        "-device", "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x5,"
        "rx_queue_size=1024,tx_queue_size=1024,disable-legacy=on",
    ]


def test_vhost_user_with_queue_pairs_turns_mq_on():
    args = qemu_args(parse_net("vhost-user:/tmp/vu.sock,queues=2"), 0)
    assert args[3] == "vhost-user,id=net0,chardev=chr0,queues=2"
    assert args[-1] == "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x5,mq=on,vectors=6"
    for bad in ("queues=0", "queues=9", "queues=two"):
        with pytest.raises(NetSpecError, match="queues= must be 1 to 8"):
            parse_net(f"vhost-user:/tmp/vu.sock,{bad}")


def test_vhost_user_server_legacy():
    args = qemu_args(parse_net("vhost-user:/run/x.sock,server,mode=legacy"), 1)
    assert "socket,id=chr1,path=/run/x.sock,server=on" in args
    assert args[-1] == "virtio-net-pci,netdev=net1,bus=pci.0,addr=0x6,disable-modern=on"


def test_packed_on_offers_packed_virtqueues():
    args = qemu_args(parse_net("vhost-user:/run/x.sock,packed=on"), 0)
    assert args[-1] == "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x5,packed=on"
    assert not parse_net("vhost-user:/run/x.sock,packed=off").packed
    with pytest.raises(NetSpecError, match="packed= must be on or off"):
        parse_net("vhost-user:/run/x.sock,packed=yes")


def test_socket_forms_use_loopback_only():
    assert parse_net("socket:listen=9000").socket == {"listen": "127.0.0.1:9000"}
    assert parse_net("socket:connect=127.0.0.1:9000").socket == {"connect": "127.0.0.1:9000"}
    udp = parse_net("socket:udp=9001,localaddr=9002")
    assert qemu_args(udp, 0)[:2] == [
        "-netdev", "socket,id=net0,udp=127.0.0.1:9001,localaddr=127.0.0.1:9002"]
    assert not udp.needs_shared_memory


def test_tap_with_mac():
    args = qemu_args(parse_net("tap:vtap0,mac=52:54:00:12:34:56"), 0)
    assert args[:2] == ["-netdev", "tap,id=net0,ifname=vtap0,script=no,downscript=no,vhost=off"]
    assert args[-1].endswith(",mac=52:54:00:12:34:56")


def test_transitional_is_the_default_and_adds_nothing():
    assert qemu_args(parse_net("tap:t0"), 0)[-1] == "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x5"


def test_pci_addresses_are_fixed_from_slot_5():
    assert [pci_address(i) for i in range(3)] == ["0000:00:05.0", "0000:00:06.0", "0000:00:07.0"]


@pytest.mark.parametrize("text, fragment", [
    ("vhost-user", "expected KIND:ARGS"),
    ("ether:x", "unknown kind 'ether'"),
    ("vhost-user:,server", "needs a socket PATH"),
    ("vhost-user:/s,queue=300", "queue= must be 256, 512 or 1024"),
    ("vhost-user:/s,queue=2048", "queue= must be 256, 512 or 1024"),
    ("vhost-user:/s,mode=fast", "mode= must be one of legacy, transitional, modern"),
    ("vhost-user:/s,bogus", "unknown option 'bogus'"),
    ("socket:listen=0.0.0.0:9000", "must use 127.0.0.1"),
    ("socket:connect=10.0.0.1:80", "must use 127.0.0.1"),
    ("socket:listen=http", "needs a port number"),
    ("socket:listen=1,connect=2", "exactly one of"),
    ("socket:queue=256", "exactly one of"),
    ("socket:udp=9001", "udp= and localaddr= go together"),
    ("tap:", "expected KIND:ARGS"),
    ("tap:name=x", "needs an interface NAME"),
])
def test_bad_specs_say_what_is_wrong(text, fragment):
    with pytest.raises(NetSpecError, match="--net") as info:
        parse_net(text)
    assert fragment in str(info.value)


def test_too_many_devices():
    with pytest.raises(NetSpecError, match="too many --net devices"):
        qemu_args(parse_net("tap:t0"), 11)
