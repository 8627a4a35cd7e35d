"""The QEMU command line for a lab guest."""

from pathlib import Path

from snabbpy.vm.initramfs import Share
from snabbpy.vm.netspec import parse_net
from snabbpy.vm.qemu import VMConfig, build_command


def config(**kw):
    return VMConfig(kernel=Path("/c/vmlinuz"), initrd=Path("/t/initrd"), **kw)


def option_values(argv, name):
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_tcg_guest_basics():
    argv = build_command(config(memory_mib=512, cpus=2), qemu="qemu")
    assert argv[0] == "qemu"
    assert option_values(argv, "-machine") == ["pc,accel=tcg"]
    assert option_values(argv, "-cpu") == ["max"]
    assert option_values(argv, "-smp") == ["2"]
    assert option_values(argv, "-m") == ["512M"]
    assert {"-nodefaults", "-no-reboot"} <= set(argv)
    assert option_values(argv, "-kernel") == ["/c/vmlinuz"]
    assert option_values(argv, "-initrd") == ["/t/initrd"]
    append = option_values(argv, "-append")[0]
    assert "console=ttyS0" in append and "rdinit=/init" in append and "panic=-1" in append
    assert "-object" not in argv  # no shared memory unless a backend needs it


def test_kvm_uses_host_cpu_without_arch_capabilities():
    argv = build_command(config(accel="kvm"))
    assert option_values(argv, "-machine") == ["pc,accel=kvm"]
    assert option_values(argv, "-cpu") == ["host,-arch-capabilities"]


def test_host_root_is_a_read_only_9p_export_at_slot_3():
    argv = build_command(config())
    assert option_values(argv, "-fsdev")[0].startswith("local,id=fsroot,path=/,readonly=on")
    assert ("virtio-9p-pci,fsdev=fsroot,mount_tag=hostroot,bus=pci.0,addr=0x3"
            in option_values(argv, "-device"))


def test_shares_are_read_write_exports_from_slot_16():
    argv = build_command(config(shares=[Share("share0", "/work/out")]))
    fsdevs = option_values(argv, "-fsdev")
    assert fsdevs[1].startswith("local,id=fs0,path=/work/out,")
    assert "readonly" not in fsdevs[1]
    assert ("virtio-9p-pci,fsdev=fs0,mount_tag=share0,bus=pci.0,addr=0x10"
            in option_values(argv, "-device"))


def test_vhost_user_gets_shared_memfd_memory():
    argv = build_command(config(memory_mib=2048, nets=[parse_net("vhost-user:/s.sock")]))
    assert option_values(argv, "-object") == [
        "memory-backend-memfd,id=mem,size=2048M,share=on"]
    assert option_values(argv, "-numa") == ["node,memdev=mem"]


def test_socket_net_devices_follow_in_order():
    nets = [parse_net("socket:listen=9000"), parse_net("tap:t1")]
    devices = option_values(build_command(config(nets=nets)), "-device")
    assert devices[-2:] == [
        "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x5",
        "virtio-net-pci,netdev=net1,bus=pci.0,addr=0x6",
    ]


def test_shared_memory_can_be_forced():
    assert "-object" in build_command(config(shared_memory=True))


def test_verbose_keeps_the_kernel_log():
    append = option_values(build_command(config(verbose=True)), "-append")[0]
    assert "quiet" not in append
