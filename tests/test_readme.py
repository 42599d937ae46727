"""The README's framework blocks are the files in ``tests/readme_snippets``, which
``tests/test_recipes.py`` type-checks under ``mypy --strict`` and runs: a block edited in one
place and not the other fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "tests" / "readme_snippets"
#: Where a snippet must differ from the README to be importable from the tests.
IN_README = {
    '"tests.readme_snippets.django_identity.user_identity"': (
        '"myapp.reqio.user_identity"  # the function below'
    )
}
BLOCKS = ("django_settings", "django_identity", "django_urls", "flask_app", "fastapi_app")


@pytest.mark.parametrize("name", BLOCKS)
def test_readme_block_is_the_checked_snippet(name: str) -> None:
    code = (SNIPPETS / f"{name}.py").read_text().rstrip("\n")
    for theirs, ours in IN_README.items():
        code = code.replace(theirs, ours)
    readme = (ROOT / "README.md").read_text()
    assert f"```python\n{code}\n```" in readme, f"README's block for {name}.py differs from it"


def test_every_recipe_the_readme_links_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    for recipe in ("litestar", "quart", "falcon"):
        assert f"(docs/recipes/{recipe}.md)" in readme
        assert (ROOT / "docs" / "recipes" / f"{recipe}.md").is_file()
