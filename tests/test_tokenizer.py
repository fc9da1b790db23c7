"""The tokenizer stage on real Chinese text: trained WordPiece, local fetch, fingerprints."""

from __future__ import annotations

import itertools
import json
import shutil
import unicodedata
from pathlib import Path

import pytest
from samples import CLUE_CORPUS, write_corpus_shard
from transformers import AutoTokenizer

from wwmdistill.tokenizer import (
    SPECIAL_TOKENS,
    TokenizerSettings,
    build_tokenizer,
    fetch_tokenizer,
    load_tokenizer,
    random_replacement_ids,
    tokenizer_fingerprint,
    train_wordpiece,
)


def _is_cjk(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("CJK UNIFIED IDEOGRAPH")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    if not CLUE_CORPUS.is_file():
        pytest.fail(f"real corpus missing: {CLUE_CORPUS}")
    with CLUE_CORPUS.open(encoding="utf-8") as f:
        lines = [line.strip() for line in itertools.islice(f, 1500) if line.strip()]
    root = tmp_path_factory.mktemp("corpus")
    # Two shards, so training reads more than one.
    shards = []
    for i, part in enumerate((lines[::2], lines[1::2])):
        ids = [f"{i}-{j}" for j in range(len(part))]
        shards.append(write_corpus_shard(root / f"{i:05d}.arrow", ids, part, f"c{i}"))
    return shards, lines


@pytest.fixture(scope="module")
def trained(corpus: tuple[list[Path], list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_wordpiece(corpus[0], out, TokenizerSettings(vocab_size=8000))
    return out


def test_trained_dir_loads_as_fast_bert_tokenizer(trained: Path) -> None:
    assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= {
        p.name for p in trained.iterdir()
    }
    assert not [p for p in trained.parent.iterdir() if p.name.startswith(".tmp")]
    tok = AutoTokenizer.from_pretrained(str(trained))
    assert tok.is_fast
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    enc = tok("兰州公交集团")
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == [
        "[CLS]",
        "兰",
        "州",
        "公",
        "交",
        "集",
        "团",
        "[SEP]",
    ]
    # vocab.txt and tokenizer.json agree, so slow and fast BERT tokenizers see the same ids.
    lines = (trained / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert {t: i for i, t in enumerate(lines)} == vocab


def test_every_corpus_character_is_its_own_token(
    trained: Path, corpus: tuple[list[Path], list[str]]
) -> None:
    tok = load_tokenizer(trained)
    text = "".join(corpus[1])
    cjk = sorted({ch for ch in text if _is_cjk(ch)})
    assert len(cjk) > 2000
    vocab = tok.get_vocab()
    assert [ch for ch in cjk if ch not in vocab] == []
    enc = tok(text[:3000], add_special_tokens=False, return_offsets_mapping=True)
    for (start, end), token in zip(
        enc["offset_mapping"], tok.convert_ids_to_tokens(enc["input_ids"]), strict=True
    ):
        if _is_cjk(text[start]):
            assert end == start + 1 and token == text[start]
    assert tok.unk_token_id not in enc["input_ids"]


def test_lowercase_setting(corpus: tuple[list[Path], list[str]], tmp_path: Path) -> None:
    cased = tmp_path / "cased"
    train_wordpiece(corpus[0], cased, TokenizerSettings(vocab_size=8000, lowercase=False))
    assert load_tokenizer(cased).tokenize("ABC") != load_tokenizer(cased).tokenize("abc")
    uncased = tmp_path / "uncased"
    train_wordpiece(corpus[0], uncased, TokenizerSettings(vocab_size=8000))
    assert load_tokenizer(uncased).tokenize("ABC") == load_tokenizer(uncased).tokenize("abc")


def test_fetch_from_local_model_dir_copies_tokenizer_files_only(
    trained: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(trained, model_dir)
    (model_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (model_dir / "model.safetensors").write_bytes(b"\0" * 64)
    out = tmp_path / "fetched"
    build_tokenizer([], out, TokenizerSettings(source=str(model_dir)))
    assert "model.safetensors" not in {p.name for p in out.iterdir()}
    text = "兰州公交集团获悉 Hello"
    assert load_tokenizer(out)(text)["input_ids"] == load_tokenizer(trained)(text)["input_ids"]
    assert tokenizer_fingerprint(out) == tokenizer_fingerprint(model_dir)


def test_fetch_vocab_only_dir_gets_a_tokenizer_json(trained: Path, tmp_path: Path) -> None:
    # The layout of older hub BERT repos: vocab.txt + config.json, no tokenizer.json.
    src = tmp_path / "old"
    src.mkdir()
    shutil.copy(trained / "vocab.txt", src / "vocab.txt")
    (src / "config.json").write_text(json.dumps({"model_type": "bert"}))
    out = tmp_path / "fetched"
    fetch_tokenizer(str(src), None, out)
    assert (out / "tokenizer.json").is_file()
    tok = load_tokenizer(out)
    assert tok("兰州")["input_ids"] == load_tokenizer(trained)("兰州")["input_ids"]


def test_bad_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        fetch_tokenizer(str(tmp_path / "no_such_dir"), None, tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no tokenizer files"):
        fetch_tokenizer(str(empty), None, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_tokenizer(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="corpus shard"):
        train_wordpiece([], tmp_path / "out", TokenizerSettings())
    with pytest.raises(ValueError, match="unknown key"):
        TokenizerSettings.from_config({"vocab": 5})
    assert not (tmp_path / "out").exists()


def test_fingerprint_follows_the_files(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    assert tokenizer_fingerprint(copy) == tokenizer_fingerprint(trained)
    with (copy / "vocab.txt").open("a", encoding="utf-8") as f:
        f.write("新词\n")
    assert tokenizer_fingerprint(copy) != tokenizer_fingerprint(trained)


def test_replacement_ids_exclude_special_tokens(trained: Path) -> None:
    tok = load_tokenizer(trained)
    ids = random_replacement_ids(tok)
    assert set(ids).isdisjoint(tok.all_special_ids)
    assert len(ids) == len(tok) - len(SPECIAL_TOKENS)


def test_training_twice_gives_the_same_vocab(
    corpus: tuple[list[Path], list[str]], trained: Path, tmp_path: Path
) -> None:
    # The trainer names its '##' pieces in hash-map order (huggingface/tokenizers#1794), and
    # merge ties follow those ids: unpinned, a rerun of this stage made another vocab.
    for attempt in range(3):
        again = tmp_path / f"again{attempt}"
        train_wordpiece(corpus[0], again, TokenizerSettings(vocab_size=8000))
        assert (again / "vocab.txt").read_text() == (trained / "vocab.txt").read_text()
