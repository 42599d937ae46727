"""What a user installs: the sdist and the wheel, built once per session from this checkout.

The sdist must carry its own tests (a downstream packager runs them from it), the wheel only
the package; the metadata must say what PyPI shows; a build without a C compiler must give a
pure wheel, not one tagged for an ABI it does not use. Needs ``build`` and ``twine`` (the dev
extra) and ``uv`` for the run from the sdist: missing, the tests skip, except under CI=true.
"""

from __future__ import annotations

import email.parser
import email.policy
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.message import Message
from pathlib import Path
from types import ModuleType

import pytest
from conftest import IN_CI, ROOT_DIR

BUILD_TIMEOUT = 600
NAME = "reqio_middleware-0.1.0"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
DEV_TOOLS = ("ruff", "mypy", "playwright", "atheris", "uv", "build", "twine")


def _need_module(name: str) -> None:
    try:
        __import__(name)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{name} is not installed (it is in the dev extra; required when CI=true)")
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")


def _build(out: Path, *kinds: str, env: dict[str, str] | None = None) -> list[Path]:
    _need_module("build")
    proc = subprocess.run(
        [sys.executable, "-m", "build", *kinds, "--outdir", str(out), str(ROOT_DIR)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(out.iterdir())


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel built from it, as ``python -m build`` makes them for release."""
    built = _build(tmp_path_factory.mktemp("dist"))
    by_kind = {("sdist" if p.name.endswith(".tar.gz") else "wheel"): p for p in built}
    assert set(by_kind) == {"sdist", "wheel"}, built
    return by_kind


@pytest.fixture(scope="session")
def pure_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built where the C compiler does not work."""
    (wheel,) = _build(tmp_path_factory.mktemp("pure"), "--wheel", env={"CC": "/bin/false"})
    return wheel


def _wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _sdist_files(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as tf:
        return {m.name.removeprefix(f"{NAME}/") for m in tf.getmembers() if m.isfile()}


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(f"{NAME}.dist-info/METADATA").decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def _wheel_field(wheel: Path, field: str) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(f"{NAME}.dist-info/WHEEL").decode()
    return [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(f"{field}: ")]


def _tracked(folder: str) -> set[str]:
    """Files git tracks under ``folder``; without git, every file there but caches."""
    git = shutil.which("git")
    if git and (ROOT_DIR / ".git").exists():
        out = subprocess.run(
            [git, "ls-files", folder], cwd=ROOT_DIR, capture_output=True, text=True, check=True
        ).stdout
        return {line for line in out.splitlines() if (ROOT_DIR / line).is_file()}
    skip = re.compile(r"__pycache__|\.pyc$|\.hypothesis")
    return {
        str(p.relative_to(ROOT_DIR))
        for p in (ROOT_DIR / folder).rglob("*")
        if p.is_file() and not skip.search(str(p))
    }


# --- the wheel ----------------------------------------------------------------------------


def test_wheel_holds_the_package_its_data_and_the_extension(dists: dict[str, Path]) -> None:
    files = _wheel_files(dists["wheel"])
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in (
        "reqio_middleware/__init__.py",
        "reqio_middleware/py.typed",
        "reqio_middleware/_speedups.pyi",
        f"reqio_middleware/_speedups{suffix}",
        "reqio_middleware/static/reqio-identity.js",
        "reqio_middleware/demo/templates/static-page.html",
        "reqio_middleware/demo/static/widget.js",
        "reqio_middleware/adapters/django/__init__.py",
        "reqio_middleware/adapters/django/middleware.py",
        "reqio_middleware/tags.py",
        f"{NAME}.dist-info/licenses/LICENSE",
    ):
        assert name in files, name
    tops = {name.split("/", 1)[0] for name in files}
    assert tops == {"reqio_middleware", f"{NAME}.dist-info"}, tops
    assert not [name for name in files if name.endswith((".c", ".pyc"))]


def test_wheel_is_tagged_for_the_interpreter_it_compiled_for(dists: dict[str, Path]) -> None:
    assert _wheel_field(dists["wheel"], "Root-Is-Purelib") == ["false"]
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert f"-{tag}-{tag}-" in dists["wheel"].name


def test_without_a_compiler_the_wheel_is_pure(pure_wheel: Path) -> None:
    assert pure_wheel.name == f"{NAME}-py3-none-any.whl"
    assert _wheel_field(pure_wheel, "Root-Is-Purelib") == ["true"]
    assert _wheel_field(pure_wheel, "Tag") == ["py3-none-any"]
    files = _wheel_files(pure_wheel)
    assert "reqio_middleware/rewriter.py" in files
    assert not [name for name in files if name.endswith((".so", ".pyd"))]


# --- metadata -----------------------------------------------------------------------------


def test_metadata_says_what_pypi_shows(dists: dict[str, Path]) -> None:
    meta = _metadata(dists["wheel"])
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta["Author"] and meta["Keywords"] and meta.get_all("Project-URL")
    classifiers = set(meta.get_all("Classifier") or [])
    expected = {f"Programming Language :: Python :: {v}" for v in PYTHONS} | {
        "Framework :: Django",
        "Framework :: Flask",
        "Framework :: FastAPI",
        "Framework :: AsyncIO",
        "Typing :: Typed",
    }
    assert expected <= classifiers, expected - classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX field says it


def test_every_requirement_has_a_floor_and_dev_tools_stay_out_of_test(
    dists: dict[str, Path],
) -> None:
    requires = _metadata(dists["wheel"]).get_all("Requires-Dist") or []
    for line in requires:
        name = re.match(r"[A-Za-z0-9_.-]+", line)
        assert name, line
        if name.group(0) != "reqio-middleware":
            assert ">=" in line, f"no floor: {line}"
    runtime = sorted(line for line in requires if "extra ==" not in line)
    assert runtime == ["PyJWT>=2.8", "anyio>=4.1", "asgiref>=3.7.1"]
    test_extra = [line for line in requires if 'extra == "test"' in line]
    assert test_extra
    for tool in DEV_TOOLS:
        assert not [line for line in test_extra if line.lower().startswith(tool)], tool


def test_twine_check_is_clean(dists: dict[str, Path]) -> None:
    _need_module("twine")
    proc = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists.values())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_long_description_has_no_relative_images() -> None:
    """PyPI shows the README without the repository beside it: a relative image is broken."""
    readme = (ROOT_DIR / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", readme) + re.findall(
        r"<img\b[^>]*\bsrc=[\"']?([^\"'\s>]+)", readme, flags=re.IGNORECASE
    )
    assert [src for src in images if not src.startswith("https://")] == []


# --- the sdist ----------------------------------------------------------------------------


def test_sdist_carries_everything_its_tests_need(dists: dict[str, Path]) -> None:
    files = _sdist_files(dists["sdist"])
    for name in (
        "LICENSE",
        "README.md",
        "SECURITY.md",
        "pyproject.toml",
        "setup.py",
        "reqio_middleware/_speedups.c",
        "tests/conftest.py",
    ):
        assert name in files, name
    missing = _tracked("tests") - files
    assert not missing, sorted(missing)
    caches = re.compile(r"(^|/)(__pycache__|\.[a-z]+_cache|\.hypothesis)/|\.(so|pyc)$")
    assert not [name for name in files if caches.search(name)]


def test_tests_run_from_the_unpacked_sdist(
    dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Unpack, install the sdist (with its test extra), drop the source package, run tests.

    Without ``reqio_middleware/`` beside them, the tests can only import the installed copy,
    so this also checks that the sdist compiles and installs the C scanner.
    """
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).is_file():
        if IN_CI:
            pytest.fail("uv is not installed (it is in the dev extra; required when CI=true)")
        pytest.skip("uv is not installed (pip install -e '.[dev]')")
    work = tmp_path_factory.mktemp("from-sdist")
    with tarfile.open(dists["sdist"]) as tf:
        tf.extractall(work, filter="data")
    tree, venv = work / NAME, work / "venv"
    python = venv / "bin" / "python"

    def run(*command: str | Path, cwd: Path = work) -> str:
        proc = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        return proc.stdout

    run(uv, "venv", "-q", "-p", sys.executable, venv)
    run(uv, "pip", "install", "-q", "--python", python, f"{dists['sdist']}[test]")
    shutil.rmtree(tree / "reqio_middleware")
    probe = "import reqio_middleware._speedups as s, reqio_middleware as r; print(r.__file__)"
    assert str(venv) in run(python, "-c", probe, cwd=tree)
    tests = ["tests/test_tokens.py", "tests/test_frameworks.py", "tests/test_speedups.py"]
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, cwd=tree)
    assert re.search(r"\b\d+ passed\b", out) and " failed" not in out, out[-2000:]


# --- the CI matrix ------------------------------------------------------------------------


def _matrix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_matrix", ROOT_DIR / ".ci" / "matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def test_matrix_core_subset_is_every_test_file_but_the_system_ones() -> None:
    matrix = _matrix()
    every = {str(p.relative_to(ROOT_DIR)) for p in (ROOT_DIR / "tests").glob("test_*.py")}
    assert set(matrix.SYSTEM_TESTS) <= every, set(matrix.SYSTEM_TESTS) - every
    core = matrix.core_tests()
    assert set(core) == every - set(matrix.SYSTEM_TESTS)
    assert "tests/test_rewriter.py" in core and "tests/test_packaging.py" not in core


def test_matrix_plans_every_other_interpreter_and_floors_on_the_oldest() -> None:
    matrix = _matrix()
    found = [
        matrix.Interpreter((3, minor, 0), Path(f"/py3{minor}")) for minor in (10, 11, 12, 13, 14)
    ]
    cells = matrix.plan(found, [], floors=True)
    this = "{}.{}".format(*sys.version_info[:2])
    latest = [c.interpreter.minor for c in cells if not c.floors]
    assert latest == [f"3.{m}" for m in (10, 11, 12, 13, 14) if f"3.{m}" != this]
    assert [(c.label, c.interpreter.minor) for c in cells if c.floors] == [
        ("py3.10-floors", "3.10")
    ]
    assert [c.label for c in matrix.plan(found, ["3.12"], floors=False)] == (
        ["py3.12"] if this != "3.12" else []
    )
