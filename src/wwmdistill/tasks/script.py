"""Traditional and simplified Chinese: OpenCC's t2s conversion of task text, and whether a
tokenizer's vocabulary is simplified (which decides if a traditional-script task is converted).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping


def simplifier(enabled: bool) -> Callable[[str], str]:
    """OpenCC's t2s conversion when `enabled`, else text as it is."""
    if not enabled:
        return lambda text: text
    import opencc

    return opencc.OpenCC("t2s").convert


@functools.cache
def t2s_character_pairs() -> tuple[tuple[str, str], ...]:
    """(traditional, simplified) of every CJK Unified Ideograph that OpenCC's t2s changes."""
    import opencc

    chars = [chr(c) for c in range(0x4E00, 0xA000)]
    # One character per line, so t2s's phrase table never joins neighbours.
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):
        raise RuntimeError("OpenCC t2s changed the line count of a character list")
    return tuple((t, s) for t, s in zip(chars, converted, strict=True) if s != t and len(s) == 1)


def vocabulary_script(vocab: Mapping[str, int]) -> tuple[str, int, int]:
    """("simplified" or "both", traditional held, simplified held) of a tokenizer vocabulary.

    Counted over t2s's character pairs: a vocabulary trained on simplified text holds the
    simplified side and little of the traditional one; "simplified" when it holds fewer than
    half as many traditional characters as simplified ones.
    """
    pairs = t2s_character_pairs()
    traditional = sum(t in vocab for t, _ in pairs)
    simplified = len({s for _, s in pairs if s in vocab})
    script = "simplified" if 2 * traditional < simplified else "both"
    return script, traditional, simplified
