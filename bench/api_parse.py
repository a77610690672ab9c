"""How long reading a Canary takes: parse + validate, as the controller does on every watch event.

Run: PYTHONPATH=src python bench/api_parse.py — prints figures, never fails on time.
"""

from __future__ import annotations

import time
from pathlib import Path

from coalmine.api.manifests import iter_documents
from coalmine.api.validation import parse_object

EXAMPLES = Path(__file__).resolve().parents[1] / "tests" / "api" / "flagger_examples"


def main() -> None:
    documents = [
        document
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for document in iter_documents(path.read_text())
        if isinstance(document, dict)
        and str(document.get("apiVersion", "")).startswith("flagger.app/")
    ]
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        for document in documents:
            parse_object(document)
    elapsed = time.perf_counter() - started
    count = rounds * len(documents)
    print(f"parsed {count} objects ({len(documents)} documentation examples x {rounds})")
    print(f"{count / elapsed:,.0f} objects/s, {elapsed / count * 1e6:,.0f} µs per object")


if __name__ == "__main__":
    main()
