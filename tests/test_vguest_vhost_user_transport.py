"""The vhost-user frontend transport against a scripted backend (the
codec's Backend in a thread): the requests it sends, in order, and what it
does with refusals, new memory and kicks."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
import warnings

import pytest

from snabbpy.apps.vguest.device import DeviceError, VirtioNetDevice
from snabbpy.apps.vguest.selftest import loopback
from snabbpy.apps.vguest.transport import TransportError
from snabbpy.apps.vguest.vhost_user_transport import VhostUserTransport
from snabbpy.core.memory import dma
from snabbpy.lib.vhost_user import Request
from snabbpy.lib.virtio import Feature
from snabbpy.testing.scripted_backend import ScriptedBackend

R = Request


@pytest.fixture
def backend(tmp_path):
    made = []

    def make(**kw) -> tuple[ScriptedBackend, str]:
        path = str(tmp_path / f"b{len(made)}.sock")
        made.append(ScriptedBackend(path, **kw))
        return made[-1], path

    yield make
    for b in made:
        b.listener.close()


def test_setup_follows_the_vhost_user_sequence(backend, no_leaks):
    b, path = backend()
    dev = VirtioNetDevice(VhostUserTransport(path), queue_size=64)
    dev.open()
    assert b.requests()[:6] == [R.SET_OWNER, R.GET_FEATURES, R.GET_PROTOCOL_FEATURES,
                                R.SET_PROTOCOL_FEATURES, R.SET_FEATURES, R.SET_VRING_NUM]
    per_queue = [R.SET_VRING_NUM, R.SET_MEM_TABLE, R.SET_VRING_ADDR, R.SET_VRING_BASE,
                 R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ENABLE]
    assert b.requests()[5:] == per_queue + [r for r in per_queue if r != R.SET_MEM_TABLE]
    features = b.seen[4].payload
    assert features >> Feature.VHOST_USER_PROTOCOL_FEATURES & 1
    assert not features >> Feature.NET_MAC & 1  # emulated here, never sent on
    table = b.seen[6].payload
    assert all(r.userspace_addr == r.guest_phys_addr for r in table.regions)
    assert dev.mac == b"\x52\x54\x00\x00\x00\x01" and dev.link_up
    dev.close()
    assert b.requests()[-4:] == [R.SET_VRING_ENABLE, R.GET_VRING_BASE] * 2


def test_a_refused_feature_set_fails_the_device(backend, no_leaks):
    b, path = backend(refuse={R.SET_FEATURES})
    transport = VhostUserTransport(path)
    with pytest.raises(DeviceError, match="refused features"):
        VirtioNetDevice(transport).open()
    transport.close()


def test_notify_writes_the_kick_eventfd(backend, no_leaks):
    b, path = backend()
    dev = VirtioNetDevice(VhostUserTransport(path), queue_size=64)
    dev.open()
    dev.transport.notify(1)
    assert os.eventfd_read(b.kick_fds[1]) == 1
    dev.close()


def test_a_new_dma_chunk_resends_the_memory_table(backend, no_leaks):
    b, path = backend()
    dev = VirtioNetDevice(VhostUserTransport(path), queue_size=64)
    dev.open()
    sent_before = sum(m.request == R.SET_MEM_TABLE for m in b.seen)
    new_chunk = dma.allocate(dma.backend.chunk_size)  # cannot fit: a new (sparse) chunk
    dev.transport.request(R.GET_FEATURES)  # a round trip: the table went before it
    tables = [m.payload for m in b.seen if m.request == R.SET_MEM_TABLE]
    assert len(tables) == sent_before + 1
    # Chunks that continue each other travel as one region: the table covers the new one.
    assert [(r.userspace_addr, r.memory_size) for r in tables[-1].regions] == \
        [(r.address, r.size) for r in dma.regions()]
    assert any(r.userspace_addr <= new_chunk < r.userspace_addr + r.memory_size
               for r in tables[-1].regions)
    dev.close()


def test_close_after_the_backend_died_still_frees_every_packet(backend, no_leaks):
    b, path = backend()
    dev = VirtioNetDevice(VhostUserTransport(path), queue_size=64)
    dev.open()
    b.sock.shutdown(socket.SHUT_RDWR)
    assert dev.close() == 64
    assert "SET_VRING_ENABLE failed" in dev.close_error


def test_connecting_to_nothing_names_the_socket(tmp_path):
    with pytest.raises(TransportError, match="cannot connect"):
        VhostUserTransport(str(tmp_path / "none.sock"), timeout=0.2)


def test_listening_where_no_directory_is_names_the_socket(tmp_path):
    with pytest.raises(TransportError, match="missing/sock.*cannot listen"):
        VhostUserTransport(str(tmp_path / "missing" / "sock"), is_server=True, timeout=0.2)


def test_listening_never_removes_a_file_that_is_not_a_socket(tmp_path):
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    with pytest.raises(TransportError, match="not a socket"):
        VhostUserTransport(str(path), is_server=True, timeout=0.2)
    assert path.read_text() == "keep me"


@contextlib.contextmanager
def hanging_up_backend(path: str):
    """A backend that accepts one connection and closes it at once."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        hang_up = threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True)
        hang_up.start()
        yield
        hang_up.join(5)


def test_a_backend_hanging_up_during_the_handshake_leaves_no_socket_open(tmp_path):
    path = str(tmp_path / "rude.sock")
    with hanging_up_backend(path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(TransportError, match="rude.sock: (SET_OWNER|GET_FEATURES)"):
            VhostUserTransport(path, timeout=5)
        gc.collect()  # an unclosed socket would warn here
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_the_selftest_says_failed_when_the_backend_hangs_up(tmp_path, capsys):
    path = str(tmp_path / "rude.sock")
    with hanging_up_backend(path):
        assert loopback.main(["--vhost-user", path]) == 1
    assert "vguest selftest: FAILED" in capsys.readouterr().err
