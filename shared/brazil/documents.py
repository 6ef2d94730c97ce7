"""CPF and CNPJ: normalize, validate, format and mask.

A document is stored as its bare characters: 11 digits for a CPF, 14 characters for a CNPJ
(12 of ``[0-9A-Z]`` then 2 check digits; the alphanumeric CNPJ of IN RFB 2.229/2024 is
accepted).  Always keep it a string, never an integer, so leading zeros survive.

The check digits are verified by ``validate-docbr`` (mod 11, ``ASCII - 48`` for letters); the
shape and the "all digits the same" rule are checked here first so the caller gets a precise
reason.  Reasons never repeat the document back, since a CPF is personal data.
"""

from __future__ import annotations

import re
from typing import Literal

from validate_docbr import CNPJ, CPF

from shared.brazil.errors import InvalidValue

DocumentKind = Literal["cpf", "cnpj"]

__all__ = [
    "DocumentKind",
    "document_kind",
    "format_document",
    "mask_document",
    "normalize_document",
]

_SEPARATORS = re.compile(r"[.\-/\s]+")
_CPF_SHAPE = re.compile(r"[0-9]{11}")
_CNPJ_SHAPE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_CNPJ_LOOSE = re.compile(r"[0-9A-Z]{14}")

_CPF_VALIDATOR = CPF()
_CNPJ_VALIDATOR = CNPJ()


def _strip(raw: str) -> str:
    return _SEPARATORS.sub("", raw).upper()


def _check_cpf(doc: str) -> str:
    if len(set(doc)) == 1:
        raise InvalidValue("not a valid CPF: all digits are the same")
    if not _CPF_VALIDATOR.validate(doc):
        raise InvalidValue("not a valid CPF: check digits do not match")
    return doc


def _check_cnpj(doc: str) -> str:
    if not _CNPJ_SHAPE.fullmatch(doc):
        raise InvalidValue("not a valid CNPJ: the last two characters must be digits")
    if len(set(doc)) == 1:
        raise InvalidValue("not a valid CNPJ: all characters are the same")
    if not _CNPJ_VALIDATOR.validate(doc):
        raise InvalidValue("not a valid CNPJ: check digits do not match")
    return doc


def normalize_document(raw: str) -> str:
    """Return the bare CPF (11 digits) or CNPJ (14 characters, upper-case) in ``raw``.

    Dots, dashes, slashes and spaces are ignored and letters are upper-cased.  Raises
    :class:`InvalidValue` for anything else, for repeated digits and for wrong check digits.
    """
    doc = _strip(raw)
    if _CPF_SHAPE.fullmatch(doc):
        return _check_cpf(doc)
    if _CNPJ_LOOSE.fullmatch(doc):
        return _check_cnpj(doc)
    raise InvalidValue("must be a CPF (11 digits) or a CNPJ (14 characters)")


def document_kind(doc: str) -> DocumentKind:
    """``"cpf"`` or ``"cnpj"`` for a valid document (formatted or bare)."""
    return "cpf" if len(normalize_document(doc)) == 11 else "cnpj"


def format_document(doc: str) -> str:
    """The usual printed form: ``123.456.789-09`` or ``12.ABC.345/01DE-35``."""
    bare = normalize_document(doc)
    if len(bare) == 11:
        return f"{bare[:3]}.{bare[3:6]}.{bare[6:9]}-{bare[9:]}"
    return f"{bare[:2]}.{bare[2:5]}.{bare[5:8]}/{bare[8:12]}-{bare[12:]}"


def mask_document(doc: str) -> str:
    """The form safe to put in a message: a CPF keeps only its middle six digits
    (``***.456.789-**``, the gov.br pattern); a CNPJ identifies a company and is shown whole."""
    bare = normalize_document(doc)
    if len(bare) == 11:
        return f"***.{bare[3:6]}.{bare[6:9]}-**"
    return format_document(bare)
