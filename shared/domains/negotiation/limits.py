"""The limits a negotiation must respect: the retailer's policy, an agency's tighter limits
under its mandate, and the effective limits (the tighter of the two, field by field).

Pure: no database.  Percentages are percent (``Decimal("10")`` is 10 %), money is Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from shared.errors import FieldError

POLICY = "policy"
MANDATE = "mandate"

# Fields where a lower value is tighter (less given away), and where a higher one is.
LOWER_IS_TIGHTER = frozenset(
    {
        "max_discount_fees_percent",
        "max_discount_principal_percent",
        "max_installments",
        "offer_validity_hours",
        "max_broken_agreements",
    }
)
HIGHER_IS_TIGHTER = frozenset(
    {"min_down_payment_percent", "min_installment_amount", "monthly_interest_percent"}
)
LIMIT_FIELDS = (
    "max_discount_fees_percent",
    "max_discount_principal_percent",
    "min_down_payment_percent",
    "max_installments",
    "min_installment_amount",
    "monthly_interest_percent",
    "offer_validity_hours",
    "max_broken_agreements",
)

# field -> (lowest, highest) a policy or a mandate may set
_BOUNDS: dict[str, tuple[Decimal | int, Decimal | int]] = {
    "max_discount_fees_percent": (Decimal(0), Decimal(100)),
    "max_discount_principal_percent": (Decimal(0), Decimal(100)),
    "min_down_payment_percent": (Decimal(0), Decimal(100)),
    "max_installments": (0, 60),
    "min_installment_amount": (Decimal(0), Decimal(100000)),
    "monthly_interest_percent": (Decimal(0), Decimal(10)),
    "offer_validity_hours": (1, 720),
    "max_broken_agreements": (0, 20),
}
_DECIMAL_PLACES = {"min_installment_amount": 2, "monthly_interest_percent": 3}


@dataclass(frozen=True)
class Limits:
    """One complete set of limits; ``sources`` says, per field, whether the retailer's policy
    or the agency's mandate set the value in force (for error messages and ``explain``)."""

    max_discount_fees_percent: Decimal
    max_discount_principal_percent: Decimal
    min_down_payment_percent: Decimal
    max_installments: int
    min_installment_amount: Decimal
    monthly_interest_percent: Decimal
    offer_validity_hours: int
    max_broken_agreements: int
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # One written form per value, so the same limits always render the same JSON whether
        # they come from the code's default or from a NUMERIC column.
        for name in LIMIT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, Decimal) and value.is_finite():
                exponent = Decimal(1).scaleb(-_DECIMAL_PLACES.get(name, 2))
                object.__setattr__(self, name, value.quantize(exponent))

    def source(self, name: str) -> str:
        return self.sources.get(name, POLICY)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Decimal) else value
        out["sources"] = {name: self.source(name) for name in LIMIT_FIELDS}
        return out


DEFAULT = Limits(
    max_discount_fees_percent=Decimal("50"),
    max_discount_principal_percent=Decimal("0"),
    min_down_payment_percent=Decimal("10"),
    max_installments=6,
    min_installment_amount=Decimal("20.00"),
    monthly_interest_percent=Decimal("0"),
    offer_validity_hours=72,
    max_broken_agreements=2,
)


def _tighter(name: str, policy: Any, mandate: Any) -> bool:
    """Whether the mandate's value is at least as tight as the policy's."""
    return bool(mandate <= policy) if name in LOWER_IS_TIGHTER else bool(mandate >= policy)


def effective(policy: Limits, mandate: Mapping[str, Any] | None) -> Limits:
    """The tighter of the policy and the mandate's limits (unset mandate fields: the policy)."""
    if not mandate:
        return replace(policy, sources={})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in LIMIT_FIELDS:
        mine, theirs = getattr(policy, name), mandate.get(name)
        if theirs is not None and _tighter(name, mine, theirs):
            values[name], sources[name] = theirs, MANDATE
        else:
            values[name], sources[name] = mine, POLICY
    return Limits(**values, sources=sources)


def _check_value(name: str, value: Any) -> str | None:
    low, high = _BOUNDS[name]
    if isinstance(low, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
    elif not isinstance(value, Decimal) or not value.is_finite():
        return "must be a decimal number"
    if not low <= value <= high:
        return f"must be between {low} and {high}"
    if isinstance(value, Decimal):
        places = _DECIMAL_PLACES.get(name, 2)
        if value != value.quantize(Decimal(1).scaleb(-places)):
            return f"must have at most {places} decimal places"
    return None


def check_policy(values: Mapping[str, Any]) -> list[FieldError]:
    """Field errors of a complete policy (every field required, within its bounds)."""
    errors = []
    for name in LIMIT_FIELDS:
        problem = _check_value(name, values.get(name))
        if problem:
            errors.append(FieldError(name, problem))
    return errors


def check_mandate_limits(values: Mapping[str, Any], policy: Limits) -> list[FieldError]:
    """Field errors of a mandate's limits: each set field within its bounds and no looser
    than the retailer's current policy."""
    errors = []
    for name in LIMIT_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        problem = _check_value(name, value)
        if problem:
            errors.append(FieldError(name, problem))
        elif not _tighter(name, getattr(policy, name), value):
            bound = "at most" if name in LOWER_IS_TIGHTER else "at least"
            message = (
                f"must be {bound} {_plain(getattr(policy, name))}, the retailer's policy: "
                "an agency's limits can only be tighter"
            )
            errors.append(FieldError(name, message, code="looser_than_policy"))
    return errors


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)
