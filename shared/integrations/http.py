"""The HTTP side every provider client shares: one pooled ``httpx.AsyncClient`` per client
object, sized and timed for many concurrent sends, closed with the client."""

from __future__ import annotations

import httpx

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "PooledClient"]

# Sized for 64+ concurrent sends with headroom: a send waits for a connection only past 128.
# Idle connections expire after 5 s (httpx's default): with a long expiry httpcore keeps probing
# every idle socket on each request, which cut throughput to a third in bench/whatsapp_throughput.
DEFAULT_LIMITS = httpx.Limits(
    max_connections=128, max_keepalive_connections=128, keepalive_expiry=5.0
)
# Providers answer a send in well under a second; a read that takes 15 s is a failure to retry.
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0, pool=10.0)


class PooledClient:
    """Owns the connection pool.  Use as an async context manager or call ``aclose()``;
    ``transport`` is for tests (an in-process app)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            limits=limits,
            http1=True,
            http2=False,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def __aenter__(self) -> PooledClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
