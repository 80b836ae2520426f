"""A TCP port nobody listens on, so that tests run side by side (two checkouts, one machine) never collide."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel just handed out and released on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
