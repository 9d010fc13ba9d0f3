"""The socket side: the receive buffer setting, kernel drops read from /proc/net/udp, the counters line."""

from __future__ import annotations

import socket

import pytest

from flowsentinel.collector.counters import Counters, kernel_drops
from flowsentinel.collector.transport import UdpListener
from flowsentinel.errors import ConfigError


def test_kernel_drops_of_an_overflowing_socket_are_read_from_proc():
    with UdpListener("127.0.0.1", 0, receive_buffer=4096) as rx:
        assert rx.drops() == 0
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for _ in range(200):
                tx.sendto(b"\0\x09" + bytes(1400), rx.address)
        finally:
            tx.close()
        dropped = rx.drops()
        kept = len(rx.receive(timeout=1.0, max_packets=1000))
    assert dropped > 0 and dropped + kept == 200


def test_receive_buffer_is_set():
    with UdpListener("127.0.0.1", 0, receive_buffer=1 << 20) as rx:
        assert rx.receive_buffer >= 1 << 20 or rx.receive_buffer > 0


def test_a_port_in_use_is_a_user_error():
    with UdpListener("127.0.0.1", 0) as first:
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1:"):
            UdpListener("127.0.0.1", first.address[1])


def test_kernel_drops_of_an_unbound_socket_is_unknown():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.close()
    assert kernel_drops(s) is None


def test_counters_as_dict_names_every_reason():
    c = Counters()
    c.malformed["record_overrun"] += 2
    c.add_latencies([0.1, 0.3])
    d = c.as_dict()
    assert d["malformed"] == {"record_overrun": 2} and d["latency_s"]["max"] == pytest.approx(0.3)
