"""Serve an ASGI app on a real 127.0.0.1 port inside the test's event loop (uvicorn), for the
paths where a provider must reach Quita over HTTP — the sandbox posting signed webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """``async with serve(app) as url`` → ``http://127.0.0.1:<port>``; the app's own lifespan
    is the caller's to run (``run_lifespan``)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
