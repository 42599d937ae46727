"""Corpus counts for a report: ``python tests/field/report.py`` (from the checkout).

Prints how many corpus documents there are, how many html5lib agrees on, how many widget tags
were inserted, and what the rewriter importable from here did with them: stamped, missed
(with and without a reason), leaked.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from field import corpus
from field.checks import outcome

PER_DOC = 8


def tally() -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in corpus.dat_files():
        for case in corpus.load(path):
            counts["documents"] += 1
            if not corpus.html5lib_agrees(case):
                continue
            counts["documents html5lib agrees on"] += 1
            # each point once alone, then all of them together
            counts["inserted tags"] += 2 * len(corpus.points(case, PER_DOC))
            for doc in corpus.variants(case, PER_DOC):
                counts["rewritten documents"] += 1
                result = outcome(doc)
                counts["widget script elements stamped"] += len(result.verdict.stamped)
                counts["widget script elements missed"] += len(result.verdict.missed)
                counts["misses without a reason"] += len(result.unexplained)
                counts["documents with a leak"] += bool(result.verdict.leaks)
                counts["leaks"] += len(result.verdict.leaks)
    return counts


def main() -> None:
    for name, value in tally().items():
        print(f"{name:32} {value}")


if __name__ == "__main__":
    main()
