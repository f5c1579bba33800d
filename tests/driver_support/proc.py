"""What a server process holds, read from /proc (Linux)."""
from __future__ import annotations

import os
import socket


def descriptors_of(sock: socket.socket) -> int:
    """How many descriptors of this process refer to ``sock``'s connection."""
    target = f"socket:[{os.fstat(sock.fileno()).st_ino}]"
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                count += 1
        except OSError:
            pass  # closed meanwhile
    return count


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1
