"""The local plan never tells two listeners to use the same port."""

from __future__ import annotations

import socket

import pytest

from kubecast.local.ports import PortReservations


def released_ephemeral_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_wanted_port_is_held_until_the_plan_is_chosen() -> None:
    port = released_ephemeral_port()
    with PortReservations("127.0.0.1") as reserve:
        assert reserve.wanted(port) == port
        chosen = {reserve.free() for _ in range(50)}
        assert port not in chosen and len(chosen) == 50
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    with socket.socket() as after:
        after.bind(("127.0.0.1", port))  # released for the process that will listen on it


def test_a_busy_wanted_port_is_replaced_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with PortReservations("127.0.0.1") as reserve:
            chosen = reserve.wanted(port)
    assert chosen != port
    assert f"port {port} is busy; using {chosen}" in capsys.readouterr().err
