"""Reading an import file as it streams in: decode the bytes, split them into records (CSV or
JSON Lines), map the header to Quita's fields and normalize every row with the Brazilian codecs.

Nothing here holds the whole file: bytes go in chunk by chunk and rows come out as they complete,
so memory stays flat whatever the file's size.  A structural problem — binary data, bytes the
charset cannot decode, no recognizable header, a line over 1 MiB, a JSON line that is not an
object — raises :class:`FileRejected` and the whole file is refused.  A bad row only produces
:class:`RowError` entries (every problem of the row, by field) and is left out; the other rows go
on.

Header names are matched after lowercasing, dropping accents and anything in parentheses, and
turning runs of other characters into ``_``: ``"Data de Vencimento"`` is ``data_de_vencimento``,
``"Valor (R$)"`` is ``valor``, ``"Telefone 2"`` is a phone column.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import itertools
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import phonenumbers

from shared.brazil.boleto import parse_boleto
from shared.brazil.calendar import UFS
from shared.brazil.documents import normalize_document
from shared.brazil.errors import InvalidValue
from shared.brazil.numbers import parse_amount, parse_date
from shared.brazil.phones import normalize_phone

Format = Literal["csv", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "jsonl")

MAX_LINE_CHARS: Final = 1 << 20  # 1 MiB of text on one physical line
MAX_PHONES: Final = 10
MAX_TAGS: Final = 50
MAX_PRINCIPAL: Final = Decimal("1000000000000")  # numeric(14, 2)
MIN_DUE_DATE: Final = date(2000, 1, 1)
MAX_DUE_DATE: Final = date(2100, 12, 31)
MAX_URL: Final = 2048
_CACHE_LIMIT: Final = 50_000  # entries per normalization cache, then it starts over
_CUSTOMER_CACHE_LIMIT: Final = 10_000  # whole customers (their lines are usually together)

# The canonical fields (English names, as in the API), in staging-table order.
CUSTOMER_FIELDS: Final = (
    "customer_external_id",
    "name",
    "document",
    "phones",
    "email",
    "state",
    "city",
    "tags",
)
INSTALLMENT_FIELDS: Final = (
    "external_id",
    "contract",
    "number",
    "count",
    "principal",
    "due_date",
    "boleto_line",
    "payment_url",
    "description",
)
FIELDS: Final = CUSTOMER_FIELDS + INSTALLMENT_FIELDS

# The columns of ``import_rows``, in the order of the tuples :meth:`RowNormalizer.row` returns.
ROW_COLUMNS: Final = ("import_id", "line", "tenant_id", *FIELDS)

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "customer_external_id": (
        "customer_external_id",
        "customer_id",
        "cliente_id",
        "id_cliente",
        "codigo_cliente",
        "cod_cliente",
    ),
    "name": ("name", "nome", "cliente", "nome_cliente"),
    "document": ("document", "cpf", "cnpj", "cpf_cnpj", "documento"),
    "phones": ("phones", "phone", "telefone", "telefones", "celular", "whatsapp"),
    "email": ("email", "e_mail"),
    "state": ("state", "uf", "estado"),
    "city": ("city", "cidade", "municipio"),
    "tags": ("tags", "segmento", "segmentos"),
    "external_id": (
        "external_id",
        "installment_external_id",
        "id_parcela",
        "codigo_parcela",
        "titulo",
    ),
    "contract": ("contract", "contrato"),
    "number": ("number", "parcela", "numero_parcela"),
    "count": ("count", "total_parcelas", "qtd_parcelas", "parcelas"),
    "principal": ("principal", "amount", "valor", "valor_parcela"),
    "due_date": ("due_date", "vencimento", "data_vencimento"),
    "boleto_line": ("boleto", "boleto_line", "linha_digitavel"),
    "payment_url": ("payment_url", "link_pagamento", "payment_link"),
    "description": ("description", "descricao"),
}
_ALIAS: Final = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
# Fields several columns may feed (``telefone;celular``): their cells are concatenated.
_MULTI: Final = frozenset({"phones", "tags"})


class FileRejected(Exception):
    """The file as a whole cannot be imported; ``reason`` says why, for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row: the physical line where the row starts (the header is line 1),
    the canonical field (``None`` for the row as a whole) and a short English sentence."""

    line: int
    field: str | None
    reason: str


# --- names ---------------------------------------------------------------------------------------

_PARENTHESES = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_NUMBERED = re.compile(r"^(.*?)_?[0-9]{1,2}$")


def header_key(raw: str) -> str:
    """``"Data de Vencimento "`` → ``data_de_vencimento``; ``"Valor (R$)"`` → ``valor``."""
    text = unicodedata.normalize("NFKD", raw.replace("\ufeff", "")).lower()
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _PARENTHESES.sub(" ", text)
    return _NOT_WORD.sub("_", text).strip("_")


def canonical_field(raw: str) -> str | None:
    """The field a column (or JSON key) named ``raw`` feeds, ``None`` if none."""
    key = header_key(raw)
    found = _ALIAS.get(key)
    if found is None:
        numbered = _NUMBERED.match(key)  # "telefone_2", "celular2"
        if numbered and _ALIAS.get(numbered.group(1)) == "phones":
            found = "phones"
    return found


def _sentence(reason: str) -> str:
    text = reason.strip()
    if not text:
        return "Invalid value."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


# --- bytes to lines ------------------------------------------------------------------------------

_MAGIC: Final = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx); export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls); export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed data"),
)
_UTF16_BOMS: Final = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def resolve_encoding(name: str | None) -> str | None:
    """The codec for a declared charset (``None``: UTF-8 with an optional BOM, or UTF-16 when
    the file starts with its BOM).  Raises ``LookupError`` for an unknown charset."""
    if name is None or not name.strip():
        return None
    return codecs.lookup(name.strip().strip('"').lower()).name


class Decoder:
    """Bytes in, complete lines out (each ending with ``\\n``; ``\\r\\n`` and a lone ``\\r``
    become ``\\n``), checking the file is text in the declared charset as it goes."""

    def __init__(self, encoding: str | None = None) -> None:
        self.declared = encoding
        self.encoding = encoding or "utf-8"
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.lines_out = 0  # complete lines handed out so far
        self._decoder: codecs.IncrementalDecoder | None = None
        self._head = b""
        self._raw_nul_check = True
        self._tail = ""
        self._cr = False

    @property
    def label(self) -> str:
        return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8"}.get(self.encoding, self.encoding)

    def feed(self, data: bytes, final: bool = False) -> list[str]:
        if data:
            self.sha256.update(data)
            self.bytes_read += len(data)
        if self._decoder is None:
            self._head += data
            if len(self._head) < 8 and not final:
                return []
            data, self._head = self._head, b""
            self._start(data)
        assert self._decoder is not None
        if self._raw_nul_check and b"\x00" in data:
            raise FileRejected("The file looks binary (it contains NUL bytes), not CSV or text.")
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            line = self.lines_out + data[: max(exc.start, 0)].count(b"\n")
            hint = (
                " If it was saved by Excel, declare the charset, e.g. "
                "Content-Type: text/csv; charset=windows-1252."
                if self.label == "UTF-8"
                else ""
            )
            raise FileRejected(
                f"The file is not valid {self.label} text (line {line + 1}).{hint}"
            ) from None
        if not self._raw_nul_check and "\x00" in text:
            raise FileRejected("The file looks binary (it contains NUL characters), not text.")
        return self._lines(text, final)

    def _start(self, head: bytes) -> None:
        if self.declared is None and head.startswith(_UTF16_BOMS):
            self.encoding = "utf-16"
        elif self.encoding == "utf-8":
            self.encoding = "utf-8-sig"  # drops a BOM, accepts its absence
        wide = self.encoding.startswith(("utf-16", "utf-32"))
        self._raw_nul_check = not wide
        if not wide:
            for magic, what in _MAGIC:
                if head.startswith(magic):
                    raise FileRejected(f"The file is {what}, not CSV or JSON Lines text.")
        self._decoder = codecs.getincrementaldecoder(self.encoding)(errors="strict")
        if self.bytes_read == 0:
            raise FileRejected("The file is empty.")

    def _lines(self, text: str, final: bool) -> list[str]:
        if self._cr:
            text = "\r" + text
            self._cr = False
        if text.endswith("\r") and not final:
            text = text[:-1]
            self._cr = True
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._tail += text
            if final and self._tail:
                return self._emit([self._tail], "")
            self._check_tail()
            return []
        parts = text.split("\n")
        parts[0] = self._tail + parts[0]
        tail = parts.pop()
        if final and tail:
            parts.append(tail)
            tail = ""
        return self._emit(parts, tail)

    def _emit(self, parts: list[str], tail: str) -> list[str]:
        if max(map(len, parts)) > MAX_LINE_CHARS:
            index = next(i for i, p in enumerate(parts) if len(p) > MAX_LINE_CHARS)
            raise self._too_long(self.lines_out + index + 1)
        self.lines_out += len(parts)
        self._tail = tail
        self._check_tail()
        return [p + "\n" for p in parts]

    def _check_tail(self) -> None:
        if len(self._tail) > MAX_LINE_CHARS:
            raise self._too_long(self.lines_out + 1)

    @staticmethod
    def _too_long(line: int) -> FileRejected:
        return FileRejected(
            f"Line {line} is longer than 1 MiB; the file does not look like CSV or JSON Lines."
        )


# --- lines to records ----------------------------------------------------------------------------

Record = tuple[int, Any]  # (line where the record starts, its cells or JSON object)


def sniff_delimiter(line: str) -> str:
    """``;``, ``,`` or tab: whichever the header line uses most (``;`` wins a tie, as in
    Brazilian Excel exports)."""
    counts = {d: line.count(d) for d in (";", ",", "\t")}
    best = max(counts.values())
    if best == 0:
        return ","
    return next(d for d in (";", ",", "\t") if counts[d] == best)


class CsvRecords:
    """Physical lines in, CSV records out, with the line each record starts on.

    The ``csv`` module does the parsing (quotes, doubled quotes, delimiters and line breaks
    inside quoted fields).  A record whose quoted field continues past the lines received so far
    is kept back and parsed again when more lines arrive."""

    def __init__(self) -> None:
        self.delimiter: str | None = None
        self._pending: list[str] = []
        self._next_line = 1  # the physical line number of _pending[0]

    def feed(self, lines: list[str], final: bool = False) -> list[Record]:
        buf = self._pending + lines if self._pending else lines
        if self.delimiter is None:
            first = next((line for line in buf if line.strip()), None)
            if first is None:
                self._pending = [] if final else buf
                return []
            self.delimiter = sniff_delimiter(first)
        starved: list[bool] = []
        reader = csv.reader(
            itertools.chain(buf, _mark_end(starved)),
            delimiter=self.delimiter,
            quotechar='"',
            doublequote=True,
            strict=False,
        )
        out: list[Record] = []
        consumed = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                consumed = len(buf)
                break
            except csv.Error as exc:
                line = self._next_line + consumed
                raise FileRejected(f"Line {line} cannot be read as CSV: {exc}.") from None
            if starved:
                if not final:
                    break  # the record goes on in lines not received yet
                raise FileRejected(
                    f"Line {self._next_line + consumed}: a quoted field is never closed."
                )
            start = self._next_line + consumed
            consumed = reader.line_num
            if "".join(cells).strip():
                out.append((start, cells))
        self._pending = buf[consumed:]
        self._next_line += consumed
        return out


def _mark_end(flag: list[bool]) -> Iterator[str]:
    """An empty iterator that notes it was reached: the reader wanted more lines."""
    flag.append(True)
    return
    yield  # pragma: no cover  (makes this a generator)


class JsonlRecords:
    """Physical lines in, JSON objects out (blank lines skipped).  Numbers with a fraction are
    read as ``Decimal``, never as floats."""

    def __init__(self) -> None:
        self._next_line = 1

    def feed(self, lines: list[str], final: bool = False) -> list[Record]:
        out: list[Record] = []
        line_no = self._next_line
        for line in lines:
            if line.strip():
                try:
                    obj = json.loads(line, parse_float=Decimal)
                except ValueError as exc:
                    msg = getattr(exc, "msg", "invalid JSON")
                    raise FileRejected(f"Line {line_no} is not valid JSON: {msg}.") from None
                if not isinstance(obj, dict):
                    raise FileRejected(f"Line {line_no} is not a JSON object.")
                out.append((line_no, obj))
            line_no += 1
        self._next_line = line_no
        return out


# --- the header ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """Which cell feeds which field, and what the file's columns say about the import."""

    columns: dict[str, tuple[int, ...]]  # field -> cell indexes
    width: int
    notices: tuple[RowError, ...]  # unknown and duplicate columns (line 1)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.columns)


def read_header(cells: list[str], line: int = 1) -> Header:
    """Map a CSV header to fields; :class:`FileRejected` if it is not a usable header."""
    columns: dict[str, list[int]] = {}
    notices: list[RowError] = []
    for index, raw in enumerate(cells):
        label = raw.strip().replace("\ufeff", "")
        if not label:
            continue
        name = canonical_field(label)
        if name is None:
            notices.append(RowError(line, label[:64], "Unknown column; ignored."))
        elif name in columns and name not in _MULTI:
            notices.append(
                RowError(line, label[:64], f"Another column already gives {name}; ignored.")
            )
        else:
            columns.setdefault(name, []).append(index)
    if not columns:
        raise FileRejected(
            "The file has no recognizable header: its first line must name the columns, "
            "e.g. nome;cpf;telefone;parcela;valor;vencimento."
        )
    _check_columns(frozenset(columns))
    return Header({k: tuple(v) for k, v in columns.items()}, len(cells), tuple(notices))


def _check_columns(fields: frozenset[str]) -> None:
    if "name" not in fields:
        raise FileRejected("The header has no column for the customer's name (name or nome).")
    if not fields & {"customer_external_id", "document"}:
        raise FileRejected(
            "The header has no column identifying the customer: customer_id (codigo_cliente) "
            "or document (cpf)."
        )
    if fields & set(INSTALLMENT_FIELDS):
        missing = [f for f in ("principal", "due_date") if f not in fields]
        if missing:
            names = {"principal": "principal (valor)", "due_date": "due_date (vencimento)"}
            raise FileRejected(
                "The header has installment columns but none for "
                + " and ".join(names[m] for m in missing)
                + "."
            )
        if "external_id" not in fields and not {"contract", "number"} <= fields:
            raise FileRejected(
                "The header has no column identifying the installment: external_id "
                "(id_parcela), or both contract (contrato) and number (parcela)."
            )


def stored_fields(fields: frozenset[str]) -> frozenset[str]:
    """The fields an import writes: those it has columns for (``number`` and ``count`` travel
    together, since ``parcela`` may carry both)."""
    out = set(fields)
    if out & {"number", "count"}:
        out |= {"number", "count"}
    return frozenset(out)


# --- rows ----------------------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Cache:
    """Memoized normalization of repeated cells (a customer's document, phones, state, the
    same due dates and amounts): ``(True, value)`` or ``(False, reason)``."""

    __slots__ = ("_data", "_fn")

    def __init__(self, fn: Callable[[str], Any]) -> None:
        self._fn = fn
        self._data: dict[str, tuple[bool, Any]] = {}

    def __call__(self, raw: str) -> Any:
        hit = self._data.get(raw)
        if hit is None:
            try:
                hit = (True, self._fn(raw))
            except InvalidValue as exc:
                hit = (False, _sentence(exc.reason))
            except _Bad as exc:
                hit = (False, exc.reason)
            if len(self._data) >= _CACHE_LIMIT:
                self._data.clear()
            self._data[raw] = hit
        if hit[0]:
            return hit[1]
        raise _Bad(hit[1])


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NUMBER = re.compile(r"^([0-9]{1,6})(?:\s*(?:/|de|of)\s*([0-9]{1,6}))?$", re.IGNORECASE)
_COUNT = re.compile(r"^[0-9]{1,6}$")
_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
_UFS = frozenset(UFS)


def _text(raw: Any) -> str:
    """A cell or JSON value as text (``""`` for empty or null)."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        raise _Bad("Must be a text value.")
    return str(raw)


# The shape nearly every Brazilian export uses: "(11) 98765-4321", "11 3456-7890",
# "11987654321".  DDD first digit and second digit 1-9 (no national prefix 0, no "90" carrier
# prefix), then 8 or 9 digits.
_PLAIN_BR_PHONE = re.compile(r"\s*\(?([1-9][1-9])\)?[\s.-]*([0-9]{4,5})[\s.-]?([0-9]{4})\s*")


def fast_phone(raw: str) -> str:
    """:func:`normalize_phone` for numbers written the plain Brazilian way, without its costly
    ``phonenumbers.parse`` (about 5x faster): a number of that shape parses to country 55 and
    its digits as the national number, so only the validation is left, and it is the same
    ``phonenumbers.is_valid_number``.  Anything else — and every invalid number, so that the
    reason is the codec's — goes to :func:`normalize_phone`.  Tests check both agree."""
    match = _PLAIN_BR_PHONE.fullmatch(raw)
    if match is not None:
        digits = match.group(1) + match.group(2) + match.group(3)
        number = phonenumbers.PhoneNumber(country_code=55, national_number=int(digits))
        if phonenumbers.is_valid_number(number):
            return "+55" + digits
    return normalize_phone(raw)


def _phone_cell(separators: re.Pattern[str]) -> Callable[[str], list[str]]:
    def parse(raw: str) -> list[str]:
        parts = [p for p in separators.split(raw) if p.strip()]
        numbers: list[str] = []
        for i, part in enumerate(parts, 1):
            try:
                number = fast_phone(part)
            except InvalidValue as exc:
                where = f"Phone {i} of {len(parts)}: " if len(parts) > 1 else ""
                raise _Bad(where + _sentence(exc.reason)) from None
            if number not in numbers:
                numbers.append(number)
        if len(numbers) > MAX_PHONES:
            raise _Bad(f"At most {MAX_PHONES} phone numbers per customer.")
        return numbers

    return parse


def _state(raw: str) -> str:
    uf = raw.strip().upper()
    if uf not in _UFS:
        raise _Bad("Must be a Brazilian state code (UF) such as SP.")
    return uf


def _amount(raw: str) -> Decimal:
    value = parse_amount(raw)
    return _check_amount(value)


def _check_amount(value: Decimal) -> Decimal:
    if value <= 0:
        raise _Bad("The amount must be greater than zero.")
    if value >= MAX_PRINCIPAL:
        raise _Bad("The amount is too large.")
    return value


def _json_amount(value: int | Decimal) -> Decimal:
    try:
        exact = Decimal(value)
        if not exact.is_finite():
            raise InvalidOperation
        quantized = exact.quantize(Decimal("0.01"))
    except InvalidOperation:
        raise _Bad("The amount is not a number such as 1234.56.") from None
    if quantized != exact:
        raise _Bad("The amount has more than 2 decimal places.")
    return _check_amount(quantized)


def _due(raw: str) -> date:
    day = parse_date(raw)
    if not MIN_DUE_DATE <= day <= MAX_DUE_DATE:
        raise _Bad("The due date must be between 01/01/2000 and 31/12/2100.")
    return day


def _boleto(raw: str) -> str:
    return parse_boleto(raw).line


def _number(raw: str) -> tuple[int, int | None]:
    match = _NUMBER.match(raw.strip())
    if match is None:
        raise _Bad("Must be an installment number such as 3, 3/10 or 3 de 10.")
    number = int(match.group(1))
    count = int(match.group(2)) if match.group(2) else None
    if number < 1:
        raise _Bad("The installment number must be 1 or more.")
    if count is not None and count < 1:
        raise _Bad("The number of installments must be 1 or more.")
    return number, count


def _count(raw: str) -> int:
    if not _COUNT.match(raw.strip()):
        raise _Bad("Must be the number of installments, such as 10.")
    count = int(raw)
    if count < 1:
        raise _Bad("The number of installments must be 1 or more.")
    return count


def _squash(raw: str) -> str:
    return " ".join(raw.split())


class _Row:
    """The problems found so far in one row."""

    __slots__ = ("errors", "line")

    def __init__(self, line: int) -> None:
        self.line = line
        self.errors: list[RowError] = []

    def bad(self, field: str, reason: str) -> None:
        self.errors.append(RowError(self.line, field, reason))

    def reported(self, *fields: str) -> bool:
        return any(e.field in fields for e in self.errors)


class RowNormalizer:
    """Turns one row (field → raw cell or JSON value) into the tuple staged in ``import_rows``
    (see :data:`ROW_COLUMNS`), or the list of everything wrong with it.

    ``installments``: whether rows carry an installment (CSV: the file has installment columns);
    ``None`` decides per row (JSON Lines: an object with any installment key)."""

    def __init__(
        self,
        *,
        import_id: uuid.UUID,
        tenant_id: uuid.UUID,
        installments: bool | None,
        phone_separators: str = "|/;,",
    ) -> None:
        self.import_id = import_id
        self.tenant_id = tenant_id
        self.installments = installments
        separators = re.compile("[" + re.escape(phone_separators) + "]")
        self._document = _Cache(normalize_document)
        self._phones = _Cache(_phone_cell(separators))
        self._state = _Cache(_state)
        self._amount = _Cache(_amount)
        self._due = _Cache(_due)
        self._boleto = _Cache(_boleto)
        self._number = _Cache(_number)
        self._customers: dict[tuple[Any, ...], tuple[Any, ...] | list[tuple[str, str]]] = {}

    def row(self, line: int, values: Mapping[str, Any]) -> tuple[Any, ...] | list[RowError]:
        # A customer's cells repeat on each of its installments' lines: normalize them once.
        key: tuple[Any, ...] | None = tuple(map(values.get, CUSTOMER_FIELDS))
        try:
            customer = self._customers.get(key)  # type: ignore[arg-type]
        except TypeError:  # a JSON list (phones, tags) cannot be a key
            key, customer = None, None
        if customer is None:
            customer = self._customer(values)
            if key is not None:
                if len(self._customers) >= _CUSTOMER_CACHE_LIMIT:
                    self._customers.clear()
                self._customers[key] = customer
        r = _Row(line)
        if type(customer) is list:
            for field, reason in customer:
                r.bad(field, reason)
        wanted = self.installments
        if wanted is None:
            wanted = any(f in values for f in INSTALLMENT_FIELDS)
        installment = self._installment(r, values) if wanted else _NO_INSTALLMENT
        if r.errors:
            return r.errors
        return (self.import_id, line, self.tenant_id, *customer, *installment)

    def _customer(self, values: Mapping[str, Any]) -> tuple[Any, ...] | list[tuple[str, str]]:
        """The customer's fields in :data:`CUSTOMER_FIELDS` order, or its problems."""
        r = _Row(0)
        get = values.get
        document = None
        try:
            raw = _text(get("document")).strip()
            document = self._document(raw) if raw else None
        except _Bad as exc:
            r.bad("document", exc.reason)
        customer_id = _ident(r, get("customer_external_id"), "customer_external_id")
        if not customer_id and not r.reported("document", "customer_external_id"):
            if document:
                customer_id = document
            else:
                r.bad(
                    "customer_external_id",
                    "A customer id (or the customer's CPF/CNPJ) is required.",
                )
        name = _short(r, get("name"), "name", 200)
        if name is None and not r.reported("name"):
            r.bad("name", "The customer's name is required.")
        phones = self._phone_list(r, get("phones"))
        email = None
        try:
            email = _text(get("email")).strip().lower() or None
            if email and (len(email) > 254 or not _EMAIL.match(email)):
                r.bad("email", "Not a valid e-mail address.")
        except _Bad as exc:
            r.bad("email", exc.reason)
        state = None
        try:
            raw = _text(get("state")).strip()
            state = self._state(raw) if raw else None
        except _Bad as exc:
            r.bad("state", exc.reason)
        city = _short(r, get("city"), "city", 100)
        tags = _tags(r, get("tags"))
        if r.errors:
            return [(e.field or "", e.reason) for e in r.errors]
        return (customer_id, name, document, phones, email, state, city, tags)

    def _installment(self, r: _Row, values: Mapping[str, Any]) -> tuple[Any, ...]:
        get = values.get
        contract = _ident(r, get("contract"), "contract") or None
        number = count = None
        raw_number = get("number")
        if raw_number is not None and raw_number != "":
            try:
                if type(raw_number) is int:
                    raw_number = str(raw_number)
                raw = _text(raw_number).strip()
                if raw:
                    number, count = self._number(raw)
            except _Bad as exc:
                r.bad("number", exc.reason)
        raw_count = get("count")
        if raw_count is not None and raw_count != "":
            try:
                raw = _text(raw_count).strip()
                if raw:
                    given = _count(raw)
                    if count is not None and given != count:
                        r.bad(
                            "count", "Does not match the total given with the installment number."
                        )
                    count = given
            except _Bad as exc:
                r.bad("count", exc.reason)
        if number is not None and count is not None and number > count:
            r.bad("number", "The installment number must not be greater than the count.")
        principal = None
        raw_principal = get("principal")
        try:
            if type(raw_principal) is str:
                if raw_principal.strip():
                    principal = self._amount(raw_principal)
                else:
                    r.bad("principal", "The amount (principal) is required.")
            elif isinstance(raw_principal, int | Decimal) and type(raw_principal) is not bool:
                principal = _json_amount(raw_principal)
            elif (raw := _text(raw_principal)).strip():
                principal = self._amount(raw)
            else:
                r.bad("principal", "The amount (principal) is required.")
        except _Bad as exc:
            r.bad("principal", exc.reason)
        due_date = None
        try:
            raw_due = get("due_date")
            raw = raw_due if type(raw_due) is str else _text(raw_due)
            if raw.strip():
                due_date = self._due(raw)
            else:
                r.bad("due_date", "The due date is required.")
        except _Bad as exc:
            r.bad("due_date", exc.reason)
        boleto = url = description = None
        if raw_boleto := get("boleto_line"):
            try:
                raw = _text(raw_boleto).strip()
                boleto = self._boleto(raw) if raw else None
            except _Bad as exc:
                r.bad("boleto_line", exc.reason)
        if raw_url := get("payment_url"):
            try:
                url = _text(raw_url).strip() or None
                if url and (len(url) > MAX_URL or not _URL.match(url)):
                    r.bad("payment_url", "Must be an http(s) URL.")
            except _Bad as exc:
                r.bad("payment_url", exc.reason)
        if raw_description := get("description"):
            description = _short(r, raw_description, "description", 300)
        external_id = _ident(r, get("external_id"), "external_id")
        if not external_id and not r.reported("external_id"):
            if contract and number is not None:
                external_id = f"{contract}-{number}"
                if len(external_id) > 64:
                    r.bad("external_id", "The id made of contract and number is too long.")
            elif not r.reported("contract", "number"):
                r.bad(
                    "external_id",
                    "The installment needs an id (external_id), or a contract and a number.",
                )
        return (
            external_id or None,
            contract,
            number,
            count,
            principal,
            due_date,
            boleto,
            url,
            description,
        )

    def _phone_list(self, r: _Row, raw: Any) -> list[str] | None:
        try:
            if isinstance(raw, list):
                raw = "|".join(_text(p) for p in raw)
            text = _text(raw)
            if not text.strip():
                return None
            numbers: list[str] = self._phones(text)
            return numbers or None
        except _Bad as exc:
            r.bad("phones", exc.reason)
            return None


_NO_INSTALLMENT: Final[tuple[None, ...]] = (None,) * len(INSTALLMENT_FIELDS)
_TAG_SEPARATORS = re.compile(r"[|,]")


def _ident(r: _Row, raw: Any, field: str) -> str:
    """An id (the customer's, the installment's, a contract): trimmed, at most 64 characters."""
    if type(raw) is str:
        text = raw.strip()
    else:
        try:
            text = _text(raw).strip()
        except _Bad as exc:
            r.bad(field, exc.reason)
            return ""
    if len(text) > 64:
        r.bad(field, "Longer than 64 characters.")
    return text


def _short(r: _Row, raw: Any, field: str, limit: int) -> str | None:
    """Free text on one line: runs of white space (line breaks too) become one space."""
    try:
        text = _squash(_text(raw))
    except _Bad as exc:
        r.bad(field, exc.reason)
        return None
    if len(text) > limit:
        r.bad(field, f"Longer than {limit} characters.")
    return text or None


def _tags(r: _Row, raw: Any) -> list[str] | None:
    try:
        parts = (
            [_text(t) for t in raw] if isinstance(raw, list) else _TAG_SEPARATORS.split(_text(raw))
        )
    except _Bad as exc:
        r.bad("tags", exc.reason)
        return None
    tags = list(dict.fromkeys(t for t in map(_squash, parts) if t))
    if any(len(t) > 64 for t in tags):
        r.bad("tags", "A tag is longer than 64 characters.")
    elif len(tags) > MAX_TAGS:
        r.bad("tags", f"At most {MAX_TAGS} tags per customer.")
    return tags or None


# --- the whole file ------------------------------------------------------------------------------


@dataclass(slots=True)
class Parsed:
    """What one chunk of the file produced: rows ready for staging and row errors."""

    rows: list[tuple[Any, ...]]
    errors: list[RowError]
    rejected: int = 0  # rows left out (each has one or more errors)


class ImportReader:
    """The file, chunk by chunk: :meth:`feed` bytes as they arrive, then :meth:`finish`.

    ``fmt`` ``None`` detects the format from the first line (``{`` starts JSON Lines);
    ``encoding`` ``None`` means UTF-8 with or without a BOM."""

    def __init__(
        self,
        *,
        import_id: uuid.UUID,
        tenant_id: uuid.UUID,
        fmt: Format | None = None,
        encoding: str | None = None,
    ) -> None:
        self.import_id = import_id
        self.tenant_id = tenant_id
        self.format: Format | None = fmt
        self.decoder = Decoder(encoding)
        self.rows_total = 0
        self.header: Header | None = None
        self._early: list[str] = []  # lines seen before the format is known
        self._csv = CsvRecords()
        self._jsonl = JsonlRecords()
        self._normalizer: RowNormalizer | None = None
        self._single: list[tuple[str, int]] = []
        self._multi: list[tuple[str, tuple[int, ...]]] = []
        self._width = 0
        self._keys: dict[str, str | None] = {}  # JSON key -> field
        self._seen: set[str] = set()  # fields met in JSON objects
        self._noted: set[str] = set()  # JSON keys already reported

    @property
    def fields(self) -> frozenset[str]:
        """The fields the file has columns (CSV) or keys (JSON Lines) for."""
        return self.header.fields if self.header is not None else frozenset(self._seen)

    @property
    def sha256(self) -> str:
        return self.decoder.sha256.hexdigest()

    @property
    def bytes_read(self) -> int:
        return self.decoder.bytes_read

    def feed(self, data: bytes) -> Parsed:
        return self._lines(self.decoder.feed(data), final=False)

    def finish(self) -> Parsed:
        parsed = self._lines(self.decoder.feed(b"", final=True), final=True)
        if self.format is None or (self.format == "csv" and self.header is None):
            raise FileRejected(
                "The file has no recognizable header: its first line must name the columns, "
                "e.g. nome;cpf;telefone;parcela;valor;vencimento."
            )
        return parsed

    def _lines(self, lines: list[str], final: bool) -> Parsed:
        if self.format is None:
            self._early.extend(lines)
            first = next((line for line in self._early if line.strip()), None)
            if first is None:
                if len(self._early) > 10_000:
                    raise FileRejected("The file starts with more than 10,000 blank lines.")
                return Parsed([], [])
            self.format = "jsonl" if first.lstrip().startswith("{") else "csv"
            lines, self._early = self._early, []
        elif self._early:
            lines, self._early = self._early + lines, []
        if self.format == "jsonl":
            return self._objects(self._jsonl.feed(lines, final))
        return self._records(self._csv.feed(lines, final))

    def _records(self, records: list[Record]) -> Parsed:
        out = Parsed([], [])
        for line, cells in records:
            if self._normalizer is None:
                self._start_csv(line, cells, out)
                continue
            self.rows_total += 1
            width = self._width
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                out.errors.append(
                    RowError(
                        line,
                        None,
                        f"The row has {len(cells)} cells but the header has {width}; "
                        "a value containing the delimiter may be missing its quotes.",
                    )
                )
                out.rejected += 1
                continue
            result = self._normalizer.row(line, self._values(cells))
            if type(result) is tuple:
                out.rows.append(result)
            else:
                out.errors.extend(result)
                out.rejected += 1
        return out

    def _start_csv(self, line: int, cells: list[str], out: Parsed) -> None:
        header = read_header(cells, line)
        self.header = header
        self._single = [(f, i[0]) for f, i in header.columns.items() if len(i) == 1]
        self._multi = [(f, i) for f, i in header.columns.items() if len(i) > 1]
        self._width = header.width
        out.errors.extend(header.notices)
        separators = "|/;" if self._csv.delimiter == "," else "|/;,"
        self._normalizer = RowNormalizer(
            import_id=self.import_id,
            tenant_id=self.tenant_id,
            installments=bool(header.fields & set(INSTALLMENT_FIELDS)),
            phone_separators=separators,
        )

    def _values(self, cells: list[str]) -> dict[str, Any]:
        if len(cells) < self._width:
            cells = cells + [""] * (self._width - len(cells))
        values: dict[str, Any] = {field: cells[i] for field, i in self._single}
        for field, indexes in self._multi:
            values[field] = "|".join(cells[i] for i in indexes if cells[i].strip())
        return values

    def _objects(self, objects: list[Record]) -> Parsed:
        out = Parsed([], [])
        if self._normalizer is None:
            self._normalizer = RowNormalizer(
                import_id=self.import_id, tenant_id=self.tenant_id, installments=None
            )
        for line, obj in objects:
            self.rows_total += 1
            values: dict[str, Any] = {}
            for key, value in obj.items():
                field = self._keys[key] if key in self._keys else self._key(key)
                if field is None:
                    if key not in self._noted and len(self._noted) < 100:
                        self._noted.add(key)
                        out.errors.append(RowError(line, key[:64], "Unknown key; ignored."))
                    continue
                if field in values and value is not None:
                    if field not in _MULTI or values[field] is None:
                        continue  # the first key naming a field wins
                    value = _join(values[field], value)
                values[field] = value
                self._seen.add(field)
            result = self._normalizer.row(line, values)
            if type(result) is tuple:
                out.rows.append(result)
            else:
                out.errors.extend(result)
                out.rejected += 1
        return out

    def _key(self, key: str) -> str | None:
        field = canonical_field(key) if len(self._keys) < 10_000 else None
        self._keys[key] = field
        return field


def _join(first: Any, second: Any) -> list[Any]:
    a = first if isinstance(first, list) else [first]
    b = second if isinstance(second, list) else [second]
    return [*a, *b]
