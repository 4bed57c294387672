"""Text folding for search that ignores Vietnamese diacritics and case."""

from __future__ import annotations

import unicodedata

# đ/Đ are letters of their own, not a d with a combining mark, so NFD leaves them alone.
_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ð": "d"})


def fold(text: str | None) -> str:
    """Lower-case `text` and strip diacritics: "Nguyễn Văn Đức" -> "nguyen van duc"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())


def search_terms(query: str) -> list[str]:
    """The folded words of a search query, each of which must match."""
    return [w for w in fold(query).split(" ") if w]
