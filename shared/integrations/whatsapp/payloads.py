"""Request bodies of the WhatsApp Cloud API, built by pure functions.

Each builder returns the JSON body of one request of the contract
(``handbook/reference/whatsapp-cloud-api.md`` §2 and §6) and checks the limits the contract states
before anything reaches the network: a body Meta would reject with a 400 is a bug on our side, and
finding it here costs no request and no pair-rate budget.  Every send carries
``biz_opaque_callback_data`` (our attempt id), which Meta echoes in the status webhooks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Json = dict[str, Any]

__all__ = [
    "ButtonDefinition",
    "CopyCodeButton",
    "Document",
    "InvalidPayload",
    "Json",
    "ListRow",
    "ListSection",
    "QuickReplyButton",
    "QuickReplyDefinition",
    "ReplyButton",
    "TemplateButton",
    "UrlButton",
    "UrlButtonDefinition",
    "body_component",
    "buttons_component",
    "buttons_message",
    "cta_url_message",
    "delete_template_params",
    "document_message",
    "footer_component",
    "header_text_component",
    "list_message",
    "list_templates_params",
    "mark_read",
    "template_components",
    "template_definition",
    "template_message",
    "text_message",
]

# --- limits ----------------------------------------------------------------------------------
# Stated by the contract.
MAX_CALLBACK_DATA = 512
MAX_REPLY_BUTTONS = 3
MAX_REPLY_BUTTON_TITLE = 20
MAX_REPLY_BUTTON_ID = 256
MAX_COPY_CODE = 15
MAX_TEMPLATE_BODY = 1024
MAX_TEMPLATE_HEADER = 60
MAX_TEMPLATE_FOOTER = 60
MAX_TEMPLATE_BUTTON_TEXT = 25
MAX_TEMPLATE_BUTTONS = 10
MAX_TEMPLATE_URL_BUTTONS = 2
# Not in the contract: Meta's documented limits for text, interactive and list messages (the
# contract names the list fields only).  Kept as constants so a change on Meta's side is one line.
MAX_TEXT_BODY = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_CTA_DISPLAY_TEXT = 20
MAX_LIST_BUTTON = 20
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10
MAX_LIST_SECTION_TITLE = 24
MAX_LIST_ROW_ID = 200
MAX_LIST_ROW_TITLE = 24
MAX_LIST_ROW_DESCRIPTION = 72

TEMPLATE_CATEGORIES = ("UTILITY", "MARKETING", "AUTHENTICATION")
DEFAULT_TEMPLATE_FIELDS = (
    "name",
    "language",
    "status",
    "category",
    "quality_score",
    "rejected_reason",
    "components",
)

# Not stated anywhere we trust: generous bounds that only refuse garbage.  A wamid is opaque and
# of variable length; a URL button suffix completes a URL; a quick-reply payload is ours.
_MAX_MESSAGE_ID = 1024
_MAX_URL = 2048
_MAX_BUTTON_PAYLOAD = 256
_RECIPIENT = re.compile(r"\+?[0-9]{8,15}")
# A parameter with a line break, a tab or more than 4 consecutive spaces is a 400 (§2.2).
_BAD_PARAMETER = re.compile(r"[\r\n\t]| {5,}")
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]+")
_COPY_CODE = re.compile(r"[A-Za-z0-9]+")


class InvalidPayload(ValueError):
    """A request body that breaks a limit of the contract.  ``field`` names the offending part."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# --- value objects -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document:
    """A document by public ``link`` or uploaded ``media_id`` (exactly one of them)."""

    link: str | None = None
    media_id: str | None = None
    filename: str | None = None
    caption: str | None = None

    def as_json(self, field: str) -> Json:
        if (self.link is None) == (self.media_id is None):
            raise InvalidPayload(field, "give exactly one of link and media_id")
        body: Json = {"link": self.link} if self.link is not None else {"id": self.media_id}
        if self.filename is not None:
            body["filename"] = self.filename
        if self.caption is not None:
            body["caption"] = self.caption
        return body


@dataclass(frozen=True, slots=True)
class UrlButton:
    """Send-time value of a template URL button: the suffix appended to the approved URL."""

    index: int
    suffix: str


@dataclass(frozen=True, slots=True)
class QuickReplyButton:
    """Send-time payload of a template quick reply, echoed back as ``button.payload``."""

    index: int
    payload: str


@dataclass(frozen=True, slots=True)
class CopyCodeButton:
    """Send-time value of a template copy-code button (≤15 alphanumeric characters)."""

    index: int
    code: str


TemplateButton = UrlButton | QuickReplyButton | CopyCodeButton


@dataclass(frozen=True, slots=True)
class ReplyButton:
    """One reply button of an interactive message."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class ListRow:
    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ListSection:
    rows: Sequence[ListRow]
    title: str | None = None


@dataclass(frozen=True, slots=True)
class UrlButtonDefinition:
    """A URL button of a template being created; ``url`` may end with one ``{{1}}``."""

    text: str
    url: str
    example: str | None = None


@dataclass(frozen=True, slots=True)
class QuickReplyDefinition:
    text: str


ButtonDefinition = UrlButtonDefinition | QuickReplyDefinition


# --- checks ------------------------------------------------------------------------------------


def _check_length(field: str, value: str, limit: int) -> None:
    if not value:
        raise InvalidPayload(field, "must not be empty")
    if len(value) > limit:
        raise InvalidPayload(field, f"longer than {limit} characters")


def _check_recipient(to: str) -> None:
    if not _RECIPIENT.fullmatch(to):
        raise InvalidPayload("to", "must be the digits of a phone number, country code first")


def _check_template_parameter(field: str, value: str) -> None:
    if not value.strip():  # Meta: 131008 "Required parameter is missing"
        raise InvalidPayload(field, "must not be empty or blank")
    if _BAD_PARAMETER.search(value):
        raise InvalidPayload(field, "no newlines, tabs or more than 4 spaces in a row")


# --- sends (§2) --------------------------------------------------------------------------------


def _message(
    to: str, kind: str, content: Json, *, callback_data: str, reply_to: str | None
) -> Json:
    """The envelope shared by every send (§2.1)."""
    _check_recipient(to)
    _check_length("biz_opaque_callback_data", callback_data, MAX_CALLBACK_DATA)
    body: Json = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: content,
        "biz_opaque_callback_data": callback_data,
    }
    if reply_to is not None:
        _check_length("context.message_id", reply_to, _MAX_MESSAGE_ID)
        body["context"] = {"message_id": reply_to}
    return body


def _text_parameters(field: str, values: Sequence[str]) -> list[Json]:
    for i, value in enumerate(values):
        _check_template_parameter(f"{field}[{i}]", value)
    return [{"type": "text", "text": value} for value in values]


def _named_parameters(field: str, values: Mapping[str, str]) -> list[Json]:
    for name, value in values.items():
        _check_template_parameter(f"{field}.{name}", value)
    return [
        {"type": "text", "parameter_name": name, "text": value} for name, value in values.items()
    ]


def _header_component(header: Sequence[str] | Document) -> Json:
    if isinstance(header, Document):
        if header.caption is not None:
            raise InvalidPayload("header.caption", "template document headers take no caption")
        parameters = [{"type": "document", "document": header.as_json("header")}]
    else:
        parameters = _text_parameters("header", header)
    return {"type": "header", "parameters": parameters}


def _button_component(button: TemplateButton) -> Json:
    field = f"buttons[{button.index}]"
    parameter: Json
    if isinstance(button, UrlButton):
        _check_length(field, button.suffix, _MAX_URL)
        sub_type, parameter = "url", {"type": "text", "text": button.suffix}
    elif isinstance(button, QuickReplyButton):
        _check_length(field, button.payload, _MAX_BUTTON_PAYLOAD)
        sub_type, parameter = "quick_reply", {"type": "payload", "payload": button.payload}
    else:
        _check_length(field, button.code, MAX_COPY_CODE)
        if not _COPY_CODE.fullmatch(button.code):
            raise InvalidPayload(field, "a copy code is alphanumeric")
        sub_type, parameter = "copy_code", {"type": "coupon_code", "coupon_code": button.code}
    # Meta's own examples send the index as a string.
    return {
        "type": "button",
        "sub_type": sub_type,
        "index": str(button.index),
        "parameters": [parameter],
    }


def template_components(
    *,
    body: Sequence[str] | Mapping[str, str] = (),
    header: Sequence[str] | Document | None = None,
    buttons: Sequence[TemplateButton] = (),
) -> list[Json]:
    """The ``template.components`` of a send: header, body (positional, or named for templates
    created with ``parameter_format: NAMED``), then the buttons in index order."""
    if isinstance(body, str) or isinstance(header, str):
        raise InvalidPayload("parameters", "give a list of parameters, not one string")
    components: list[Json] = []
    if header is not None:
        components.append(_header_component(header))
    if body:
        parameters = (
            _named_parameters("body", body)
            if isinstance(body, Mapping)
            else _text_parameters("body", body)
        )
        components.append({"type": "body", "parameters": parameters})
    indexes = [b.index for b in buttons]
    if len(set(indexes)) != len(indexes):
        raise InvalidPayload("buttons", "two buttons share an index")
    for button in sorted(buttons, key=lambda b: b.index):
        components.append(_button_component(button))
    return components


def template_message(
    to: str,
    name: str,
    language: str,
    *,
    callback_data: str,
    body: Sequence[str] | Mapping[str, str] = (),
    header: Sequence[str] | Document | None = None,
    buttons: Sequence[TemplateButton] = (),
    reply_to: str | None = None,
) -> Json:
    """An approved template (§2.2): the only message allowed outside the 24 h window.
    ``language`` must be the approved translation's code exactly (``pt_BR``, not ``pt``)."""
    _check_length("template.name", name, 512)
    _check_length("template.language", language, 16)
    template: Json = {"name": name, "language": {"policy": "deterministic", "code": language}}
    components = template_components(body=body, header=header, buttons=buttons)
    if components:
        template["components"] = components
    return _message(to, "template", template, callback_data=callback_data, reply_to=reply_to)


def text_message(
    to: str,
    text: str,
    *,
    callback_data: str,
    preview_url: bool = False,
    reply_to: str | None = None,
) -> Json:
    """Free-form text (§2.4), only inside an open customer-service window."""
    _check_length("text.body", text, MAX_TEXT_BODY)
    content = {"body": text, "preview_url": preview_url}
    return _message(to, "text", content, callback_data=callback_data, reply_to=reply_to)


def document_message(
    to: str, document: Document, *, callback_data: str, reply_to: str | None = None
) -> Json:
    """A document (§2.5) by link or uploaded media id, inside the window."""
    content = document.as_json("document")
    return _message(to, "document", content, callback_data=callback_data, reply_to=reply_to)


def buttons_message(
    to: str,
    text: str,
    buttons: Sequence[ReplyButton],
    *,
    callback_data: str,
    reply_to: str | None = None,
) -> Json:
    """Up to three reply buttons (§2.6); the tapped button's ``id`` comes back inbound."""
    _check_length("interactive.body.text", text, MAX_INTERACTIVE_BODY)
    if not 1 <= len(buttons) <= MAX_REPLY_BUTTONS:
        raise InvalidPayload("buttons", f"give 1 to {MAX_REPLY_BUTTONS} buttons")
    if len({b.id for b in buttons}) != len(buttons):
        raise InvalidPayload("buttons", "button ids must be unique")
    for i, button in enumerate(buttons):
        _check_length(f"buttons[{i}].id", button.id, MAX_REPLY_BUTTON_ID)
        _check_length(f"buttons[{i}].title", button.title, MAX_REPLY_BUTTON_TITLE)
    interactive = {
        "type": "button",
        "body": {"text": text},
        "action": {
            "buttons": [{"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in buttons]
        },
    }
    return _message(to, "interactive", interactive, callback_data=callback_data, reply_to=reply_to)


def _list_row(field: str, row: ListRow) -> Json:
    _check_length(f"{field}.id", row.id, MAX_LIST_ROW_ID)
    _check_length(f"{field}.title", row.title, MAX_LIST_ROW_TITLE)
    body: Json = {"id": row.id, "title": row.title}
    if row.description is not None:
        _check_length(f"{field}.description", row.description, MAX_LIST_ROW_DESCRIPTION)
        body["description"] = row.description
    return body


def _list_section(i: int, section: ListSection, *, many: bool) -> Json:
    field = f"sections[{i}]"
    if not section.rows:
        raise InvalidPayload(f"{field}.rows", "must not be empty")
    body: Json = {}
    if section.title is not None:
        _check_length(f"{field}.title", section.title, MAX_LIST_SECTION_TITLE)
        body["title"] = section.title
    elif many:
        raise InvalidPayload(f"{field}.title", "required when there are several sections")
    body["rows"] = [_list_row(f"{field}.rows[{j}]", row) for j, row in enumerate(section.rows)]
    return body


def list_message(
    to: str,
    text: str,
    button: str,
    sections: Sequence[ListSection],
    *,
    callback_data: str,
    reply_to: str | None = None,
) -> Json:
    """A list message (§2.6): ``button`` opens the list; each row's ``id`` comes back inbound."""
    _check_length("interactive.body.text", text, MAX_INTERACTIVE_BODY)
    _check_length("action.button", button, MAX_LIST_BUTTON)
    if not 1 <= len(sections) <= MAX_LIST_SECTIONS:
        raise InvalidPayload("sections", f"give 1 to {MAX_LIST_SECTIONS} sections")
    rows = [row for section in sections for row in section.rows]
    if len(rows) > MAX_LIST_ROWS:
        raise InvalidPayload("sections", f"at most {MAX_LIST_ROWS} rows in all")
    if len({row.id for row in rows}) != len(rows):
        raise InvalidPayload("sections", "row ids must be unique")
    many = len(sections) > 1
    interactive = {
        "type": "list",
        "body": {"text": text},
        "action": {
            "button": button,
            "sections": [_list_section(i, s, many=many) for i, s in enumerate(sections)],
        },
    }
    return _message(to, "interactive", interactive, callback_data=callback_data, reply_to=reply_to)


def cta_url_message(
    to: str,
    text: str,
    display_text: str,
    url: str,
    *,
    callback_data: str,
    reply_to: str | None = None,
) -> Json:
    """One call-to-action URL button (§2.6), e.g. the payment page."""
    _check_length("interactive.body.text", text, MAX_INTERACTIVE_BODY)
    _check_length("display_text", display_text, MAX_CTA_DISPLAY_TEXT)
    _check_length("url", url, _MAX_URL)
    interactive = {
        "type": "cta_url",
        "body": {"text": text},
        "action": {"name": "cta_url", "parameters": {"display_text": display_text, "url": url}},
    }
    return _message(to, "interactive", interactive, callback_data=callback_data, reply_to=reply_to)


def mark_read(message_id: str, *, typing_indicator: bool = False) -> Json:
    """Mark an inbound message read (§2.7), optionally showing "typing…" to the user."""
    _check_length("message_id", message_id, _MAX_MESSAGE_ID)
    body: Json = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if typing_indicator:
        body["typing_indicator"] = {"type": "text"}
    return body


# --- template management (§6) ------------------------------------------------------------------


def header_text_component(text: str) -> Json:
    _check_length("HEADER.text", text, MAX_TEMPLATE_HEADER)
    return {"type": "HEADER", "format": "TEXT", "text": text}


def body_component(text: str, example: Sequence[str] | Mapping[str, str] | None = None) -> Json:
    """The BODY of a new template with its review example: a list for ``{{1}}``-style
    placeholders, a mapping for named ones (``{{nome}}``, ``parameter_format: NAMED``)."""
    _check_length("BODY.text", text, MAX_TEMPLATE_BODY)
    component: Json = {"type": "BODY", "text": text}
    if isinstance(example, Mapping):
        named = [{"param_name": k, "example": v} for k, v in example.items()]
        component["example"] = {"body_text_named_params": named}
    elif example:
        component["example"] = {"body_text": [list(example)]}
    return component


def footer_component(text: str) -> Json:
    _check_length("FOOTER.text", text, MAX_TEMPLATE_FOOTER)
    return {"type": "FOOTER", "text": text}


def _button_definition(i: int, button: ButtonDefinition) -> Json:
    _check_length(f"BUTTONS[{i}].text", button.text, MAX_TEMPLATE_BUTTON_TEXT)
    if isinstance(button, QuickReplyDefinition):
        return {"type": "QUICK_REPLY", "text": button.text}
    body: Json = {"type": "URL", "text": button.text, "url": button.url}
    if button.example is not None:
        body["example"] = [button.example]
    return body


def buttons_component(buttons: Sequence[ButtonDefinition]) -> Json:
    if not 1 <= len(buttons) <= MAX_TEMPLATE_BUTTONS:
        raise InvalidPayload("BUTTONS", f"give 1 to {MAX_TEMPLATE_BUTTONS} buttons")
    urls = sum(isinstance(b, UrlButtonDefinition) for b in buttons)
    if urls > MAX_TEMPLATE_URL_BUTTONS:
        raise InvalidPayload("BUTTONS", f"at most {MAX_TEMPLATE_URL_BUTTONS} URL buttons")
    return {"type": "BUTTONS", "buttons": [_button_definition(i, b) for i, b in enumerate(buttons)]}


def template_definition(
    name: str,
    language: str,
    category: Literal["UTILITY", "MARKETING", "AUTHENTICATION"],
    components: Sequence[Json],
    *,
    parameter_format: Literal["POSITIONAL", "NAMED"] | None = None,
) -> Json:
    """The body of ``POST /{WABA_ID}/message_templates``.  Names are lowercase letters, digits
    and underscores, unique per WABA and language."""
    if not _TEMPLATE_NAME.fullmatch(name) or len(name) > 512:
        raise InvalidPayload("name", "use lowercase letters, digits and underscores")
    _check_length("language", language, 16)
    if category not in TEMPLATE_CATEGORIES:
        raise InvalidPayload("category", f"one of {', '.join(TEMPLATE_CATEGORIES)}")
    if not any(c.get("type") == "BODY" for c in components):
        raise InvalidPayload("components", "a template needs a BODY")
    body: Json = {
        "name": name,
        "language": language,
        "category": category,
        "components": list(components),
    }
    if parameter_format is not None:
        body["parameter_format"] = parameter_format
    return body


def list_templates_params(
    *,
    fields: Sequence[str] = DEFAULT_TEMPLATE_FIELDS,
    limit: int | None = None,
    name: str | None = None,
    after: str | None = None,
) -> dict[str, str]:
    """Query of ``GET /{WABA_ID}/message_templates``; ``after`` is the paging cursor."""
    params = {"fields": ",".join(fields)}
    if limit is not None:
        if limit < 1:
            raise InvalidPayload("limit", "must be positive")
        params["limit"] = str(limit)
    if name is not None:
        params["name"] = name
    if after is not None:
        params["after"] = after
    return params


def delete_template_params(name: str) -> dict[str, str]:
    """Query of ``DELETE /{WABA_ID}/message_templates``: every language of ``name`` goes."""
    _check_length("name", name, 512)
    return {"name": name}
