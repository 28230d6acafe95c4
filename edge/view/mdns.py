"""Finding the board by name: ``nerve-edge-HOST.local`` over mDNS (``--no-mdns``: off).

DHCP may give the board another address tomorrow; the name in the QR code and in the
certificate stays. Announced only beyond loopback; registration runs in a thread (mDNS
probing takes a second or two) and a failure is one warning, never a stopped run.
"""

from __future__ import annotations

import re
import socket
import threading

SERVICE = "_https._tcp.local."
PLAIN_SERVICE = "_http._tcp.local."
NAME_PREFIX = "nerve-edge-"


def board_name(hostname: str | None = None) -> str:
    """``nerve-edge-HOST.local`` for this host (lower case, letters, digits and dashes)."""
    host = re.sub(r"[^a-z0-9-]+", "-", (hostname or socket.gethostname()).split(".")[0].lower())
    host = host.strip("-") or "board"
    return (host if host.startswith(NAME_PREFIX) else NAME_PREFIX + host) + ".local"


class Announcer:
    """Announces the web view while open; ``close()`` withdraws it."""

    def __init__(self, name: str, addresses: list[str], port: int, tls: bool, warn,
                 only_these: bool = False) -> None:
        """``only_these``: announce on the interfaces of ``addresses`` only (a view bound to
        one address), else on every interface (0.0.0.0)."""
        self._name, self._addresses, self._port, self._tls = name, addresses, port, tls
        self._interfaces = list(addresses) if only_these else None
        self._warn, self._zc, self._info = warn, None, None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._register, name="mdns", daemon=True)
        self._thread.start()

    def _register(self) -> None:
        try:
            from zeroconf import ServiceInfo, Zeroconf

            kind = SERVICE if self._tls else PLAIN_SERVICE
            label = self._name.removesuffix(".local")
            info = ServiceInfo(kind, f"{label}.{kind}", port=self._port,
                               parsed_addresses=self._addresses, server=self._name + ".",
                               properties={"path": "/"})
            zc = Zeroconf() if self._interfaces is None else Zeroconf(interfaces=self._interfaces)
            zc.register_service(info)
        except Exception as err:  # noqa: BLE001  no network, no multicast: the view still runs
            self._warn(f"serve: warning: cannot announce {self._name} over mDNS ({err}); "
                       "open the board by its address instead")
            return
        with self._lock:
            self._zc, self._info = zc, info

    def close(self) -> None:
        self._thread.join(timeout=5.0)
        with self._lock:
            zc, info, self._zc = self._zc, self._info, None
        if zc is not None:
            zc.unregister_service(info)
            zc.close()
