"""The html5lib-tests tree-construction corpus, and widget tags inserted into its documents.

The ``.dat`` format (``tests/data/html5lib-tests/tree-construction/README.md``): ``#data``
then the document, ``#errors``, optional ``#document-fragment`` / ``#script-off`` /
``#script-on``, then ``#document``, the expected tree. Fragment cases are not documents and
are left out.

html5lib 1.1 predates some changes the corpus tests (customizable ``<select>``, ``</br>`` in
foreign content, template contents), so a document is used only when html5lib builds the
nodes the corpus expects for it (:func:`html5lib_agrees`): the oracle is trusted where it
has been checked.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from field.oracle import dump, parse

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "html5lib-tests" / "tree-construction"
_MARKERS = ("errors", "new-errors", "document-fragment", "script-off", "script-on", "document")

#: How the corpus documents get their widget tags: ``{n}`` is the probe's id.
SPELLINGS = (
    '<script src="https://reqio.app/widget.js" data-probe={n}></script>',
    "<SCRIPT SRC='//REQIO.APP/widget.js' DATA-PROBE='{n}'></SCRIPT>",
    '<script data-probe="{n}" async\nsrc=https://reqio.app/widget.js?v=2></script>',
    '<Script\tsrc = "https://Reqio.App/widget.js#x" data-probe={n} data-identity-token=old>',
    '<script src="https://reqio.app/widget.js" data-probe="{n}"/>',
    "<script src=&#x68;ttps://reqio.app/widget.js data-probe={n}></script>",
)

#: Tags that are never the widget: a token on one of them is a leak.
LOOKALIKES = (
    '<script src="https://reqio.app.evil.example/widget.js"></script>',
    '<script src="http://reqio.app/widget.js"></script>',
    '<img src="https://reqio.app/widget.js">',
)


@dataclass(frozen=True)
class Case:
    """One ``#data`` document of a ``.dat`` file."""

    file: str
    index: int
    data: str
    scripting: bool
    expected: str

    @property
    def name(self) -> str:
        return f"{self.file}#{self.index}"


def dat_files() -> list[Path]:
    return sorted(DATA_DIR.rglob("*.dat"))


def _sections(block: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"data": []}
    current = "data"
    for line in block.split("\n"):
        if line.startswith("#") and line[1:] in _MARKERS:
            current = line[1:]
            sections[current] = []
        else:
            sections[current].append(line)
    return sections


def load(path: Path) -> list[Case]:
    """The documents of one ``.dat`` file (fragment cases left out)."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(DATA_DIR).as_posix()
    cases: list[Case] = []
    for index, block in enumerate(("\n" + text).split("\n#data\n")[1:]):
        sections = _sections(block)
        if "document-fragment" in sections:
            continue
        expected = "\n".join(sections.get("document", [])).strip("\n")
        scripting = "script-off" not in sections
        cases.append(Case(name, index, "\n".join(sections["data"]), scripting, expected))
    return cases


# --- does html5lib build what the corpus expects? --------------------------------------------


def _nodes(tree_dump: str) -> tuple[Counter[str], str]:
    """The element, attribute and comment lines (as a multiset), and all text in order.

    Where nodes sit is left out: html5lib 1.1 misplaces some (template contents), which does
    not change which elements exist, their namespaces, or what is text.
    """
    lines: Counter[str] = Counter()
    text: list[str] = []
    for line in tree_dump.split("\n"):
        body = line[1:].strip() if line.startswith("|") else line.strip()
        if not body or body in ("content", "#document"):
            continue
        if body.startswith('"'):
            text.append(body)
        else:
            lines[body] += 1
    return lines, "".join(sorted("".join(text).replace('"', "")))


def html5lib_agrees(case: Case) -> bool:
    """Whether html5lib builds the nodes the corpus expects for ``case``."""
    document = parse(case.data, scripting=case.scripting, namespaced=False)
    return _nodes(dump(document)) == _nodes(case.expected)


# --- where widget tags go ----------------------------------------------------------------------


def offsets(data: str, rng: random.Random, count: int) -> list[int]:
    """``count`` insertion points: tag boundaries, text, inside tags and attribute values."""
    boundaries = [i for i, c in enumerate(data) if c == "<"] + [
        i + 1 for i, c in enumerate(data) if c == ">"
    ]
    in_values = [i + 1 for i, c in enumerate(data) if c in "\"'="]
    pools = [boundaries, in_values, list(range(len(data) + 1))]
    chosen = {0, len(data)}
    for k in range(count):
        pool = pools[k % len(pools)] or pools[-1]
        chosen.add(rng.choice(pool))
    return sorted(chosen)


def insert(data: str, points: list[int], tags: list[str]) -> str:
    """``data`` with ``tags[k]`` inserted at ``points[k]`` (points in ascending order)."""
    pieces: list[str] = []
    last = 0
    for point, tag in zip(points, tags, strict=True):
        pieces.append(data[last:point])
        pieces.append(tag)
        last = point
    pieces.append(data[last:])
    return "".join(pieces)


def points(case: Case, per_doc: int) -> list[int]:
    """The insertion points sampled for ``case`` (the same on every run)."""
    return offsets(case.data, random.Random(case.name), per_doc)


def variants(case: Case, per_doc: int) -> list[str]:
    """Documents made from ``case``: one widget tag at each sampled point, then all at once.

    The last document also carries look-alike tags (every third point).
    """
    rng = random.Random(case.name + "/lookalikes")
    at = points(case, per_doc)
    docs = []
    for k, point in enumerate(at):
        tag = SPELLINGS[(case.index + k) % len(SPELLINGS)].format(n=k)
        docs.append(insert(case.data, [point], [tag]))
    many = [
        SPELLINGS[k % len(SPELLINGS)].format(n=k) if k % 3 else rng.choice(LOOKALIKES)
        for k in range(len(at))
    ]
    docs.append(insert(case.data, at, many))
    return docs
