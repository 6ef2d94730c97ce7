"""Negotiation offers, computed: the menu Quita proposes for a customer's overdue debt, and the
check of an operator's own terms.  Pure functions over Decimal; no database.

The contract
    Fees are correction + fine + interest (the CDC lets them be discounted, never below zero);
    the principal is discounted separately.  A discount's ceiling is ``percent`` of its base,
    rounded DOWN to the centavo, and a minimum down payment is rounded UP, so rounding never
    takes an option past a limit.  ``negotiated_total = original_total - discounts``.  A plan
    of N installments finances ``negotiated_total - down_payment`` at the monthly interest of
    the limits with the Price table (PMT); the interest is the rounded total of the PMTs minus
    what is financed, every installment but the last is the rounded PMT and the last absorbs
    the remainder, so ``down_payment + sum(installments) == negotiated_total + interest``
    exactly.  The minimum installment value binds plans of two or more installments (a single
    installment is the whole rest).  Installments fall due monthly from the first due date.

The menu (deterministic: the same debts, limits and day give the same options)
    ``pay_today``: the largest allowed discounts, all due today.  ``installments_N``: a down
    payment of the minimum percentage today plus N installments for N in 2, 3, 6, the maximum
    and the longest plan the minimum installment allows; half the largest fee discount and no
    discount on principal.  ``new_date``: everything on one new date 15 days ahead, no discount.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

from shared.brazil.numbers import CENT, format_brl, round_money
from shared.domains.negotiation.limits import MANDATE, Limits
from shared.errors import FieldError, ValidationFailed

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
NEW_DATE_DAYS = 15
MAX_FIRST_DUE_DAYS = 90
MAX_AMOUNT = Decimal("1000000000000")  # numeric(14, 2)
MENU_PLAN_SIZES = (2, 3, 6)


@dataclass(frozen=True)
class Debt:
    """One installment's outstanding balance, itemized, on the offer's day."""

    installment_id: str
    principal: Decimal
    correction: Decimal
    fine: Decimal
    interest: Decimal

    @property
    def fees(self) -> Decimal:
        return self.correction + self.fine + self.interest

    @property
    def total(self) -> Decimal:
        return self.principal + self.fees

    def as_json(self) -> dict[str, str]:
        return {
            "installment_id": self.installment_id,
            "principal": str(self.principal),
            "correction": str(self.correction),
            "fine": str(self.fine),
            "interest": str(self.interest),
            "total": str(self.total),
        }


@dataclass(frozen=True)
class Installment:
    number: int
    due_date: date
    amount: Decimal


@dataclass(frozen=True)
class Option:
    """One way out, itemized; ``down_payment`` is due on the offer's day."""

    id: str
    kind: str  # pay_today | installments | new_date | custom
    title: str  # what the debtor reads (pt-BR)
    principal: Decimal
    fees: Decimal
    discount_fees: Decimal
    discount_principal: Decimal
    down_payment: Decimal
    down_payment_due: date
    installments: tuple[Installment, ...]
    interest: Decimal
    monthly_interest_percent: Decimal
    explain: tuple[str, ...]

    @property
    def original_total(self) -> Decimal:
        return self.principal + self.fees

    @property
    def negotiated_total(self) -> Decimal:
        return self.original_total - self.discount_fees - self.discount_principal

    @property
    def total_payable(self) -> Decimal:
        return self.down_payment + sum((i.amount for i in self.installments), ZERO)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "original_total": str(self.original_total),
            "principal": str(self.principal),
            "fees": str(self.fees),
            "discount_fees": str(self.discount_fees),
            "discount_principal": str(self.discount_principal),
            "negotiated_total": str(self.negotiated_total),
            "down_payment": {
                "amount": str(self.down_payment),
                "due_date": self.down_payment_due.isoformat(),
            }
            if self.down_payment > 0
            else None,
            "installments": [
                {"number": i.number, "due_date": i.due_date.isoformat(), "amount": str(i.amount)}
                for i in self.installments
            ],
            "interest": str(self.interest),
            "monthly_interest_percent": str(self.monthly_interest_percent),
            "total_payable": str(self.total_payable),
            "explain": list(self.explain),
        }


@dataclass(frozen=True)
class Terms:
    """What an operator proposes; ``down_payment`` None: the minimum (everything when there
    are no installments); ``first_due_date`` None: a month after today."""

    discount_fees: Decimal = ZERO
    discount_principal: Decimal = ZERO
    down_payment: Decimal | None = None
    installments: int = 0
    first_due_date: date | None = None


# --- arithmetic ------------------------------------------------------------------------------


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT)


def ceiling(base: Decimal, percent: Decimal) -> Decimal:
    """``percent`` of ``base`` rounded DOWN to the centavo: a discount's ceiling."""
    with localcontext(prec=50):
        return (base * percent / HUNDRED).quantize(CENT, rounding=ROUND_FLOOR)


def floor_of(base: Decimal, percent: Decimal) -> Decimal:
    """``percent`` of ``base`` rounded UP to the centavo: a minimum down payment."""
    with localcontext(prec=50):
        return (base * percent / HUNDRED).quantize(CENT, rounding=ROUND_CEILING)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or that month's last day when it is shorter."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def schedule(
    financed: Decimal, count: int, monthly_percent: Decimal, first_due: date
) -> tuple[tuple[Installment, ...], Decimal]:
    """``count`` monthly installments paying ``financed`` at ``monthly_percent`` (Price), and
    the interest they carry; their sum is ``financed + interest`` exactly."""
    with localcontext(prec=50):
        rate = monthly_percent / HUNDRED
        pmt = financed / count if rate == 0 else financed * rate / (1 - (1 + rate) ** -count)
        interest = max(ZERO, round_money(pmt * count - financed))
    regular = round_money(pmt)
    last = financed + interest - regular * (count - 1)
    amounts = [regular] * (count - 1) + [last]
    return (
        tuple(
            Installment(n + 1, add_months(first_due, n), cents(a)) for n, a in enumerate(amounts)
        ),
        cents(interest),
    )


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}%"


def _under(limits: Limits, name: str) -> str:
    return "under your mandate" if limits.source(name) == MANDATE else "under the retailer's policy"


def _sums(debts: Sequence[Debt]) -> tuple[Decimal, Decimal]:
    principal = sum((d.principal for d in debts), ZERO)
    fees = sum((d.fees for d in debts), ZERO)
    return cents(principal), cents(fees)


# --- the menu --------------------------------------------------------------------------------


def menu(debts: Sequence[Debt], limits: Limits, today: date) -> list[Option]:
    """The options Quita proposes for ``debts`` under ``limits`` on ``today``."""
    principal, fees = _sums(debts)
    options = [_pay_today(principal, fees, limits, today)]
    options += _plans(principal, fees, limits, today)
    options.append(_new_date(principal, fees, limits, today))
    return options


def _fits(installments: Sequence[Installment], limits: Limits) -> bool:
    """Every installment pays something, and at least the minimum when there are several."""
    smallest = min(i.amount for i in installments)
    return smallest > 0 and (len(installments) < 2 or smallest >= limits.min_installment_amount)


def _pay_today(principal: Decimal, fees: Decimal, limits: Limits, today: date) -> Option:
    discount_fees = ceiling(fees, limits.max_discount_fees_percent)
    discount_principal = ceiling(principal, limits.max_discount_principal_percent)
    explain = [
        f"discount on fees: the maximum, {_percent(limits.max_discount_fees_percent)} "
        f"{_under(limits, 'max_discount_fees_percent')}",
        f"discount on principal: the maximum, {_percent(limits.max_discount_principal_percent)} "
        f"{_under(limits, 'max_discount_principal_percent')}",
    ]
    negotiated = principal + fees - discount_fees - discount_principal
    if negotiated < CENT:
        # a policy that forgives everything still makes an offer of something to pay (a debt
        # forgiven in full is a write-off, not an agreement): the principal's discount, then
        # the fees', gives back the last centavo
        back = min(CENT - negotiated, discount_principal)
        discount_principal -= back
        discount_fees -= CENT - negotiated - back
        negotiated = CENT
        explain.append("one centavo left to pay: an offer always asks for something")
    return Option(
        id="pay_today",
        kind="pay_today",
        title="À vista com desconto",
        principal=principal,
        fees=fees,
        discount_fees=discount_fees,
        discount_principal=discount_principal,
        down_payment=negotiated,
        down_payment_due=today,
        installments=(),
        interest=ZERO,
        monthly_interest_percent=ZERO,
        explain=tuple(explain),
    )


def _plan_sizes(fits: int, limits: Limits) -> list[int]:
    sizes = {n for n in MENU_PLAN_SIZES if n <= limits.max_installments}
    sizes.add(limits.max_installments)
    sizes.add(fits)
    return sorted(n for n in sizes if 1 <= n <= limits.max_installments)


def _plans(principal: Decimal, fees: Decimal, limits: Limits, today: date) -> list[Option]:
    if limits.max_installments < 1:
        return []
    discount_fees = ceiling(fees, limits.max_discount_fees_percent / 2)
    negotiated = principal + fees - discount_fees
    down = floor_of(negotiated, limits.min_down_payment_percent)
    financed = negotiated - down
    if financed <= 0:
        return []
    built = {
        n: _plan(principal, fees, discount_fees, down, n, limits, today)
        for n in range(1, limits.max_installments + 1)
    }
    fitting = [n for n, option in built.items() if option is not None]
    longest = max(fitting, default=0)
    return [o for n in _plan_sizes(longest, limits) if (o := built[n]) is not None]


def _plan(
    principal: Decimal,
    fees: Decimal,
    discount_fees: Decimal,
    down: Decimal,
    count: int,
    limits: Limits,
    today: date,
) -> Option | None:
    negotiated = principal + fees - discount_fees
    installments, interest = schedule(
        negotiated - down, count, limits.monthly_interest_percent, add_months(today, 1)
    )
    if not _fits(installments, limits):
        return None
    explain = (
        "discount on fees: half the maximum for installment plans, "
        f"{_percent(limits.max_discount_fees_percent / 2)}",
        "no discount on principal for installment plans",
        f"down payment: the minimum, {_percent(limits.min_down_payment_percent)} of the "
        f"negotiated total {_under(limits, 'min_down_payment_percent')}",
        f"at most {limits.max_installments} installments {_under(limits, 'max_installments')}",
        f"installments of at least {format_brl(limits.min_installment_amount)} "
        f"{_under(limits, 'min_installment_amount')}",
        f"interest {_percent(limits.monthly_interest_percent)} a month (Price table) "
        f"{_under(limits, 'monthly_interest_percent')}",
    )
    return Option(
        id=f"installments_{count}",
        kind="installments",
        title=_title(count, down),
        principal=principal,
        fees=fees,
        discount_fees=discount_fees,
        discount_principal=ZERO,
        down_payment=down,
        down_payment_due=today,
        installments=installments,
        interest=interest,
        monthly_interest_percent=limits.monthly_interest_percent,
        explain=explain,
    )


def _title(count: int, down: Decimal) -> str:
    if not count:
        return "À vista"
    return f"Entrada + {count}x" if down > 0 else f"{count}x"


def _new_date(principal: Decimal, fees: Decimal, limits: Limits, today: date) -> Option:
    due = today + timedelta(days=NEW_DATE_DAYS)
    return Option(
        id="new_date",
        kind="new_date",
        title="Nova data",
        principal=principal,
        fees=fees,
        discount_fees=ZERO,
        discount_principal=ZERO,
        down_payment=ZERO,
        down_payment_due=today,
        installments=(Installment(1, due, principal + fees),),
        interest=ZERO,
        monthly_interest_percent=ZERO,
        explain=(f"one new due date {NEW_DATE_DAYS} days ahead, no discount and no interest",),
    )


# --- an operator's terms ---------------------------------------------------------------------


def _whole_cents(name: str, value: Decimal, errors: list[FieldError]) -> bool:
    if not value.is_finite() or not 0 <= value < MAX_AMOUNT or value != value.quantize(CENT):
        errors.append(FieldError(name, "must be an amount of at least 0 in whole centavos"))
        return False
    return True


def check_terms(debts: Sequence[Debt], limits: Limits, terms: Terms, today: date) -> Option:
    """The option ``terms`` make, or ValidationFailed naming each limit they exceed."""
    errors: list[FieldError] = []
    option = _custom(debts, limits, terms, today, errors)
    if errors or option is None:
        raise ValidationFailed("The offer is outside the negotiation limits.", errors=errors)
    return option


def _custom(
    debts: Sequence[Debt], limits: Limits, terms: Terms, today: date, errors: list[FieldError]
) -> Option | None:
    principal, fees = _sums(debts)
    amounts_ok = _whole_cents("discount_fees", terms.discount_fees, errors)
    amounts_ok &= _whole_cents("discount_principal", terms.discount_principal, errors)
    if terms.down_payment is not None:
        amounts_ok &= _whole_cents("down_payment", terms.down_payment, errors)
    if not amounts_ok:
        return None
    _check_discount(
        errors, "discount_fees", terms.discount_fees, fees, limits, "max_discount_fees_percent"
    )
    _check_discount(
        errors,
        "discount_principal",
        terms.discount_principal,
        principal,
        limits,
        "max_discount_principal_percent",
    )
    count = terms.installments
    if count < 0 or count > limits.max_installments:
        errors.append(
            FieldError(
                "installments",
                f"at most {limits.max_installments} installments "
                f"{_under(limits, 'max_installments')}",
                code="limit_exceeded",
            )
        )
    negotiated = principal + fees - terms.discount_fees - terms.discount_principal
    if errors:
        return None
    if negotiated <= 0:
        errors.append(FieldError("discount_principal", "must leave something to pay"))
        return None
    down = _down_payment(negotiated, count, limits, terms, errors)
    first_due = terms.first_due_date or add_months(today, 1)
    if count and not today < first_due <= today + timedelta(days=MAX_FIRST_DUE_DAYS):
        errors.append(
            FieldError(
                "first_due_date", f"must be after today and within {MAX_FIRST_DUE_DAYS} days"
            )
        )
    if errors or down is None:
        return None
    installments: tuple[Installment, ...] = ()
    interest = ZERO
    if count:
        installments, interest = schedule(
            negotiated - down, count, limits.monthly_interest_percent, first_due
        )
        smallest = min(i.amount for i in installments)
        if not _fits(installments, limits):
            errors.append(
                FieldError(
                    "installments",
                    f"each installment at least {format_brl(limits.min_installment_amount)} "
                    f"{_under(limits, 'min_installment_amount')} (this plan's smallest is "
                    f"{format_brl(smallest)})",
                    code="limit_exceeded",
                )
            )
            return None
    return Option(
        id="custom",
        kind="custom",
        title=_title(count, down),
        principal=principal,
        fees=fees,
        discount_fees=cents(terms.discount_fees),
        discount_principal=cents(terms.discount_principal),
        down_payment=down,
        down_payment_due=today,
        installments=installments,
        interest=interest,
        monthly_interest_percent=limits.monthly_interest_percent if count else ZERO,
        explain=("terms set by an operator, within the limits in force",),
    )


def _check_discount(
    errors: list[FieldError],
    name: str,
    amount: Decimal,
    base: Decimal,
    limits: Limits,
    limit_name: str,
) -> None:
    percent: Decimal = getattr(limits, limit_name)
    most = ceiling(base, percent)
    if amount > most:
        errors.append(
            FieldError(
                name,
                f"at most {_percent(percent)} ({format_brl(most)}) {_under(limits, limit_name)}",
                code="limit_exceeded",
            )
        )


def _down_payment(
    negotiated: Decimal, count: int, limits: Limits, terms: Terms, errors: list[FieldError]
) -> Decimal | None:
    if count == 0:
        if terms.down_payment is not None and terms.down_payment != negotiated:
            errors.append(
                FieldError(
                    "down_payment",
                    f"with no installments it is the whole negotiated total, "
                    f"{format_brl(negotiated)}",
                )
            )
            return None
        return cents(negotiated)
    least = floor_of(negotiated, limits.min_down_payment_percent)
    down = least if terms.down_payment is None else terms.down_payment
    if down < least:
        errors.append(
            FieldError(
                "down_payment",
                f"at least {_percent(limits.min_down_payment_percent)} ({format_brl(least)}) "
                f"{_under(limits, 'min_down_payment_percent')}",
                code="limit_exceeded",
            )
        )
        return None
    if down >= negotiated:
        errors.append(
            FieldError("down_payment", "must leave something for the installments to pay")
        )
        return None
    return cents(down)
