"""How much an installment costs on a given date: the one function that decides it.

The API, the collection messages and the Pix codes all call :func:`compute_balance`, so they can
never disagree about an amount.  The semantics below are the product's contract (handbook
brazil-rules.md, sections 1.4-1.6); change them only with a new :class:`FeeRule` version.

Dates and grace
    ``effective_due`` is the due date moved to the next bank business day (weekends, national
    and state holidays of ``uf``, Carnival Monday/Tuesday) when ``rule.business_day_grace``,
    else the due date itself.  On or before ``effective_due`` nothing is charged: no correction,
    no fine, no interest, ``days_overdue == 0``.  After it, days are counted from the ORIGINAL
    due date (Lei 7.089/1983; STJ REsp 1.954.924): a Saturday due date paid on Tuesday is 3 days
    late.

Early-payment discount
    ``discount = round(principal x discount_percent / 100)`` when ``as_of <= due -
    discount_days_before_due`` (0 days: up to and including the due date; grace does not extend
    it).  A payment made inside that window that covers the discounted amount settles the
    installment; a smaller one is taken at face value and the discount stays available on the
    rest while the window lasts.

Monetary correction (only when ``rule.correction_index == "ipca"``)
    ``F = prod(1 + rate)`` over the calendar months from the due date's month through
    ``as_of``'s month inclusive; ``index_rates`` maps ``(year, month)`` to the monthly change as
    a FRACTION (``Decimal("0.005")`` is 0.50 %, the BCB SGS 433 value divided by 100); missing
    months count as 0.  ``P' = round(P x F)`` and ``correction = P' - P``.  Deflation may offset
    earlier inflation but never takes the corrected principal below its nominal value (the
    factor is floored at 1), and correction already paid is never refunded.

Fine and interest
    ``fine = round(P' x fine_percent / 100)``, charged once.  ``interest = round(P' x
    monthly_interest_percent / 100 x days / 30)``: simple interest, pro rata die over a 30-day
    commercial month, never compounded, never charged on the fine.

Rounding
    Every component is rounded to the centavo with ROUND_HALF_UP and the total is the sum of the
    rounded components, so an itemized message (SP Lei 14.953/2013, RJ Lei 6.854/2014) always
    adds up: ``total == principal + correction + fine + interest - discount``.

Partial payments (imputação, CC art. 354)
    Payments dated after ``as_of`` are ignored; the others are applied in date order (the
    sequence may come in any order; same-day payments keep theirs).  A payment on or before
    ``effective_due`` is on time: it reduces the principal at face value and charges nothing
    (interest on what is left still counts from the original due date if the rest is paid
    late).  A late payment first pays the charges accrued up to its date, in the order fine,
    interest, correction, and only then the principal.  After it, interest accrues on the
    remaining corrected principal from that payment's date, and correction continues on what
    remains (principal plus any unpaid correction).  The fine is charged once, on the principal
    outstanding at ``effective_due``, corrected to the date it is first assessed (the first late
    payment, or ``as_of``).  With no payments the formulas above hold exactly.  Interest and
    correction are accumulated unrounded across periods and rounded once, so splitting a period
    never adds a centavo.

Result
    The returned :class:`Balance` describes what is outstanding NOW: ``principal`` is the
    remaining principal, ``correction``/``fine``/``interest`` are the unpaid parts of each
    charge, ``paid`` is the sum of the payments applied (already reflected in the components),
    and ``overpaid`` is whatever exceeded the debt (then ``total == 0``).  ``days_overdue`` is 0
    when nothing is outstanding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext

from shared.brazil.calendar import next_bank_business_day
from shared.brazil.errors import InvalidValue
from shared.brazil.numbers import CENT, round_money

__all__ = ["CORRECTION_INDEXES", "Balance", "FeeRule", "compute_balance"]

CORRECTION_INDEXES = frozenset({"ipca"})

ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")
COMMERCIAL_MONTH_DAYS = 30

MAX_FINE_PERCENT = Decimal("2")  # CDC art. 52 §1
MAX_MONTHLY_INTEREST_PERCENT = Decimal("10")
# Monthly index changes are fractions; anything this large is a percentage passed by mistake.
MAX_MONTHLY_INDEX_RATE = Decimal("0.2")

# Working precision for the unrounded accumulators (money is rounded to cents at the edges).
_PRECISION = 50


# --- the rule ------------------------------------------------------------------------------


def _check_decimal(field: str, value: object, low: Decimal, high: Decimal, why: str = "") -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidValue(f"{field} must be a finite Decimal.")
    if not low <= value <= high:
        raise InvalidValue(f"{field} must be between {low} and {high}{why}.")


def _check_int(field: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidValue(f"{field} must be an integer of at least {low}.")


@dataclass(frozen=True)
class FeeRule:
    """A versioned fee policy (percentages are percent: ``Decimal("2")`` is 2 %)."""

    version: int
    fine_percent: Decimal = Decimal("2")
    monthly_interest_percent: Decimal = Decimal("1")
    correction_index: str | None = None
    discount_percent: Decimal = Decimal("0")
    discount_days_before_due: int = 0
    business_day_grace: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise InvalidValue naming the first field out of its legal or sane range."""
        _check_int("version", self.version, 1)
        _check_decimal(
            "fine_percent", self.fine_percent, ZERO, MAX_FINE_PERCENT, " (CDC art. 52 §1)"
        )
        _check_decimal(
            "monthly_interest_percent",
            self.monthly_interest_percent,
            ZERO,
            MAX_MONTHLY_INTEREST_PERCENT,
        )
        if self.correction_index is not None and self.correction_index not in CORRECTION_INDEXES:
            raise InvalidValue("correction_index must be null or 'ipca'.")
        _check_decimal("discount_percent", self.discount_percent, ZERO, HUNDRED)
        _check_int("discount_days_before_due", self.discount_days_before_due, 0)
        if not isinstance(self.business_day_grace, bool):
            raise InvalidValue("business_day_grace must be true or false.")


@dataclass(frozen=True)
class Balance:
    """What is outstanding on ``as_of``; ``total == principal + correction + fine + interest -
    discount`` always, and ``paid``/``overpaid`` are already reflected in the components."""

    principal: Decimal
    correction: Decimal
    fine: Decimal
    interest: Decimal
    discount: Decimal
    paid: Decimal
    total: Decimal
    overpaid: Decimal
    days_overdue: int
    effective_due_date: date
    fee_rule_version: int
    as_of: date


# --- inputs --------------------------------------------------------------------------------


def _check_date(field: str, value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{field} must be a datetime.date (not a datetime)")
    return value


def _check_money(field: str, value: object, *, positive: bool) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidValue(f"{field} must be a finite Decimal.")
    if value < 0 or (positive and value == 0):
        raise InvalidValue(f"{field} must be {'greater than' if positive else 'at least'} 0.")
    if value != round_money(value):
        raise InvalidValue(f"{field} must not have fractions of a centavo.")
    return value


def _check_payments(
    payments: Sequence[tuple[date, Decimal]], as_of: date
) -> list[tuple[date, Decimal]]:
    """Validated payments up to ``as_of``, sorted by date (stable for same-day payments)."""
    checked: list[tuple[date, Decimal]] = []
    for paid_on, amount in payments:
        day = _check_date("payment date", paid_on)
        value = _check_money("payment amount", amount, positive=True)
        if day <= as_of:
            checked.append((day, value))
    return sorted(checked, key=lambda payment: payment[0])


def _check_index_rates(rates: Mapping[tuple[int, int], Decimal]) -> None:
    for key, rate in rates.items():
        if not (isinstance(key, tuple) and len(key) == 2 and 1 <= key[1] <= 12):
            raise InvalidValue("index_rates keys must be (year, month) with month 1-12.")
        if not isinstance(rate, Decimal) or not rate.is_finite():
            raise InvalidValue("index_rates values must be finite Decimals.")
        if abs(rate) > MAX_MONTHLY_INDEX_RATE:
            raise InvalidValue(
                "index_rates values are monthly fractions (0.005 is 0.5 %); "
                f"values beyond {MAX_MONTHLY_INDEX_RATE} are refused."
            )


# --- correction index ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    """The cumulative correction factor since the due date's month, floored at 1."""

    rates: Mapping[tuple[int, int], Decimal]
    due: date

    def factor(self, until: date) -> Decimal:
        product = ONE
        year, month = self.due.year, self.due.month
        while (year, month) <= (until.year, until.month):
            product *= ONE + self.rates.get((year, month), ZERO)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return max(ONE, product)


# --- the ledger ----------------------------------------------------------------------------


@dataclass
class _Ledger:
    """The running state of one installment while payments are applied in date order.

    Interest and correction accrue unrounded (``*_accrued``); what is due of each is the
    rounded accrual minus what was paid of it.  ``since`` starts the current accrual period.
    """

    rule: FeeRule
    index: _Index | None
    principal: Decimal
    since: date
    factor_at_since: Decimal = ONE
    correction_accrued: Decimal = ZERO
    correction_paid: Decimal = ZERO
    interest_accrued: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fine: Decimal | None = None  # assessed once, on the first late event
    fine_paid: Decimal = ZERO
    paid: Decimal = ZERO
    overpaid: Decimal = ZERO

    def correction_due(self) -> Decimal:
        return round_money(self.correction_accrued) - self.correction_paid

    def interest_due(self) -> Decimal:
        return round_money(self.interest_accrued) - self.interest_paid

    def fine_due(self) -> Decimal:
        return (self.fine or ZERO) - self.fine_paid

    def _corrected_exact(self) -> Decimal:
        if self.principal == 0:
            return ZERO
        return self.principal + self.correction_accrued - self.correction_paid

    def _accrue_correction(self, until: date) -> None:
        if self.index is None:
            return
        factor = self.index.factor(until)
        base = self._corrected_exact()
        if base > 0 and factor != self.factor_at_since:
            self.correction_accrued += base * factor / self.factor_at_since - base
            # Deflation never refunds correction already paid nor cuts the nominal principal.
            self.correction_accrued = max(self.correction_accrued, self.correction_paid)
        self.factor_at_since = factor

    def accrue(self, until: date) -> None:
        """Bring correction, fine and interest up to ``until`` (a date after effective_due)."""
        self._accrue_correction(until)
        corrected = self.principal + self.correction_due()
        if self.fine is None:
            self.fine = round_money(corrected * self.rule.fine_percent / HUNDRED)
        days = (until - self.since).days
        rate = self.rule.monthly_interest_percent
        self.interest_accrued += corrected * rate * days / (HUNDRED * COMMERCIAL_MONTH_DAYS)
        self.since = until

    def pay_late(self, amount: Decimal) -> None:
        """Charges first (fine, interest, correction), then principal; the rest is overpaid."""
        self.paid += amount
        take = min(amount, self.fine_due())
        self.fine_paid += take
        amount -= take
        take = min(amount, self.interest_due())
        self.interest_paid += take
        amount -= take
        take = min(amount, self.correction_due())
        self.correction_paid += take
        amount -= take
        self._pay_principal(amount)

    def pay_on_time(self, amount: Decimal, discount_percent: Decimal) -> None:
        """A payment on or before effective_due; ``discount_percent`` when in the window."""
        self.paid += amount
        discount = round_money(self.principal * discount_percent / HUNDRED)
        if self.principal > 0 and amount >= self.principal - discount:
            self.overpaid += amount - (self.principal - discount)
            self.principal = ZERO
            return
        self._pay_principal(amount)

    def _pay_principal(self, amount: Decimal) -> None:
        take = min(amount, self.principal)
        self.principal -= take
        self.overpaid += amount - take


# --- the function --------------------------------------------------------------------------


def _effective_due(due: date, rule: FeeRule, uf: str | None) -> date:
    return next_bank_business_day(due, uf) if rule.business_day_grace else due


def _discount_percent(rule: FeeRule, due: date, on: date) -> Decimal:
    last_day = due - timedelta(days=rule.discount_days_before_due)
    return rule.discount_percent if on <= last_day else ZERO


def compute_balance(
    *,
    principal: Decimal,
    due_date: date,
    as_of: date,
    rule: FeeRule,
    uf: str | None = None,
    payments: Sequence[tuple[date, Decimal]] = (),
    index_rates: Mapping[tuple[int, int], Decimal] | None = None,
) -> Balance:
    """What the installment of ``principal`` due on ``due_date`` costs on ``as_of``.

    See the module docstring for the contract.  Raises InvalidValue for amounts that are not
    non-negative whole centavos, bad index rates or an unknown UF.
    """
    principal = _check_money("principal", principal, positive=False)
    due = _check_date("due_date", due_date)
    as_of = _check_date("as_of", as_of)
    applied = _check_payments(payments, as_of)
    rates = index_rates or {}
    _check_index_rates(rates)
    effective_due = _effective_due(due, rule, uf)
    index = _Index(rates, due) if rule.correction_index is not None else None

    with localcontext(prec=_PRECISION):
        ledger = _Ledger(rule=rule, index=index, principal=principal, since=due)
        for paid_on, amount in applied:
            if paid_on <= effective_due:
                ledger.pay_on_time(amount, _discount_percent(rule, due, paid_on))
            else:
                ledger.accrue(paid_on)
                ledger.pay_late(amount)
        overdue = as_of > effective_due
        if overdue:
            ledger.accrue(as_of)
        return _balance(ledger, due, as_of, effective_due, overdue)


def _cents(amount: Decimal) -> Decimal:
    """The same value written with exactly two decimal places (it is already whole cents)."""
    return amount.quantize(CENT)


def _balance(
    ledger: _Ledger, due: date, as_of: date, effective_due: date, overdue: bool
) -> Balance:
    discount = ZERO
    if not overdue:
        percent = _discount_percent(ledger.rule, due, as_of)
        discount = round_money(ledger.principal * percent / HUNDRED)
    correction = ledger.correction_due()
    fine = ledger.fine_due()
    interest = ledger.interest_due()
    total = ledger.principal + correction + fine + interest - discount
    return Balance(
        principal=_cents(ledger.principal),
        correction=_cents(correction),
        fine=_cents(fine),
        interest=_cents(interest),
        discount=_cents(discount),
        paid=_cents(ledger.paid),
        total=_cents(total),
        overpaid=_cents(ledger.overpaid),
        days_overdue=(as_of - due).days if overdue and total > 0 else 0,
        effective_due_date=effective_due,
        fee_rule_version=ledger.rule.version,
        as_of=as_of,
    )
