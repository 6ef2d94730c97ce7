"""Webhooks the WhatsApp sandbox posts, shaped and signed as Meta's Cloud API does.

Payloads follow the contract (handbook ``whatsapp-cloud-api.md`` §5): the
``whatsapp_business_account`` envelope, ``X-Hub-Signature-256: sha256=<hmac>`` over the exact
bytes posted, string ``timestamp`` in messages and statuses, integer ``entry[].time`` on template
events.  Deliveries run as background tasks owned by the app's lifespan and are retried with
exponential backoff while the receiver answers non-2xx, like Meta's own (shortened) retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Coroutine
from typing import Any

import httpx
import structlog

from services.sandbox.state import Contact, NumberConfig, NumberState, Outbound, SandboxState

log = structlog.get_logger("quita.sandbox.whatsapp")

ERRORS_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value for ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(config: NumberConfig, value: dict[str, Any]) -> dict[str, Any]:
    """One ``messages`` change for ``config``'s number wrapped in the WABA envelope."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": config.waba_id,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": config.display_phone_number,
                                "phone_number_id": config.phone_number_id,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def async_error(code: int, title: str, details: str) -> dict[str, Any]:
    """An error object as it appears in ``statuses[].errors[]``."""
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": ERRORS_HREF,
    }


def status_object(
    message: Outbound,
    status: str,
    at: float,
    *,
    graph_major: int,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``statuses[]`` item; pricing on sent/delivered, conversation only before v24.0."""
    item: dict[str, Any] = {
        "id": message.id,
        "status": status,
        "timestamp": str(int(at)),
        "recipient_id": message.wa_id,
    }
    if message.biz_opaque_callback_data is not None:
        item["biz_opaque_callback_data"] = message.biz_opaque_callback_data
    if error is not None:
        item["errors"] = [error]
        return item
    if status in ("sent", "delivered"):
        if graph_major < 24:
            conversation: dict[str, Any] = {
                "id": hashlib.sha256(message.wa_id.encode()).hexdigest()[:32],
                "origin": {"type": message.pricing_category},
            }
            if status == "sent":
                conversation["expiration_timestamp"] = str(int(message.created_at) + 86400)
            item["conversation"] = conversation
        item["pricing"] = {
            "billable": message.billable,
            "pricing_model": "PMP",
            "type": "regular" if message.billable else "free_customer_service",
            "category": message.pricing_category,
        }
    return item


class WebhookDispatcher:
    """Posts signed webhooks in the background; ``close()`` cancels what is still pending."""

    def __init__(self, state: SandboxState, client: httpx.AsyncClient) -> None:
        self.state = state
        self.client = client
        self.tasks: set[asyncio.Task[Any]] = set()
        # One POST at a time per number, so events leave in the order they were due (the
        # out-of-order option reorders on purpose); a retried event may fall behind later ones.
        self.lanes: dict[str, asyncio.Lock] = {}

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()

    async def idle(self) -> None:
        """Wait until every scheduled delivery is done (control API, tests)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def post(self, number: NumberState, payload: dict[str, Any], delay_ms: int = 0) -> None:
        """Deliver ``payload`` to the number's webhook after ``delay_ms`` (no URL: dropped)."""
        if number.config.webhook_url:
            self.spawn(self._deliver(number, payload, delay_ms))

    async def _deliver(self, number: NumberState, payload: dict[str, Any], delay_ms: int) -> None:
        await asyncio.sleep(delay_ms / 1000)
        config = number.config
        url = config.webhook_url
        if not url:
            return
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body, config.app_secret),
            "User-Agent": "facebookexternalua",
        }
        for attempt in range(config.webhook_retries + 1):
            outcome: int | str
            async with self.lanes.setdefault(config.phone_number_id, asyncio.Lock()):
                try:
                    response = await self.client.post(url, content=body, headers=headers)
                    outcome = response.status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
            number.deliveries.append({"url": url, "attempt": attempt + 1, "outcome": outcome})
            if isinstance(outcome, int) and 200 <= outcome < 300:
                return
            log.info("sandbox.webhook_retry", attempt=attempt + 1, outcome=outcome)
            await asyncio.sleep(config.webhook_retry_base_ms * 2**attempt / 1000)
        log.warning("sandbox.webhook_abandoned", phone_number_id=config.phone_number_id)

    def statuses(
        self,
        number: NumberState,
        message: Outbound,
        contact: Contact,
        *,
        graph_major: int,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Schedule the status webhooks of an accepted message, with the number's quirks:
        out-of-order (``sent`` after ``delivered``), duplicates and batching."""
        config = number.config
        now = self.state.clock()
        events: list[tuple[int, str]]
        if error is not None:
            events = [(config.sent_delay_ms, "failed")]
        else:
            events = [(config.sent_delay_ms, "sent"), (config.delivered_delay_ms, "delivered")]
            if contact.read_receipts:
                events.append((config.read_delay_ms, "read"))
            if self.state.roll(config.out_of_order_probability):
                (sent_at, _), (delivered_at, _) = events[0], events[1]
                events[0], events[1] = (delivered_at, "sent"), (sent_at, "delivered")
        for delay, status in list(events):
            if self.state.roll(config.duplicate_probability):
                events.append((delay + 5, status))
        events.sort(key=lambda event: event[0])
        items = [
            (
                delay,
                status_object(
                    message, status, now + delay / 1000, graph_major=graph_major, error=error
                ),
            )
            for delay, status in events
        ]
        message.statuses.extend(status for _, status in events)
        size = max(config.batch_size, 1)
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            payload = envelope(config, {"statuses": [item for _, item in chunk]})
            self.post(number, payload, delay_ms=chunk[-1][0])

    def template_status(
        self, numbers: list[NumberState], waba_id: str, value: dict[str, Any]
    ) -> None:
        """A ``message_template_status_update`` to every distinct webhook of the WABA."""
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": waba_id,
                    "time": int(self.state.clock()),
                    "changes": [{"field": "message_template_status_update", "value": value}],
                }
            ],
        }
        seen: set[tuple[str | None, str]] = set()
        for number in numbers:
            key = (number.config.webhook_url, number.config.app_secret)
            if key not in seen:
                seen.add(key)
                self.post(number, payload)
