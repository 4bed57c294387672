"""Folding for diacritics-insensitive search."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from clm.lib.text import fold, search_terms


def _reference(text: str) -> str:
    """The definition: decompose the whole text, drop combining marks, đ -> d, lower-case, one space."""
    decomposed = unicodedata.normalize("NFD", text.translate(str.maketrans({"đ": "d", "Đ": "d", "ð": "d"})))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())


def test_vietnamese_names_fold_to_plain_lower_case():
    assert fold("Nguyễn Văn Đức") == "nguyen van duc"
    assert fold("  TRẦN   thị  Ánh ") == "tran thi anh"
    assert fold("Hà Nội") == fold("ha noi")
    assert fold(None) == "" and fold("") == ""


def test_text_already_decomposed_folds_like_composed_text():
    assert fold(unicodedata.normalize("NFD", "Phạm Hữu Lộc")) == "pham huu loc"


def test_search_terms_are_the_folded_words():
    assert search_terms("Lê  Thị HOA") == ["le", "thi", "hoa"]


@given(st.text(max_size=60))
def test_folding_character_by_character_equals_folding_the_whole_text(text):
    assert fold(text) == _reference(text)


@given(st.text(alphabet="aăâbdđeêioôơuưyAĂÂĐÊÔƠƯ àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ\u0300\u0301\u0303\u0309\u0323",
               max_size=40))
def test_folding_vietnamese_text_equals_folding_the_whole_text(text):
    assert fold(text) == _reference(text)
