"""Script data and its escaped states (``_script_states``): C and pattern agree, and resume.

The rewriter reads a ``<script>`` element's text with ``_script_states`` and, when a chunk
ends first, keeps the bytes from ``max(pos, len(buf) - 9)`` for the next one; these tests check
that both twins give the same answers and that reading in pieces finds the end tag the whole
buffer has.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reqio_middleware import tokenizer
from reqio_middleware.tokenizer import SCRIPT_DOUBLE, SCRIPT_END, SCRIPT_ESCAPED, SCRIPT_NORMAL

_C = tokenizer._script_states is not tokenizer._script_states_pattern
if _C:  # the -DREQIO_PORTABLE build of the extension, a fixture of test_speedups
    from test_speedups import portable  # noqa: F401
States = Callable[[bytes, int, int], tuple[int, int]]
_TWINS: dict[str, States] = {"pattern": tokenizer._script_states_pattern}
if _C:
    _TWINS["c"] = tokenizer._script_states

SCRIPT_PIECES = [
    b"<!--",
    b"-->",
    b"--",
    b"-",
    b"->",
    b"<!-->",
    b"<!",
    b"<",
    b"</",
    b"<script>",
    b"<SCRIPT ",
    b"<script/",
    b"<scripts>",
    b"<script",
    b"</script>",
    b"</Script\t",
    b"</script",
    b"</scripty>",
    b"</style>",
    b"var a = 1;",
    b"x",
    b">",
    b" ",
    b"\n",
]
scripts = st.lists(st.sampled_from(SCRIPT_PIECES) | st.binary(max_size=4), max_size=30).map(
    b"".join
)
subs = st.sampled_from([SCRIPT_NORMAL, SCRIPT_ESCAPED, SCRIPT_DOUBLE])


@pytest.mark.skipif(not _C, reason="C extension not built")
@settings(max_examples=3000)
@given(scripts, st.integers(min_value=0, max_value=200), subs)
def test_c_script_states_equal_the_pattern(doc: bytes, at: int, sub: int) -> None:
    pos = min(at, len(doc))
    c = tokenizer._script_states(doc, pos, sub)
    assert c == tokenizer._script_states_pattern(doc, pos, sub)


def _in_pieces(states: States, doc: bytes, cuts: list[int], sub: int) -> tuple[int, int]:
    """Read ``doc`` as the rewriter does when it arrives cut at ``cuts``: (the end tag's
    position in ``doc`` or -1, the sub-state at the end)."""
    held, offset = b"", 0
    bounds = sorted({min(c, len(doc)) for c in cuts} | {len(doc)})
    at = 0
    for bound in bounds:
        buf = held + doc[at:bound]
        at = bound
        pos, found = states(buf, 0, sub)
        if found == SCRIPT_END:
            return offset + pos, sub
        sub = found
        hold = max(pos, len(buf) - 9)
        held, offset = buf[hold:], offset + hold
    return -1, sub


@pytest.mark.parametrize("twin", sorted(_TWINS))
@settings(max_examples=1000)
@given(scripts, st.lists(st.integers(min_value=0, max_value=200), max_size=8), subs)
def test_reading_in_pieces_finds_what_the_whole_finds(
    twin: str, doc: bytes, cuts: list[int], sub: int
) -> None:
    states = _TWINS[twin]
    pos, found = states(doc, 0, sub)
    expected = (pos, sub) if found == SCRIPT_END else (-1, found)
    if found == SCRIPT_END:
        # where the whole buffer ends it, in whichever sub-state reading reaches it
        assert _in_pieces(states, doc, cuts, sub)[0] == pos
    else:
        assert _in_pieces(states, doc, cuts, sub) == expected


@pytest.mark.parametrize("twin", sorted(_TWINS))
@pytest.mark.parametrize(
    "doc",
    [
        b"var a = 1; </script>",
        b"x <!-- y --> </SCRIPT/>",
        b"<!--<script>a</script>b</script\n",
        b"<!-- <script> --> </script>",
        b"a-<!-<!--<scrip<script\t</scrip</script>-- -->-</script >",
    ],
)
def test_every_cut_finds_the_end_tag(twin: str, doc: bytes) -> None:
    states = _TWINS[twin]
    end, found = states(doc, 0, SCRIPT_NORMAL)
    assert found == SCRIPT_END
    for cut in range(len(doc) + 1):
        assert _in_pieces(states, doc, [cut], SCRIPT_NORMAL)[0] == end, cut
        assert _in_pieces(states, doc, list(range(cut, len(doc))), SCRIPT_NORMAL)[0] == end, cut


@pytest.mark.parametrize("twin", sorted(_TWINS))
@pytest.mark.parametrize(
    ("doc", "sub", "expected"),
    [
        (b"var a;</script>", SCRIPT_NORMAL, (6, SCRIPT_END)),
        (b"a</SCRIPT\t>", SCRIPT_NORMAL, (1, SCRIPT_END)),
        (b"a</scripty></script/>", SCRIPT_NORMAL, (11, SCRIPT_END)),
        # '<!--' opens the escaped state; its dashes count towards '-->' ('<!-->' closes it)
        (b"<!--></script>", SCRIPT_NORMAL, (5, SCRIPT_END)),
        (b"<!--x", SCRIPT_NORMAL, (2, SCRIPT_ESCAPED)),
        # the end tag ends escaped script data too
        (b"<!-- x </script>", SCRIPT_NORMAL, (7, SCRIPT_END)),
        # '<script' in escaped data double-escapes: '</script>' then only undoes that
        (b"<!--<script></script>x</script>", SCRIPT_NORMAL, (22, SCRIPT_END)),
        (b"<!--<script>-->", SCRIPT_NORMAL, (15, SCRIPT_NORMAL)),
        (b"<!--<script>--></script>", SCRIPT_NORMAL, (15, SCRIPT_END)),
        (b"<!--<script></script>", SCRIPT_NORMAL, (21, SCRIPT_ESCAPED)),
        (b"<!--<script>", SCRIPT_NORMAL, (12, SCRIPT_DOUBLE)),
        (b"<!--<scripts></script>", SCRIPT_NORMAL, (13, SCRIPT_END)),
        # resumed in each sub-state
        (b"</script>", SCRIPT_DOUBLE, (9, SCRIPT_ESCAPED)),
        (b"<script>", SCRIPT_DOUBLE, (0, SCRIPT_DOUBLE)),
        (b"x-->", SCRIPT_DOUBLE, (4, SCRIPT_NORMAL)),
        (b"<script>", SCRIPT_ESCAPED, (8, SCRIPT_DOUBLE)),
        (b"<!--", SCRIPT_ESCAPED, (0, SCRIPT_ESCAPED)),
        # cut short: the position of the last change, wherever the buffer ends
        (b"abc</scrip", SCRIPT_NORMAL, (0, SCRIPT_NORMAL)),
        (b"<!--<script", SCRIPT_NORMAL, (2, SCRIPT_ESCAPED)),
        (b"", SCRIPT_ESCAPED, (0, SCRIPT_ESCAPED)),
    ],
)
def test_script_states(twin: str, doc: bytes, sub: int, expected: tuple[int, int]) -> None:
    assert _TWINS[twin](doc, 0, sub) == expected


@pytest.mark.parametrize("twin", sorted(_TWINS))
def test_script_states_start_at_pos(twin: str) -> None:
    doc = b"</script><!--<script>"
    assert _TWINS[twin](doc, 1, SCRIPT_NORMAL) == (21, SCRIPT_DOUBLE)
    assert _TWINS[twin](doc, 0, SCRIPT_NORMAL) == (0, SCRIPT_END)


@pytest.mark.skipif(not _C, reason="C extension not built")
def test_script_states_bad_arguments_raise() -> None:
    from reqio_middleware import _speedups

    with pytest.raises(ValueError):
        _speedups.script_states(b"abc", 4, 0)
    with pytest.raises(ValueError):
        _speedups.script_states(b"abc", 0, 3)
    with pytest.raises(ValueError):
        _speedups.script_states(b"abc", 0, -1)
    with pytest.raises(TypeError):
        _speedups.script_states("abc", 0, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.script_states(b"abc", 0)  # type: ignore[call-arg]


@pytest.mark.skipif(not _C, reason="C extension not built")
def test_portable_build_reads_script_data_alike(portable: ModuleType) -> None:
    docs = [p + q + r for p in SCRIPT_PIECES for q in SCRIPT_PIECES[:12] for r in (b"", b"x-")]
    for doc in docs:
        for sub in (SCRIPT_NORMAL, SCRIPT_ESCAPED, SCRIPT_DOUBLE):
            expected = tokenizer._script_states_pattern(doc, 0, sub)
            assert portable.script_states(doc, 0, sub) == expected, (doc, sub)
