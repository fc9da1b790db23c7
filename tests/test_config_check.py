"""Config checks at DAG build beyond the settings models: logits.top_k, paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wwmdistill.config_check import ConfigError, check_top_k, normalise_paths


def test_top_k_is_checked_against_the_tokenizers_on_disk(tmp_path: Path) -> None:
    built, source = tmp_path / "results/tokenizer", tmp_path / "local"
    config = {"logits": {"top_k": 10}, "tokenizer": {"source": "train", "vocab_size": 8}}
    check_top_k(config, built)  # nothing on disk yet: a trained vocabulary's size is unknown
    vocab = {f"t{i}": i for i in range(8)}
    tokenizer = {"model": {"vocab": vocab}, "added_tokens": [{"content": "t0"}, {"content": "x"}]}
    built.mkdir(parents=True)
    (built / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"top_k: 10 exceeds the 9 tokens of .* in {built}"):
        check_top_k(config, built)
    config["logits"]["top_k"] = 9
    check_top_k(config, built)
    source.mkdir()
    (source / "vocab.txt").write_text("".join(f"w{i}\n" for i in range(5)), encoding="utf-8")
    config["tokenizer"]["source"] = str(source)
    with pytest.raises(ConfigError, match=rf"top_k: 9 exceeds the 5 tokens of .* in {source}"):
        check_top_k(config, built)


def test_paths_spelt_differently_become_one_value() -> None:
    config = {
        "data_root": "./data/",
        "sources": {"pd": {"type": "local", "paths": ["./clue//*.txt"]}},
        "segmentation": {"user_dict": None, "ltp": {"model": "LTP/small"}},
        "tokenizer": {"source": "train"},
        "teacher": {"source": "models/teacher/"},
        "students": {"a": {"path": None}, "b": {"path": "x/./y"}},
        "tasks": {"t": {"augment": {"stopwords": "words//stop.txt", "synonyms": None}}},
    }
    normalise_paths(config)
    assert config == {
        "data_root": "data",
        "sources": {"pd": {"type": "local", "paths": ["clue/*.txt"]}},
        "segmentation": {"user_dict": None, "ltp": {"model": "LTP/small"}},
        "tokenizer": {"source": "train"},
        "teacher": {"source": "models/teacher"},
        "students": {"a": {"path": None}, "b": {"path": "x/y"}},
        "tasks": {"t": {"augment": {"stopwords": "words/stop.txt", "synonyms": None}}},
    }
