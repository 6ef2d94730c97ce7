"""An async client for the WhatsApp Cloud API, shared by every retailer of a process.

A few pooled ``httpx.AsyncClient`` (HTTP/1.1 keep-alive) serve all calls, in turn: httpcore walks
every connection of a pool on each request and each response (probing each idle one with
syscalls), so a single pool holding all the connections a busy worker keeps cost it more CPU than
the requests themselves; taken in turn, every pool stays warm while any number sends.  The phone
number id and its bearer token come with each call because every retailer sends from its own
number with its own token.  Bodies are encoded with msgspec.  Success bodies are parsed into
small results; every failure, whether an error body, a bad status or a network problem, raises
``WhatsAppError`` with its class.  Logs carry ids and the last four digits of a recipient, never
a token or a full phone number.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import msgspec

from shared.config import Settings
from shared.integrations.http import DEFAULT_LIMITS, DEFAULT_TIMEOUT, PooledClient
from shared.integrations.whatsapp import payloads
from shared.integrations.whatsapp.errors import ErrorClass, WhatsAppError
from shared.integrations.whatsapp.payloads import (
    Document,
    Json,
    ListSection,
    ReplyButton,
    TemplateButton,
)
from shared.logging import get_logger

__all__ = ["SendResult", "TemplateCreated", "TemplatePage", "WhatsAppClient"]

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
# pools per client (see the module's docstring); each has the limits given to the client
DEFAULT_POOLS = 8
_JSON = {"Content-Type": "application/json"}
_encode = msgspec.json.Encoder().encode


# Graph ids are numeric; refusing anything else keeps a bad id from rewriting the path.
_GRAPH_ID = re.compile(r"[0-9A-Za-z_]+")

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SendResult:
    """An accepted send (contract §2.8): accepted, not delivered.

    ``wa_id`` is the recipient's WhatsApp id, which may differ from ``input`` (the Brazilian
    ninth digit) or be ``""`` for a business-scoped user id; ``message_status`` comes with
    template sends (``accepted``, ``held_for_quality_assessment`` or ``paused``).
    """

    message_id: str
    input: str
    wa_id: str
    message_status: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateCreated:
    id: str
    status: str
    category: str


@dataclass(frozen=True, slots=True)
class TemplatePage:
    """One page of templates; ``after`` is the cursor of the next page, ``None`` on the last."""

    templates: list[Json]
    after: str | None


def _graph_id(name: str, value: str) -> str:
    if not _GRAPH_ID.fullmatch(value):
        raise ValueError(f"{name} is not a Graph id")
    return value


def _last4(to: str) -> str:
    return to[-4:]


def parse_send_result(body: Any) -> SendResult:
    """The result of a 200 to a send; a body without ``messages[0].id`` is a provider fault."""
    try:
        message = body["messages"][0]
        contacts = body.get("contacts") or [{}]
        contact = contacts[0]
        return SendResult(
            message_id=str(message["id"]),
            input=str(contact.get("input", "")),
            wa_id=str(contact.get("wa_id", "")),
            message_status=message.get("message_status"),
            user_id=contact.get("user_id"),
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise WhatsAppError(
            error_class=ErrorClass.TRANSIENT,
            message="success body without messages[0].id",
            http_status=200,
            body=body if isinstance(body, dict) else None,
            maybe_sent=True,
        ) from None


class WhatsAppClient(PooledClient):
    """Cloud API calls over ``pools`` connection pools, taken in turn (a transport given for
    tests is one pool).  Use as an async context manager or call ``aclose()``."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
        pools: int | None = None,
    ) -> None:
        self.api_version = api_version
        super().__init__(base_url, timeout=timeout, limits=limits, transport=transport)
        count = pools or (1 if transport is not None else DEFAULT_POOLS)
        self._others = [
            PooledClient(base_url, timeout=timeout, limits=limits, transport=transport)
            for _ in range(count - 1)
        ]
        self._turns = itertools.cycle([self._http, *(other._http for other in self._others)])

    def _pool(self) -> httpx.AsyncClient:
        """The pool of the next call."""
        return next(self._turns)

    async def aclose(self) -> None:
        await super().aclose()
        for other in self._others:
            await other.aclose()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> WhatsAppClient:
        kwargs.setdefault("timeout", httpx.Timeout(settings.whatsapp_timeout_s, connect=5.0))
        return cls(
            base_url=settings.whatsapp_graph_url,
            api_version=settings.whatsapp_api_version,
            **kwargs,
        )

    async def __aenter__(self) -> WhatsAppClient:
        return self

    # --- transport ---------------------------------------------------------------------------

    async def _call(
        self,
        method: Literal["GET", "POST", "DELETE"],
        path: str,
        token: str,
        *,
        json: Json | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One Graph call; the parsed success body, or ``WhatsAppError``."""
        url = f"/{self.api_version}/{path}"
        headers = {"Authorization": f"Bearer {token}"}
        content = None
        if json is not None:
            content = _encode(json)
            headers |= _JSON
        try:
            response = await self._pool().request(
                method, url, content=content, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            # A connect or pool timeout never left this process; a read or write one may have
            # reached Meta, and Meta has no idempotency key (contract §3.3).
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise _network_error(f"timeout: {type(exc).__name__}", maybe_sent=sent) from exc
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise _network_error(f"network: {type(exc).__name__}", maybe_sent=sent) from exc
        return _body_or_raise(response)

    async def _send(self, phone_number_id: str, token: str, body: Json) -> SendResult:
        path = f"{_graph_id('phone_number_id', phone_number_id)}/messages"
        to_last4 = _last4(body["to"])
        try:
            result = parse_send_result(await self._call("POST", path, token, json=body))
        except WhatsAppError as exc:
            _log.warning(
                "whatsapp.send_failed",
                phone_number_id=phone_number_id,
                to_last4=to_last4,
                message_type=body["type"],
                error_class=str(exc.error_class),
                code=exc.code,
                http_status=exc.http_status,
                fbtrace_id=exc.fbtrace_id,
            )
            raise
        _log.info(
            "whatsapp.sent",
            phone_number_id=phone_number_id,
            to_last4=to_last4,
            message_type=body["type"],
            message_id=result.message_id,
            message_status=result.message_status,
        )
        return result

    # --- sends -------------------------------------------------------------------------------

    async def send_template(
        self,
        phone_number_id: str,
        token: str,
        to: str,
        name: str,
        language: str,
        *,
        callback_data: str,
        body: Sequence[str] | Mapping[str, str] = (),
        header: Sequence[str] | Document | None = None,
        buttons: Sequence[TemplateButton] = (),
        reply_to: str | None = None,
    ) -> SendResult:
        """Send an approved template (the reminder); ``callback_data`` is our attempt id."""
        message = payloads.template_message(
            to,
            name,
            language,
            callback_data=callback_data,
            body=body,
            header=header,
            buttons=buttons,
            reply_to=reply_to,
        )
        return await self._send(phone_number_id, token, message)

    async def send_text(
        self,
        phone_number_id: str,
        token: str,
        to: str,
        text: str,
        *,
        callback_data: str,
        preview_url: bool = False,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.text_message(
            to, text, callback_data=callback_data, preview_url=preview_url, reply_to=reply_to
        )
        return await self._send(phone_number_id, token, message)

    async def send_interactive_buttons(
        self,
        phone_number_id: str,
        token: str,
        to: str,
        text: str,
        buttons: Sequence[ReplyButton],
        *,
        callback_data: str,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.buttons_message(
            to, text, buttons, callback_data=callback_data, reply_to=reply_to
        )
        return await self._send(phone_number_id, token, message)

    async def send_interactive_list(
        self,
        phone_number_id: str,
        token: str,
        to: str,
        text: str,
        button: str,
        sections: Sequence[ListSection],
        *,
        callback_data: str,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.list_message(
            to, text, button, sections, callback_data=callback_data, reply_to=reply_to
        )
        return await self._send(phone_number_id, token, message)

    async def send_document(
        self,
        phone_number_id: str,
        token: str,
        to: str,
        document: Document,
        *,
        callback_data: str,
        reply_to: str | None = None,
    ) -> SendResult:
        message = payloads.document_message(
            to, document, callback_data=callback_data, reply_to=reply_to
        )
        return await self._send(phone_number_id, token, message)

    async def mark_read(
        self, phone_number_id: str, token: str, message_id: str, *, typing_indicator: bool = False
    ) -> bool:
        """Mark an inbound message read; ``True`` when Meta answers ``{"success": true}``."""
        path = f"{_graph_id('phone_number_id', phone_number_id)}/messages"
        body = payloads.mark_read(message_id, typing_indicator=typing_indicator)
        answer = await self._call("POST", path, token, json=body)
        return isinstance(answer, dict) and answer.get("success") is True

    # --- templates ---------------------------------------------------------------------------

    async def create_template(
        self,
        waba_id: str,
        token: str,
        name: str,
        language: str,
        category: Literal["UTILITY", "MARKETING", "AUTHENTICATION"],
        components: Sequence[Json],
        *,
        parameter_format: Literal["POSITIONAL", "NAMED"] | None = None,
    ) -> TemplateCreated:
        """Submit a template for review; it is sendable once its status is ``APPROVED``."""
        body = payloads.template_definition(
            name, language, category, components, parameter_format=parameter_format
        )
        path = f"{_graph_id('waba_id', waba_id)}/message_templates"
        answer = await self._call("POST", path, token, json=body)
        try:
            return TemplateCreated(
                id=str(answer["id"]),
                status=str(answer.get("status", "PENDING")),
                category=str(answer.get("category", category)),
            )
        except (KeyError, TypeError):
            raise WhatsAppError(
                error_class=ErrorClass.TRANSIENT,
                message="template created without an id",
                http_status=200,
                body=answer if isinstance(answer, dict) else None,
                maybe_sent=True,
            ) from None

    async def edit_template(self, template_id: str, token: str, components: Sequence[Json]) -> bool:
        """Replace an existing template's components (``POST /{TEMPLATE_ID}``); the template
        goes back to review.  Meta allows one edit of an approved template per 24 hours."""
        path = _graph_id("template_id", template_id)
        answer = await self._call("POST", path, token, json={"components": list(components)})
        return isinstance(answer, dict) and answer.get("success") is True

    async def list_templates(
        self,
        waba_id: str,
        token: str,
        *,
        name: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> TemplatePage:
        """One page of the WABA's templates; pass ``page.after`` back for the next one."""
        params = payloads.list_templates_params(limit=limit, name=name, after=after)
        path = f"{_graph_id('waba_id', waba_id)}/message_templates"
        answer = await self._call("GET", path, token, params=params)
        data = answer.get("data") if isinstance(answer, dict) else None
        paging = answer.get("paging") if isinstance(answer, dict) else None
        return TemplatePage(templates=list(data or []), after=_next_cursor(paging))

    async def delete_template(self, waba_id: str, token: str, name: str) -> bool:
        """Delete every language of template ``name``; a missing template raises (404)."""
        params = payloads.delete_template_params(name)
        path = f"{_graph_id('waba_id', waba_id)}/message_templates"
        answer = await self._call("DELETE", path, token, params=params)
        return isinstance(answer, dict) and answer.get("success") is True


def _network_error(message: str, *, maybe_sent: bool) -> WhatsAppError:
    return WhatsAppError(error_class=ErrorClass.TRANSIENT, message=message, maybe_sent=maybe_sent)


def _body_or_raise(response: httpx.Response) -> Any:
    """The JSON body of a success; ``WhatsAppError`` for an error object or a bad status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    failed = response.status_code >= 400 or (isinstance(body, dict) and "error" in body)
    if failed:
        error = WhatsAppError.from_response(response.status_code, body)
        # Meta support asks for the trace id; an error without a body still has the header.
        error.fbtrace_id = error.fbtrace_id or response.headers.get("x-fb-trace-id")
        raise error
    if body is None:
        raise WhatsAppError(
            error_class=ErrorClass.TRANSIENT,
            message="success without a JSON body",
            http_status=response.status_code,
            maybe_sent=True,
        )
    return body


def _next_cursor(paging: Any) -> str | None:
    """Graph paging: a ``next`` link means there is a next page, ``cursors.after`` names it."""
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return after if isinstance(after, str) else None
