"""The Graph-API-compatible part of the WhatsApp sandbox: ``/{version}/{phone_number_id}/messages``
and ``/{version}/{waba_id}/message_templates``.

It validates and answers as Meta's Cloud API does per the handbook contract
(``reference/whatsapp-cloud-api.md``): Meta's error body (``{"error": {message, type, code,
error_data, fbtrace_id}}``, not problem+json), the 24-hour customer service window, throughput
and pair rate limits, template approval, and status webhooks after an accepted send.  Demo and
test mode of the product point the WhatsApp client here instead of graph.facebook.com.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from litestar import Litestar, Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery

from services.sandbox.delivery import WebhookDispatcher, async_error, envelope
from services.sandbox.state import (
    NumberState,
    Outbound,
    SandboxState,
    Template,
    Waba,
    canonical,
    digits,
    new_wamid,
    placeholders,
)

# code → (HTTP status, title, details).  Meta asks clients to key on ``code``; the HTTP status
# is a coarse hint (contract §3.2), so the rate limits answer 429 and the rest 400.
CATALOG: dict[int, tuple[int, str, str]] = {
    100: (400, "Invalid parameter", "Invalid parameter"),
    130429: (429, "Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "Something went wrong", "Message failed to send due to an unknown error."),
    131008: (400, "Required parameter is missing", "A required parameter is missing."),
    131009: (400, "Parameter value is not valid", "One or more parameter values are invalid."),
    131016: (503, "Service unavailable", "A service is temporarily unavailable."),
    131021: (400, "Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: (
        400,
        "Message undeliverable",
        "Message failed to send because the recipient is not a WhatsApp user, has not accepted "
        "the Terms of Service or uses an old WhatsApp version.",
    ),
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    131056: (
        429,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
    132000: (
        400,
        "Number of parameters does not match the expected number of params",
        "The number of parameters does not match the expected number of params.",
    ),
    132001: (
        400,
        "Template name does not exist in the translation",
        "The template does not exist in the given language or is not approved.",
    ),
    132005: (400, "Translated text too long", "Translated text is too long."),
    132015: (400, "Template is Paused", "The template is paused because of low quality."),
    132016: (400, "Template is Disabled", "The template has been permanently disabled."),
}
SUBCODES = {130429: 2494055}
SENDABLE_TYPES = {
    "text",
    "template",
    "interactive",
    "document",
    "image",
    "audio",
    "video",
    "sticker",
    "location",
    "contacts",
    "reaction",
}
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
# a body parameter with a line break, a tab or more than four spaces in a row (contract §2.2)
UNSENDABLE_TEXT = re.compile(r"[\r\n\t]| {5,}")
CATEGORIES = {"UTILITY", "MARKETING", "AUTHENTICATION"}


@dataclass
class MetaError(Exception):
    """A Graph API error, rendered in Meta's shape rather than problem+json."""

    code: int
    details: str | None = None
    status: int | None = None
    title: str | None = None
    type: str = "OAuthException"
    subcode: int | None = None

    def body(self) -> dict[str, Any]:
        _, title, details = CATALOG.get(self.code, (400, "Error", "Error."))
        title = self.title or title
        error: dict[str, Any] = {
            "message": title if self.code == 190 else f"(#{self.code}) {title}",
            "type": self.type,
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details or details},
            "fbtrace_id": secrets.token_urlsafe(16),
        }
        subcode = self.subcode or SUBCODES.get(self.code)
        if subcode is not None:
            error["error_subcode"] = subcode
        return {"error": error}

    def http_status(self) -> int:
        if self.status is not None:
            return self.status
        return 401 if self.code == 190 else CATALOG.get(self.code, (400, "", ""))[0]


def meta_error_response(request: Request[Any, Any, Any], exc: MetaError) -> Response[Any]:
    return Response(content=exc.body(), status_code=exc.http_status())


def token_error() -> MetaError:
    return MetaError(
        190,
        details="Invalid OAuth access token.",
        title="Invalid OAuth access token - Cannot parse access token",
    )


def unknown_object(object_id: str) -> MetaError:
    return MetaError(
        100,
        title="Unsupported post request",
        details=(
            f"Object with ID '{object_id}' does not exist, cannot be loaded due to missing "
            "permissions, or does not support this operation."
        ),
        type="GraphMethodException",
        subcode=33,
    )


def dispatcher_of(request: Request[Any, Any, Any]) -> WebhookDispatcher:
    dispatcher: WebhookDispatcher = request.app.state.whatsapp
    return dispatcher


def bearer(request: Request[Any, Any, Any]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def graph_major(version: str) -> int:
    match = re.fullmatch(r"v(\d+)\.\d+", version)
    if match is None:
        raise MetaError(100, title="Unknown path components", details=f"Unknown {version}")
    return int(match.group(1))


async def json_object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise MetaError(100, details="The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise MetaError(100, details="The request body must be a JSON object.")
    return body


def authorised_number(state: SandboxState, phone_number_id: str, token: str) -> NumberState:
    number = state.numbers.get(phone_number_id)
    if number is None:
        raise unknown_object(phone_number_id) if state.token_known(token) else token_error()
    if not secrets.compare_digest(number.config.access_token, token):
        raise token_error()
    return number


def render(template: Template, components: list[Any]) -> tuple[str, int]:
    """The hydrated body text and how many body parameters the request carried."""
    params = [
        p
        for c in components
        if isinstance(c, dict) and str(c.get("type", "")).lower() == "body"
        for p in c.get("parameters", [])
        if isinstance(p, dict)
    ]
    named = {str(p.get("parameter_name")): str(p.get("text", "")) for p in params}

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.isdigit() and 0 < int(key) <= len(params):
            return str(params[int(key) - 1].get("text", ""))
        return named.get(key, match.group(0))

    return re.sub(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}", value, template.body_text), len(params)


def _parameter_name(component: dict[str, Any], i: int, parameter: dict[str, Any]) -> str:
    """How an error names a parameter: ``body.parameters[2]``, ``button[1].parameters[0]``…"""
    kind = str(component.get("type", "")).lower()
    where = f"{kind}[{component['index']}]" if "index" in component else kind
    named = f" ({parameter['parameter_name']})" if parameter.get("parameter_name") else ""
    return f"{where}.parameters[{i}]{named}"


def check_text_parameters(components: list[Any]) -> None:
    """Every text parameter of a template send holds text, as Meta requires: a missing, empty
    or blank one is 131008; a body one with a line break, a tab or more than four spaces in a
    row is 100."""
    for component in components:
        if not isinstance(component, dict):
            continue
        parameters = component.get("parameters")
        for i, parameter in enumerate(parameters if isinstance(parameters, list) else []):
            if not isinstance(parameter, dict) or parameter.get("type", "text") != "text":
                continue
            name, value = _parameter_name(component, i, parameter), parameter.get("text")
            if not isinstance(value, str) or not value.strip():
                raise MetaError(
                    131008, details=f"Parameter of type text is missing text value: {name}"
                )
            body = str(component.get("type", "")).lower() == "body"
            if body and UNSENDABLE_TEXT.search(value):
                raise MetaError(
                    100,
                    details=(
                        "Param text cannot have new-line/tab characters or more than 4 "
                        f"consecutive spaces: {name}"
                    ),
                )


def check_template(waba: Waba, body: dict[str, Any]) -> tuple[Template, str]:
    """The approved template a send names, else the contract's error: 132000 family for the
    template, 131008/100 for a parameter."""
    spec = body.get("template")
    if not isinstance(spec, dict) or not spec.get("name"):
        raise MetaError(131008, details="Parameter 'template.name' is required.")
    language = spec.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not code:
        raise MetaError(131008, details="Parameter 'template.language.code' is required.")
    name = str(spec["name"])
    template = waba.templates.get((name, str(code)))
    if template is None:
        raise MetaError(132001, details=f"template name ({name}) does not exist in {code}")
    if template.status == "PAUSED":
        raise MetaError(132015, details=f"template ({name}) is paused")
    if template.status == "DISABLED":
        raise MetaError(132016, details=f"template ({name}) is disabled")
    if template.status != "APPROVED":
        raise MetaError(132001, details=f"template name ({name}) is not approved in {code}")
    components = spec.get("components") or []
    components = components if isinstance(components, list) else []
    check_text_parameters(components)
    text, given = render(template, components)
    expected = placeholders(template.body_text)
    if given != expected:
        raise MetaError(
            132000,
            details=(
                f"body: number of localizable_params ({given}) does not match the expected "
                f"number of params ({expected})"
            ),
        )
    if len(text) > 1024:
        raise MetaError(132005)
    return template, text


def check_shape(body: dict[str, Any]) -> tuple[str, str]:
    """``to`` and ``type`` of a send, validated as Meta does before any business rule."""
    if body.get("messaging_product") != "whatsapp":
        raise MetaError(
            100, details="The parameter messaging_product is required and must be 'whatsapp'."
        )
    if body.get("recipient_type", "individual") != "individual":
        raise MetaError(100, details="Param recipient_type must be 'individual'.")
    to = body.get("to")
    if not isinstance(to, str) or not to:
        raise MetaError(131008, details="Parameter 'to' is required.")
    if not re.fullmatch(r"\d{8,15}", digits(to)):
        raise MetaError(131009, details=f"Parameter 'to' is not a valid phone number: {to}")
    kind = str(body.get("type", "text"))
    if kind not in SENDABLE_TYPES:
        raise MetaError(100, details=f"Param type must be one of {sorted(SENDABLE_TYPES)}.")
    if not isinstance(body.get(kind), dict):
        raise MetaError(131008, details=f"Parameter '{kind}' is required.")
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None and (not isinstance(opaque, str) or len(opaque) > 512):
        raise MetaError(100, details="biz_opaque_callback_data must be a string ≤512 chars.")
    return to, kind


# Interactive messages as Meta validates them (contract §2.6): how long each field may be.
INTERACTIVE_BODY_MAX = 1024
BUTTONS_MAX, BUTTON_ID_MAX, BUTTON_TITLE_MAX = 3, 256, 20
LIST_BUTTON_MAX, LIST_SECTIONS_MAX, LIST_ROWS_MAX = 20, 10, 10
SECTION_TITLE_MAX, ROW_ID_MAX, ROW_TITLE_MAX, ROW_DESCRIPTION_MAX = 24, 200, 24, 72


def _text_field(value: Any, field: str, limit: int, *, required: bool = True) -> None:
    """A text parameter: present when ``required``, a string of at most ``limit`` characters."""
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise MetaError(131008, details=f"Parameter '{field}' is required.")
    if len(value) > limit:
        raise MetaError(
            131009, details=f"Parameter '{field}' is too long: {len(value)} > {limit} characters."
        )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entries(value: Any, field: str, most: int) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise MetaError(131008, details=f"Parameter '{field}' is required (a non-empty list).")
    if len(value) > most:
        raise MetaError(131009, details=f"Parameter '{field}' has more than {most} entries.")
    return value


def check_interactive(interactive: dict[str, Any]) -> None:
    """Reply buttons and lists checked as Meta does; other interactive kinds pass as they are."""
    kind = interactive.get("type")
    action = interactive.get("action")
    if kind not in ("button", "list"):
        return
    _text_field(_object(interactive.get("body")).get("text"), "body.text", INTERACTIVE_BODY_MAX)
    if not isinstance(action, dict):
        raise MetaError(131008, details="Parameter 'action' is required.")
    if kind == "button":
        buttons = _entries(action.get("buttons"), "action.buttons", BUTTONS_MAX)
        for i, button in enumerate(buttons):
            reply = _object(button.get("reply"))
            _text_field(reply.get("id"), f"action.buttons[{i}].reply.id", BUTTON_ID_MAX)
            _text_field(reply.get("title"), f"action.buttons[{i}].reply.title", BUTTON_TITLE_MAX)
        return
    _text_field(action.get("button"), "action.button", LIST_BUTTON_MAX)
    sections = _entries(action.get("sections"), "action.sections", LIST_SECTIONS_MAX)
    ids: set[str] = set()
    for i, section in enumerate(sections):
        field = f"action.sections[{i}]"
        _text_field(
            section.get("title"), f"{field}.title", SECTION_TITLE_MAX, required=len(sections) > 1
        )
        for j, row in enumerate(_entries(section.get("rows"), f"{field}.rows", LIST_ROWS_MAX)):
            _text_field(row.get("id"), f"{field}.rows[{j}].id", ROW_ID_MAX)
            _text_field(row.get("title"), f"{field}.rows[{j}].title", ROW_TITLE_MAX)
            _text_field(
                row.get("description"),
                f"{field}.rows[{j}].description",
                ROW_DESCRIPTION_MAX,
                required=False,
            )
            if row["id"] in ids:
                raise MetaError(131009, details=f"Row id {row['id']!r} is not unique.")
            ids.add(row["id"])
    if len(ids) > LIST_ROWS_MAX:
        raise MetaError(
            131009, details=f"A list has at most {LIST_ROWS_MAX} rows in all its sections."
        )


def check_limits(state: SandboxState, number: NumberState, to: str) -> None:
    now = state.clock()
    if not number.throughput.take(number.config.throughput_per_second, now):
        raise MetaError(130429)
    if not number.pair_allows(to, now):
        raise MetaError(131056)


def injected_fault(state: SandboxState, number: NumberState) -> dict[str, Any] | None:
    """A fault rule that fires: raised now, or returned to become a failed status."""
    for rule in number.config.faults:
        if state.roll(rule.probability):
            if not rule.async_:
                raise MetaError(rule.code)
            _, title, details = CATALOG.get(rule.code, (400, "Error", "Error."))
            return async_error(rule.code, title, details)
    return None


def mark_read(number: NumberState, body: dict[str, Any]) -> dict[str, bool]:
    message_id = body.get("message_id")
    if not isinstance(message_id, str) or not any(
        m.get("id") == message_id for m in number.received
    ):
        raise MetaError(100, details="Invalid message_id.")
    number.read_by_business.add(message_id)
    return {"success": True}


@post("/{version:str}/{phone_number_id:str}/messages", status_code=200)
async def send_message(
    request: Request[Any, Any, Any], version: FromPath[str], phone_number_id: FromPath[str]
) -> dict[str, Any]:
    """Send a message (Cloud API): accepted means queued; delivery arrives as status webhooks."""
    dispatcher = dispatcher_of(request)
    major = graph_major(version)
    number = authorised_number(dispatcher.state, phone_number_id, bearer(request))
    body = await json_object(request)
    # Meta handles a request it received even when the caller stops waiting (a client timeout):
    # the work runs apart from this request, so a disconnect cannot cancel it.
    work = asyncio.get_running_loop().create_task(accept(dispatcher, number, major, body))
    dispatcher.tasks.add(work)
    work.add_done_callback(dispatcher.tasks.discard)
    return await asyncio.shield(work)


async def accept(
    dispatcher: WebhookDispatcher, number: NumberState, major: int, body: dict[str, Any]
) -> dict[str, Any]:
    """Validate and accept one send (after the number's simulated latency)."""
    state = dispatcher.state
    if number.config.latency_ms:
        await asyncio.sleep(number.config.latency_ms / 1000)
    if body.get("status") == "read":
        return mark_read(number, body)
    to, kind = check_shape(body)
    contact = state.contact(to)
    if canonical(to) == canonical(number.config.display_phone_number):
        raise MetaError(131021)
    payload: dict[str, Any] = {kind: body[kind]}
    if kind == "interactive":
        check_interactive(body[kind])
    if kind == "template":
        template, payload["rendered"] = check_template(state.waba(number.config.waba_id), body)
        category, billable = template.category.lower(), True
    else:
        if not number.window_open(to, state.clock()):
            raise MetaError(131047)
        category, billable = "service", False
    check_limits(state, number, to)
    error = injected_fault(state, number)
    if contact.undeliverable:
        if contact.undeliverable_sync:
            raise MetaError(131026)
        error = async_error(131026, *CATALOG[131026][1:])
    message = Outbound(
        id=new_wamid(),
        to=to,
        wa_id=contact.wa_id,
        type=kind,
        payload=payload,
        biz_opaque_callback_data=body.get("biz_opaque_callback_data"),
        pricing_category=category,
        billable=billable,
        created_at=state.clock(),
        status_delays_ms=(
            number.config.sent_delay_ms,
            number.config.delivered_delay_ms,
            number.config.read_delay_ms,
        ),
    )
    number.sent.append(message)
    dispatcher.statuses(number, message, contact, graph_major=major, error=error)
    accepted: dict[str, Any] = {"id": message.id}
    if kind == "template":
        accepted["message_status"] = "accepted"
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": contact.wa_id}],
        "messages": [accepted],
    }


def authorised_waba(state: SandboxState, waba_id: str, token: str) -> Waba:
    numbers = state.numbers_of(waba_id)
    if not numbers:
        raise unknown_object(waba_id) if state.token_known(token) else token_error()
    if not any(secrets.compare_digest(n.config.access_token, token) for n in numbers):
        raise token_error()
    return state.waba(waba_id)


@get("/{version:str}/{waba_id:str}/message_templates")
async def list_templates(
    request: Request[Any, Any, Any],
    version: FromPath[str],
    waba_id: FromPath[str],
    name: FromQuery[str | None] = None,
    limit: FromQuery[int] = 25,
    after: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """List the WABA's templates, optionally filtered by name, with cursor paging."""
    graph_major(version)
    waba = authorised_waba(dispatcher_of(request).state, waba_id, bearer(request))
    templates = [t for t in waba.templates.values() if name is None or t.name == name]
    start = int(after) if after and after.isdigit() else 0
    page = templates[start : start + max(limit, 1)]
    result: dict[str, Any] = {"data": [t.as_graph() for t in page]}
    end = start + len(page)
    if page:
        result["paging"] = {"cursors": {"before": str(start), "after": str(end)}}
        if end < len(templates):
            result["paging"]["next"] = f"{request.url.path}?limit={limit}&after={end}"
    return result


def template_components(body: dict[str, Any]) -> list[dict[str, Any]]:
    components = body.get("components")
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise MetaError(100, details="Param components must be a list of objects.")
    if not any(str(c.get("type", "")).upper() == "BODY" for c in components):
        raise MetaError(100, details="A template needs a BODY component.")
    return components


@post("/{version:str}/{waba_id:str}/message_templates", status_code=200)
async def create_template(
    request: Request[Any, Any, Any], version: FromPath[str], waba_id: FromPath[str]
) -> dict[str, Any]:
    """Create a template: PENDING now, APPROVED or REJECTED after the simulated review."""
    graph_major(version)
    dispatcher = dispatcher_of(request)
    waba = authorised_waba(dispatcher.state, waba_id, bearer(request))
    body = await json_object(request)
    name, language = str(body.get("name", "")), str(body.get("language", ""))
    if not TEMPLATE_NAME.fullmatch(name):
        raise MetaError(100, details="Template name: lowercase letters, digits and underscores.")
    if not language:
        raise MetaError(100, details="Param language is required.")
    category = str(body.get("category", "")).upper()
    if category not in CATEGORIES:
        raise MetaError(100, details=f"Param category must be one of {sorted(CATEGORIES)}.")
    components = template_components(body)
    if (name, language) in waba.templates:
        raise MetaError(
            100,
            title="Invalid parameter",
            details="Content in this language already exists.",
            subcode=2388024,
        )
    template = dispatcher.state.add_template(
        waba,
        name=name,
        language=language,
        category=category,
        components=components,
        parameter_format=str(body.get("parameter_format", "POSITIONAL")).upper(),
    )
    dispatcher.spawn(review(dispatcher, waba, template))
    return {"id": template.id, "status": template.status, "category": template.category}


async def review(dispatcher: WebhookDispatcher, waba: Waba, template: Template) -> None:
    """Meta's review, simulated: rejected when a text contains a word the control API lists."""
    await asyncio.sleep(waba.review_delay_ms / 1000)
    if waba.templates.get((template.name, template.language)) is not template:
        return  # deleted (or replaced) while under review
    texts = " ".join(str(c.get("text", "")) for c in template.components)
    word = waba.find_rejected_word(texts)
    template.status = "REJECTED" if word else "APPROVED"
    template.rejected_reason = "ABUSIVE_CONTENT" if word else "NONE"
    value: dict[str, Any] = {
        "event": template.status,
        "message_template_id": int(template.id),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": template.rejected_reason,
        "message_template_category": template.category,
    }
    numbers = dispatcher.state.numbers_of(waba.waba_id)
    dispatcher.template_status(numbers, waba.waba_id, value)


@post("/{version:str}/{template_id:str}", status_code=200)
async def edit_template(
    request: Request[Any, Any, Any], version: FromPath[str], template_id: FromPath[str]
) -> dict[str, bool]:
    """Edit a template's components (``POST /{TEMPLATE_ID}``): it goes back to review."""
    graph_major(version)
    dispatcher = dispatcher_of(request)
    state, token = dispatcher.state, bearer(request)
    for waba_id in list(state.wabas):
        waba = state.waba(waba_id)
        template = next((t for t in waba.templates.values() if t.id == template_id), None)
        if template is None:
            continue
        authorised_waba(state, waba_id, token)
        body = await json_object(request)
        template.components = template_components(body)
        template.status, template.rejected_reason = "PENDING", "NONE"
        dispatcher.spawn(review(dispatcher, waba, template))
        return {"success": True}
    raise unknown_object(template_id) if state.token_known(token) else token_error()


@delete("/{version:str}/{waba_id:str}/message_templates", status_code=200)
async def delete_template(
    request: Request[Any, Any, Any],
    version: FromPath[str],
    waba_id: FromPath[str],
    name: FromQuery[str],
) -> dict[str, bool]:
    """Delete every language of a template by name; 404 when there is none."""
    graph_major(version)
    waba = authorised_waba(dispatcher_of(request).state, waba_id, bearer(request))
    keys = [key for key in waba.templates if key[0] == name]
    if not keys:
        raise MetaError(100, status=404, details=f"Template {name} does not exist.")
    for key in keys:
        del waba.templates[key]
    return {"success": True}


def inbound_webhook(
    dispatcher: WebhookDispatcher, number: NumberState, message: dict[str, Any], name: str
) -> None:
    """Record a debtor's message, open the 24-hour window and post the signed webhook."""
    sender = message["from"]
    number.received.append(message)
    number.arrivals[message["id"]] = dispatcher.state.clock()
    number.windows[canonical(sender)] = float(message["timestamp"])
    number.throughput.take(number.config.throughput_per_second, dispatcher.state.clock())
    contacts = [{"profile": {"name": name}, "wa_id": sender}]
    payload = envelope(number.config, {"contacts": contacts, "messages": [message]})
    dispatcher.post(number, payload)
    if dispatcher.state.roll(number.config.duplicate_probability):
        dispatcher.post(number, payload, delay_ms=5)  # at-least-once, like Meta's


def whatsapp_lifespan(
    state: SandboxState,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Owns the webhook dispatcher: its HTTP client and background deliveries."""

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        dispatcher = WebhookDispatcher(state, httpx.AsyncClient(timeout=5.0))
        app.state.whatsapp = dispatcher
        try:
            yield
        finally:
            await dispatcher.close()

    return run


graph_router = Router(
    path="/",
    route_handlers=[
        send_message,
        list_templates,
        create_template,
        edit_template,
        delete_template,
    ],
    exception_handlers={MetaError: meta_error_response},
    tags=["whatsapp (Graph API)"],
)
