"""The C scanner built with AddressSanitizer and UndefinedBehaviorSanitizer, fed documents made
to push its fixed-size arenas (deep stacks, long names, many closed names, any room) and cut
anywhere: no out-of-bounds access, no undefined behaviour, and the same answers as the
pattern twins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import IN_CI, ROOT_DIR, TESTS_DIR

from reqio_middleware import tokenizer

SOURCE = Path(tokenizer.__file__).with_name("_speedups.c")

# Runs in a subprocess with the sanitizer runtime preloaded; exits non-zero on a difference
# (a sanitizer report aborts it first).
SCRIPT = r"""
import importlib.util, random, sys
spec = importlib.util.spec_from_file_location("_speedups", sys.argv[1])
c = importlib.util.module_from_spec(spec)
spec.loader.exec_module(c)
from reqio_middleware import tokenizer as t
from test_foreign_bulk import PIECES
pieces = PIECES + [
    b"<svg>", b"</svg>", b"<foreignObject>", b"<div>", b"</div>", b"<b>" * 40, b"</b>" * 40,
    b"<g>" * 40, b"</g>" * 40, b"<math><mi>", b"</mi>", b"<x" + b"y" * 80 + b">",
    b"</x" + b"y" * 80 + b">", b'<script src="https://reqio.app/widget.js">', b"</script>",
]
names = [b"svg", b"g", b"math", b"b", b"div", b"mi", b"x" * 70]
opened = tuple(b"g%d" % i for i in range(64))
closing = b"".join(b"</g%d>" % i for i in reversed(range(64)))
# The arenas' edges: every open element closed, then more than the arenas hold.
for doc in (closing + b"<svg><foreignObject>" + b"<div>" * 70, closing + b"<svg>" + b"<g>" * 140):
    for flags in range(8):
        run = (doc, 0, len(doc), opened, flags, 200, opened, 200)
        assert c.scan_foreign(*run) == t._scan_foreign_pattern(*run), run
for doc in (b"<b>" * 70, b"<b></b>" * 70 + b"<i>" * 70):
    assert c.scan_point(doc, 0, len(doc), 1000, 3, (b"b",)) == t._scan_point_pattern(
        doc, 0, len(doc), 1000, 3, (b"b",)
    )
rnd = random.Random(int(sys.argv[2]))
for _ in range(int(sys.argv[3])):
    doc = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 60)))
    pos = rnd.randint(0, len(doc))
    end = rnd.randint(pos, len(doc))
    opened = tuple(rnd.choice(names[:-1]) for _ in range(rnd.randint(0, 64)))
    closed = tuple({rnd.choice(names) for _ in range(rnd.randint(0, 64))})
    flags, room, closed_room = rnd.randint(0, 7), rnd.randint(0, 200), rnd.randint(0, 200)
    run = (doc, pos, end, opened, flags, room, closed, closed_room)
    assert c.scan_foreign(*run) == t._scan_foreign_pattern(*run), run
    point = (doc, pos, end, rnd.randint(0, 200), rnd.randint(0, 3), closed)
    assert c.scan_point(*point) == t._scan_point_pattern(*point), point
    assert c.scan_select(doc, pos, end) == t._scan_select_pattern(doc, pos, end)
    for path in (b"", b"/widget.js"):
        c.scan_data(doc, pos, path)
        assert c.last_candidate(doc, pos, path) == t._last_candidate_pattern(doc, pos, path)
    assert c.tag_end(doc, pos) == t._tag_end_pattern(doc, pos)
    for state in range(10):
        assert c.tag_states(doc, pos, state) == t._tag_states_pattern(doc, pos, state)
    for sub in range(3):
        assert c.script_states(doc, pos, sub) == t._script_states_pattern(doc, pos, sub)
"""


def _runtime(cc: str) -> str:
    """The path of the compiler's AddressSanitizer runtime, or "" when it has none."""
    found = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    return found if os.path.isabs(found) and Path(found).exists() else ""


@pytest.mark.skipif(sys.platform != "linux", reason="the sanitizer runtime is preloaded (Linux)")
def test_the_sanitized_build_runs_clean_on_arena_filling_documents(tmp_path: Path) -> None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    runtime = _runtime(cc) if shutil.which(cc) else ""
    if not runtime or not SOURCE.is_file():
        if IN_CI:
            pytest.fail(f"CI=true: a C compiler with AddressSanitizer ({cc}) and the C source")
        pytest.skip(f"no {cc} with AddressSanitizer, or no C source beside the package")
    out = tmp_path / "_speedups.so"
    include = sysconfig.get_paths()["include"]
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-g", "-O1"]
    build = [cc, "-shared", "-fPIC", *flags, "-fno-omit-frame-pointer", f"-I{include}"]
    subprocess.run([*build, str(SOURCE), "-o", str(out)], check=True, timeout=180)
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=runtime,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="print_stacktrace=1",
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), str(ROOT_DIR)]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), "20261201", "20000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "runtime error" not in proc.stderr, proc.stderr[-4000:]
