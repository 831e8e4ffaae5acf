"""Where a queued prompt is: ComfyUI's websocket messages read into one progress line (standard library only).

ComfyUI tells the client that queued a prompt (``client_id``) over ``/ws`` which node runs
(``executing``) and how far its progress bar is (``progress``: value of max). ``ProgressWatch``
reads them in a thread through a minimal RFC 6455 client (text frames, pings, close) and
keeps the latest state; ``line()`` says the node, its step of its total and, from the rate
of its steps so far, the time it has left. Without a websocket (an old proxy, a refused
upgrade) the state stays empty and the caller falls back to the queue.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
import urllib.parse

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class WebSocket:
    """A client websocket over a plain TCP socket: ``recv()`` returns (opcode, payload) of whole messages."""

    def __init__(self, url: str, timeout: float = 10.0):
        parts = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the websocket handshake")
            head += chunk
        head, self._buffer = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status:
            raise ConnectionError(f"no websocket upgrade: {status}")
        self.sock.settimeout(None)

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the websocket closed")
            self._buffer += chunk
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        size = len(payload)
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size) if size < 126 else \
            struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self) -> tuple[int, bytes]:
        message, opcode = b"", None
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            kind = first & 0x0F
            if kind == PING:
                self._send(PONG, payload)
                continue
            if kind == CLOSE:
                raise ConnectionError("the server closed the websocket")
            if kind != 0:
                opcode = kind
            message += payload
            if first & 0x80:
                return opcode, message

    def close(self) -> None:
        try:
            self._send(CLOSE)
        except OSError:
            pass
        self.sock.close()


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class ProgressWatch:
    """The running node and its progress for one prompt, from the websocket of ``client_id``."""

    def __init__(self, server_url: str, client_id: str, names: dict[str, str]):
        self.names = names
        self.prompt_id: str | None = None
        self.node: str | None = None
        self.step: tuple[int, int] | None = None
        self._node_started = 0.0
        self._lock = threading.Lock()
        ws_url = server_url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={client_id}"
        try:
            self._ws = WebSocket(ws_url)
        except (OSError, ConnectionError):
            self._ws = None
            return
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        try:
            while True:
                opcode, payload = self._ws.recv()
                if opcode == TEXT:
                    self.handle(json.loads(payload))
        except (OSError, ConnectionError, ValueError):
            return

    def handle(self, message: dict) -> None:
        """Take one websocket message (``{"type", "data"}``) into the state."""
        data = message.get("data") or {}
        if self.prompt_id is not None and data.get("prompt_id") not in (None, self.prompt_id):
            return
        with self._lock:
            if message.get("type") == "executing" and data.get("node") != self.node:
                self.node, self.step, self._node_started = data.get("node"), None, time.time()
            elif message.get("type") == "progress" and data.get("max"):
                if data.get("node") not in (None, self.node):
                    self.node, self._node_started = data["node"], time.time()
                self.step = (int(data["value"]), int(data["max"]))

    def line(self) -> str | None:
        """``node 16 Masked-CFG Sampler (DRIVE): step 12 of 50, about 1 min 20 s left``, or None before any news."""
        with self._lock:
            if self.node is None:
                return None
            text = f"node {self.node} {self.names.get(str(self.node), '')}".rstrip()
            if self.step is None:
                return text
            done, total = self.step
            text += f": step {done} of {total}"
            spent = time.time() - self._node_started
            if 0 < done < total and spent > 0:
                text += f", about {duration(spent / done * (total - done))} left"
            return text

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
