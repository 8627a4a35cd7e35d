"""Parse `--net` specs into QEMU netdev/device arguments for virtio-net-pci.

Forms (the first field picks the backend, the rest are common options):

    vhost-user:PATH[,server][,queues=N]  QEMU connects to PATH (or listens,
                                 with server); N queue pairs (mq=on)
    socket:listen=PORT           QEMU socket netdev, TCP listen on 127.0.0.1
    socket:connect=PORT          TCP connect to 127.0.0.1:PORT
    socket:udp=PORT,localaddr=PORT   UDP between 127.0.0.1 ports
    tap:NAME                     an existing or new tap interface, no scripts,
                                 vhost=off (QEMU's own virtio-net device model)

Common options: `queue=N` (virtqueue size, 256..1024, a power of two),
`mode=legacy|transitional|modern`, `mac=52:54:00:...`, `packed=on|off`
(offer packed virtqueues to the guest, QEMU's own default is off).

Devices sit on bus pci.0 at fixed slots from NET_FIRST_SLOT on, so the
guest program knows its address: the first --net is 0000:00:05.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NET_FIRST_SLOT = 0x05
NET_LAST_SLOT = 0x0F
MODES = {"legacy": "disable-modern=on", "transitional": "", "modern": "disable-legacy=on"}
LOOPBACK = "127.0.0.1"


class NetSpecError(ValueError):
    """A --net spec is malformed; the message says which part and why."""


@dataclass
class NetSpec:
    """One virtio-net-pci device and the QEMU netdev behind it."""

    kind: str  # "vhost-user", "socket" or "tap"
    target: str = ""  # socket path or tap name
    server: bool = False
    socket: dict[str, str] = field(default_factory=dict)
    queue: int | None = None
    mode: str = "transitional"
    mac: str | None = None
    packed: bool = False
    queues: int = 1  # vhost-user: queue pairs (above 1: mq=on)

    @property
    def needs_shared_memory(self) -> bool:
        """True when the backend maps guest memory (vhost-user)."""
        return self.kind == "vhost-user"


def parse_net(text: str) -> NetSpec:
    """Parse one --net spec, raising NetSpecError with a clear message."""
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise NetSpecError(
            f"--net {text!r}: expected KIND:ARGS, KIND one of vhost-user, socket, tap"
        )
    fields = rest.split(",")
    parsers = {"vhost-user": _vhost_user, "socket": _socket, "tap": _tap}
    if kind not in parsers:
        raise NetSpecError(f"--net {text!r}: unknown kind {kind!r}; use vhost-user, socket or tap")
    spec = NetSpec(kind=kind)
    for opt in parsers[kind](spec, fields, text):
        _common(spec, opt, text)
    return spec


def _vhost_user(spec: NetSpec, fields: list[str], text: str) -> list[str]:
    if not fields[0] or "=" in fields[0]:
        raise NetSpecError(f"--net {text!r}: vhost-user needs a socket PATH first")
    spec.target = fields[0]
    rest = []
    for opt in fields[1:]:
        key, sep, value = opt.partition("=")
        if opt == "server":
            spec.server = True
        elif key == "queues" and sep:
            if not value.isdigit() or not 1 <= int(value) <= 8:
                raise NetSpecError(f"--net {text!r}: queues= must be 1 to 8, got {value!r}")
            spec.queues = int(value)
        else:
            rest.append(opt)
    return rest


def _tap(spec: NetSpec, fields: list[str], text: str) -> list[str]:
    if not fields[0] or "=" in fields[0]:
        raise NetSpecError(f"--net {text!r}: tap needs an interface NAME first")
    spec.target = fields[0]
    return fields[1:]


def _socket(spec: NetSpec, fields: list[str], text: str) -> list[str]:
    rest = []
    for opt in fields:
        key, _, value = opt.partition("=")
        if key in ("listen", "connect", "udp", "localaddr"):
            spec.socket[key] = _loopback(value, key, text)
        else:
            rest.append(opt)
    modes = [k for k in ("listen", "connect", "udp") if k in spec.socket]
    if len(modes) != 1:
        raise NetSpecError(f"--net {text!r}: socket needs exactly one of listen=, connect=, udp=")
    if ("udp" in spec.socket) != ("localaddr" in spec.socket):
        raise NetSpecError(f"--net {text!r}: socket udp= and localaddr= go together")
    return rest


def _loopback(value: str, key: str, text: str) -> str:
    """Accept PORT or 127.0.0.1:PORT: the lab never exposes a port beyond loopback."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = LOOPBACK, value
    if host != LOOPBACK:
        raise NetSpecError(f"--net {text!r}: {key}= must use {LOOPBACK}, not {host!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise NetSpecError(f"--net {text!r}: {key}= needs a port number, got {port!r}")
    return f"{LOOPBACK}:{int(port)}"


def _common(spec: NetSpec, opt: str, text: str) -> None:
    key, sep, value = opt.partition("=")
    if key == "queue" and sep:
        if not value.isdigit() or int(value) not in (256, 512, 1024):
            raise NetSpecError(f"--net {text!r}: queue= must be 256, 512 or 1024, got {value!r}")
        spec.queue = int(value)
    elif key == "mode" and sep:
        if value not in MODES:
            raise NetSpecError(f"--net {text!r}: mode= must be one of {', '.join(MODES)}")
        spec.mode = value
    elif key == "mac" and sep:
        spec.mac = value
    elif key == "packed" and sep:
        if value not in ("on", "off"):
            raise NetSpecError(f"--net {text!r}: packed= must be on or off, got {value!r}")
        spec.packed = value == "on"
    else:
        raise NetSpecError(f"--net {text!r}: unknown option {opt!r} for {spec.kind}")


def pci_address(index: int) -> str:
    """Return the guest PCI address of the index-th --net device."""
    return f"0000:00:{NET_FIRST_SLOT + index:02x}.0"


def qemu_args(spec: NetSpec, index: int) -> list[str]:
    """Return the QEMU arguments (chardev, netdev, device) for one --net."""
    slot = NET_FIRST_SLOT + index
    if slot > NET_LAST_SLOT:
        raise NetSpecError(f"too many --net devices (at most {NET_LAST_SLOT - NET_FIRST_SLOT + 1})")
    nid = f"net{index}"
    args: list[str] = []
    if spec.kind == "vhost-user":
        chardev = f"socket,id=chr{index},path={spec.target}" + (",server=on" if spec.server else "")
        queues = f",queues={spec.queues}" if spec.queues > 1 else ""
        args += ["-chardev", chardev,
                 "-netdev", f"vhost-user,id={nid},chardev=chr{index}{queues}"]
    elif spec.kind == "socket":
        opts = ",".join(f"{k}={v}" for k, v in spec.socket.items())
        args += ["-netdev", f"socket,id={nid},{opts}"]
    else:
        args += ["-netdev", f"tap,id={nid},ifname={spec.target},script=no,downscript=no,"
                           "vhost=off"]  # QEMU's own device model, not vhost-net
    device = f"virtio-net-pci,netdev={nid},bus=pci.0,addr=0x{slot:x}"
    if spec.queues > 1:
        # A vector per queue, one for the control queue, one for config.
        device += f",mq=on,vectors={2 * spec.queues + 2}"
    if spec.queue:
        # QEMU caps tx_queue_size at 256 unless the backend is vhost-user.
        device += f",rx_queue_size={spec.queue},tx_queue_size={spec.queue}"
    if MODES[spec.mode]:
        device += "," + MODES[spec.mode]
    if spec.mac:
        device += f",mac={spec.mac}"
    if spec.packed:
        device += ",packed=on"
    return args + ["-device", device]
