"""Word resources for augmentation: stopword and Cilin-style synonym lists, and the CJK ranges.

Stopwords and CJK-free words are never slots (see `filler`); synonyms add candidates beside the
masked LM's.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

BUILTIN_STOPWORDS = "data/stopwords_zh.txt"
# BERT's CJK ranges (BasicTokenizer._is_chinese_char): each of these characters is a token.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ceaf"
_CJK += "\U0002f800-\U0002fa1f"
HAS_CJK = re.compile(f"[{_CJK}]")
_ALL_CJK = re.compile(f"[{_CJK}]+")
_WHITESPACE = re.compile(r"\s")


def _is_all_cjk(text: str) -> bool:
    return _ALL_CJK.fullmatch(text) is not None


def _decode(path: Path, raw: bytes) -> str:
    # Cilin as published is GB-encoded; a UTF-8 copy is read as it is.
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: neither UTF-8 nor GB18030 ({err})") from err


def load_stopwords(path: str | Path | None) -> frozenset[str]:
    """Stopwords, one a line (`#` starts a comment line); None reads the built-in list."""
    if path is None:
        name = f"wwmdistill/{BUILTIN_STOPWORDS}"
        text = resources.files("wwmdistill").joinpath(BUILTIN_STOPWORDS).read_text("utf-8")
    else:
        name = str(path)
        text = _decode(Path(path), Path(path).read_bytes())
    words = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if _WHITESPACE.search(word):
            raise ValueError(f"{name}:{lineno}: a stopword line holds more than one word")
        words.add(word)
    return frozenset(words)


def load_synonyms(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Synonyms from a Cilin-style file: `Aa01A01= 人 士 人物 人士` per line.

    Only `=` lines are synonym sets; `#` (related words) and `@` (a word standing alone) are
    skipped. A word's synonyms are the other CJK-only words of every set it is in, in file order.
    """
    path = Path(path)
    text = _decode(path, path.read_bytes())
    synonyms: dict[str, list[str]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        code = parts[0]
        if len(code) < 2 or code[-1] not in "=#@":
            raise ValueError(
                f"{path}:{lineno}: expected a Cilin code ending in '=', '#' or '@', got {code!r}"
            )
        if code[-1] != "=":
            continue
        words = [w for w in dict.fromkeys(parts[1:]) if _is_all_cjk(w)]
        for word in words:
            known = synonyms.setdefault(word, [])
            known.extend(w for w in words if w != word and w not in known)
    return {word: tuple(others) for word, others in synonyms.items() if others}
