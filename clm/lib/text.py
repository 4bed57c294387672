"""Text folding for search that ignores Vietnamese diacritics and case."""

from __future__ import annotations

import unicodedata

# đ/Đ are letters of their own, not a d with a combining mark, so NFD leaves them alone.
_EXTRA = {"đ": "d", "Đ": "d", "ð": "d"}
_CACHE_LIMIT = 1 << 16


class _FoldTable(dict):
    """Character -> the character without its diacritics, filled in on first sight.

    Folding character by character gives what decomposing the whole text (NFD) and dropping its combining
    marks gives: canonical decomposition works per character and only reorders combining marks, which
    are dropped. `str.translate` then runs in C; names and addresses use a few hundred characters.
    """

    def __missing__(self, code: int) -> str:
        char = _EXTRA.get(chr(code), chr(code))
        folded = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        if len(self) < _CACHE_LIMIT:
            self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str | None) -> str:
    """Lower-case `text` and strip diacritics: "Nguyễn Văn Đức" -> "nguyen van duc"."""
    if not text:
        return ""
    return " ".join(text.translate(_FOLD).lower().split())


def search_terms(query: str) -> list[str]:
    """The folded words of a search query, each of which must match."""
    return [w for w in fold(query).split(" ") if w]
