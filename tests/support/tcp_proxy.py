"""A TCP proxy in front of a server, to take the server away as a restart does: every open
connection is cut, and new ones are refused until it is back — without touching the real server,
which other tests share.  The server may listen on TCP or on a Unix socket (the embedded
Postgres does)."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.engine import make_url


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to the server; :meth:`down` and :meth:`start` again."""

    def __init__(self, host: str, port: int) -> None:
        """``host`` a name or address, or a Unix socket directory as libpq takes it."""
        self.host, self.target_port = host, port
        self.port = 0
        self._database_url = ""
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def before_database(cls, database_url: str) -> TcpProxy:
        """A proxy for the Postgres of ``database_url`` (TCP, or the Unix socket directory of
        ``?host=``); :meth:`url` is the same database through it."""
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        host = socket_dir if isinstance(socket_dir, str) else (url.host or "127.0.0.1")
        proxy = cls(host, url.port or 5432)
        proxy._database_url = database_url
        return proxy

    def url(self) -> str:
        """The database URL of :meth:`before_database`, through this proxy (once started)."""
        through = make_url(self._database_url).set(host="127.0.0.1", port=self.port, query={})
        return through.render_as_string(hide_password=False)

    async def start(self) -> None:
        """Listen (on the same port again after :meth:`down`)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """What a server going down does to its clients: open connections are reset, new ones
        refused."""
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new connections
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.host.startswith("/"):
                path = f"{self.host}/.s.PGSQL.{self.target_port}"
                up_reader, up_writer = await asyncio.open_unix_connection(path)
            else:
                up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()  # one side ended: end the other at once
