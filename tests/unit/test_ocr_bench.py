"""The OCR benchmark's edit distance, against the textbook dynamic programme."""

from __future__ import annotations

import random

import pytest

from bench.ocr import cer, edit_distance


def textbook(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


@pytest.mark.parametrize("seed", range(40))
def test_edit_distance_agrees_with_the_textbook(seed: int) -> None:
    chance = random.Random(seed)
    a = "".join(chance.choice("abc é") for _ in range(chance.randrange(0, 90)))
    b = "".join(chance.choice("abcd ") for _ in range(chance.randrange(0, 90)))
    assert edit_distance(a, b) == textbook(a, b)


def test_character_error_rate_collapses_white_space() -> None:
    assert cer("This  file\ncontains", "This file contains") == 0.0
    assert cer("kitten", "sitting") == pytest.approx(3 / 7)
    assert cer("", "abc") == 1.0
