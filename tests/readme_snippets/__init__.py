"""The README's copy-paste blocks, one file per framework: type-checked with ``mypy --strict``
and run by the tests (``test_recipes.py``), so the README cannot drift from working code."""
