"""``make bench``: every benchmark, each printed as a figure and a ratio to a bare ceiling
measured in the same run.  Never part of ``make test``."""

from __future__ import annotations

import sys
import time

from bench import (
    auth_throughput,
    balance_throughput,
    import_throughput,
    intent_corpus,
    pipeline_throughput,
    planner_throughput,
    relay_throughput,
    webhook_ingestion,
    whatsapp_throughput,
)

BENCHMARKS = {
    "relay": relay_throughput.run,
    "auth": auth_throughput.run,
    "balance": balance_throughput.run,
    "import": import_throughput.run,
    "whatsapp": whatsapp_throughput.run,
    "planner": planner_throughput.run,
    "pipeline": pipeline_throughput.run,
    "pipeline_without_audit": lambda: pipeline_throughput.run(audit=False),
    "intents": intent_corpus.run,
    "webhooks": webhook_ingestion.run,
}


def main(argv: list[str]) -> None:
    chosen = argv or list(BENCHMARKS)
    for name in chosen:
        started = time.perf_counter()
        for line in BENCHMARKS[name]():
            print(line, flush=True)
        print(f"  ({name}: {time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
