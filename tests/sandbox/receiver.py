"""A real HTTP endpoint for the sandbox's webhooks: a tiny HTTP/1.1 server on 127.0.0.1 (raw
asyncio, no framework) that records every request with its exact bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERIFY_TOKEN = "verify-me"


class Receiver:
    """A tiny HTTP/1.1 server recording every request; answers ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/whatsapp"

    @property
    def posts(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for method, _, h, b in self.requests if method == "POST"]

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.posts]

    def statuses_received(self) -> list[dict[str, Any]]:
        return [
            status
            for payload in self.payloads()
            for entry in payload["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]

    def _answer(self, method: str, target: str) -> tuple[int, bytes]:
        if method == "GET":
            query = parse_qs(urlsplit(target).query)
            if query.get("hub.verify_token") == [VERIFY_TOKEN]:
                return 200, query["hub.challenge"][0].encode()
            return 403, b""
        return (self.statuses.pop(0) if self.statuses else 200), b""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, _ = head[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (line.split(":", 1) for line in head[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((method, target, headers, body))
                status, text = self._answer(method, target)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(text)}\r\n\r\n".encode() + text
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
