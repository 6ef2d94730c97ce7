"""Reply intents over the hand-made corpus: precision, recall and F1 per intent, and how many
replies per second :func:`classify` reads, against a bare ``str.lower()`` loop over the same
texts as the ceiling (the least any reading of a reply costs).

The corpus (``tests/shared/domains/inbound/intent_corpus.tsv``) is also what the tests hold to
precision and recall of at least 0.9; this prints the same figures.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.common import ratio_line
from shared.domains.inbound.intents import Intent, IntentKind, classify

CORPUS = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "shared"
    / "domains"
    / "inbound"
    / "intent_corpus.tsv"
)
ROUNDS = 30


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    kind: IntentKind
    days: int | None  # promises: days from the corpus's today to the date said, None for none


@dataclass(frozen=True, slots=True)
class Score:
    kind: IntentKind
    support: int
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def load_corpus(path: Path = CORPUS) -> tuple[date, list[Example]]:
    """The corpus's ``today`` (its ``# today=`` header) and its examples."""
    today: date | None = None
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# today="):
            today = date.fromisoformat(line.removeprefix("# today=").split()[0])
        if not line.strip() or line.startswith("#"):
            continue
        text, kind, *rest = line.split("\t")
        days = None if not rest or rest[0] == "none" else int(rest[0])
        examples.append(Example(text, IntentKind(kind), days))
    if today is None:
        raise ValueError(f"{path} has no '# today=YYYY-MM-DD' line")
    return today, examples


def scores(examples: list[Example], got: list[Intent]) -> list[Score]:
    """Precision and recall of each intent (``other`` included) over the corpus."""
    expected = Counter(e.kind for e in examples)
    predicted = Counter(g.kind for g in got)
    right = Counter(e.kind for e, g in zip(examples, got, strict=True) if e.kind == g.kind)
    return [
        Score(
            kind,
            expected[kind],
            right[kind] / predicted[kind] if predicted[kind] else 1.0,
            right[kind] / expected[kind] if expected[kind] else 1.0,
        )
        for kind in IntentKind
    ]


def date_mistakes(today: date, examples: list[Example], got: list[Intent]) -> list[str]:
    """Promises read as promises whose date is not the one the corpus expects."""
    wrong = []
    for e, g in zip(examples, got, strict=True):
        if e.kind is IntentKind.PROMISE and g.kind is IntentKind.PROMISE:
            want = today + timedelta(days=e.days) if e.days is not None else None
            if g.promise_date != want:
                wrong.append(f"{e.text!r}: expected {want}, got {g.promise_date}")
    return wrong


def table(rows: list[Score]) -> list[str]:
    lines = [f"{'intent':<14} {'n':>4} {'precision':>10} {'recall':>8} {'F1':>6}"]
    lines += [
        f"{r.kind.value:<14} {r.support:>4} {r.precision:>10.3f} {r.recall:>8.3f} {r.f1:>6.3f}"
        for r in rows
    ]
    return lines


def misses(examples: list[Example], got: list[Intent]) -> list[str]:
    return [
        f"{e.text!r}: expected {e.kind.value}, got {g.kind.value} ({g.matched!r})"
        for e, g in zip(examples, got, strict=True)
        if e.kind != g.kind
    ]


def run() -> list[str]:
    today, examples = load_corpus()
    got = [classify(e.text, today=today) for e in examples]
    texts = [e.text for e in examples] * ROUNDS

    started = time.perf_counter()
    for text in texts:
        classify(text, today=today)
    classified = len(texts) / (time.perf_counter() - started)

    started = time.perf_counter()
    for text in texts:
        text.lower()
    ceiling = len(texts) / (time.perf_counter() - started)

    right = sum(e.kind == g.kind for e, g in zip(examples, got, strict=True))
    return [
        f"{len(examples)} replies, {right} read right ({right / len(examples):.1%})",
        *table(scores(examples, got)),
        *(f"  miss: {m}" for m in misses(examples, got)),
        *(f"  date: {m}" for m in date_mistakes(today, examples, got)),
        ratio_line("replies classified", classified, ceiling, "texts/s"),
        f"  {1e6 / classified:.0f} µs per reply (lower() alone: {1e6 / ceiling:.2f} µs;"
        f" ratio 1/{ceiling / classified:,.0f})",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
