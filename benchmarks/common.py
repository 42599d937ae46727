"""What every section shares: the bench secret, the identity, and the ``bytes.find`` floor."""

from __future__ import annotations

from pathlib import Path

from pages import PROJECT_ID, WIDGET_SRC

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEF"  # 57 bytes, not a real one
AUDIENCE = f"https://reqio.app/p/{PROJECT_ID}"
IDENTITY = {"sub": "user_42", "email": "ada@example.com", "traits": {"plan": "pro"}}
NEEDLE = WIDGET_SRC.encode()

__all__ = ["AUDIENCE", "HERE", "IDENTITY", "NEEDLE", "PROJECT_ID", "SECRET", "find_all"]


def find_all(page: bytes) -> int:
    """The scan floor: every occurrence of the src, so the whole page is read as ours must."""
    n = 0
    i = page.find(NEEDLE)
    while i >= 0:
        n += 1
        i = page.find(NEEDLE, i + 1)
    return n
