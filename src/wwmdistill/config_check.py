"""Config checks at DAG build that need more than the config, each naming the key.

The config itself is validated by the settings models (wwmdistill.settings.check_config).
`logits.top_k` is checked here against the vocabulary before any job runs, and settings that
name paths are normalised so that spelling a path differently reruns nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wwmdistill.settings import ConfigError

__all__ = ["ConfigError", "check_top_k", "normalise_paths", "vocabulary_size"]


def vocabulary_size(tokenizer_dir: Path) -> int | None:
    """Tokens in a tokenizer directory (tokenizer.json, else vocab.txt); None if it has neither."""
    tokenizer_json = tokenizer_dir / "tokenizer.json"
    if tokenizer_json.is_file():
        tokenizer = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        vocab = tokenizer["model"]["vocab"]
        added = {token["content"] for token in tokenizer.get("added_tokens") or []}
        return len(vocab) + len(added - set(vocab if isinstance(vocab, dict) else []))
    vocab_txt = tokenizer_dir / "vocab.txt"
    if vocab_txt.is_file():
        return sum(1 for _ in vocab_txt.open(encoding="utf-8"))
    return None


def check_top_k(config: dict[str, Any], tokenizer_dir: Path) -> None:
    """logits.top_k against the vocabulary, wherever it is on disk before any job runs.

    The caching job would find it out only after the teacher trained, and after Snakemake had
    deleted the previous cache. A local tokenizer source, or the tokenizer stage's output, gives
    the exact count. (A trained vocabulary's size is not known beforehand: WordPiece keeps every
    character of its alphabet, so it can come out larger than `tokenizer.vocab_size`.)
    """
    top_k = config["logits"]["top_k"]
    for directory in (Path(config["tokenizer"]["source"]), tokenizer_dir):
        size = vocabulary_size(directory) if directory.is_dir() else None
        if size is not None and top_k > size:
            raise ConfigError(
                f"config logits.top_k: {top_k} exceeds the {size} tokens of the tokenizer in "
                f"{directory} (when a config change is about to rebuild it with more tokens, "
                "delete it first)"
            )


# Settings that may name a path: spelt differently (`data`, `data/`, `./data`), a path must be
# one value to the params trigger. Hub ids and keywords (`train`) come through unchanged.
_PATH_SETTINGS = (
    ("data_root",),
    ("segmentation", "user_dict"),
    ("segmentation", "ltp", "model"),
    ("tokenizer", "source"),
    ("teacher", "source"),
    ("students", "*", "path"),
    ("tasks", "*", "augment", "stopwords"),
    ("tasks", "*", "augment", "synonyms"),
)


def normalise_paths(config: dict[str, Any]) -> None:
    """Normalise in place every setting that names a path, and local sources' patterns."""
    for keys in _PATH_SETTINGS:
        _normalise(config, keys)
    for source in config.get("sources", {}).values():
        if source.get("paths"):
            source["paths"] = [os.path.normpath(pattern) for pattern in source["paths"]]


def _normalise(block: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(block, dict):
        return
    head, rest = keys[0], keys[1:]
    children = list(block) if head == "*" else [head] if head in block else []
    for key in children:
        if rest:
            _normalise(block[key], rest)
        elif isinstance(block[key], str):
            block[key] = os.path.normpath(block[key])
