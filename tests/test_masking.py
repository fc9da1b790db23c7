"""Static whole-word masking on real Chinese text (jieba words, trained WordPiece) and BPE.

Word membership, packing and the budget greedy are recomputed here independently, with plain
Python loops over the fast tokenizer's offsets, and compared with what the shard holds.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import random
from bisect import bisect_right
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from samples import clue_docs

from wwmdistill.arrow_io import ArrowShardWriter, ArtifactError, open_shard
from wwmdistill.artifacts.segmented import SEGMENTED_SCHEMA
from wwmdistill.masking import (
    SENTENCE_END_CHARS,
    MaskingSettings,
    build_instances,
    greedy_select,
    mask_shard,
)
from wwmdistill.tokenizer import TokenizerSettings, load_tokenizer, train_wordpiece

CLOSERS = SENTENCE_END_CHARS + "”’」』）)》】"
# A word far longer than a short instance (and unseen by the tokenizer): it must be hard-cut.
LONG_WORD_DOC = "这是一个测试。" + "qzxjvkwpyf" * 9 + "结束了。"


def _jieba_ends(text: str) -> list[int]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    ends, pos = [], 0
    for piece in jieba.cut(text):
        pos += len(piece)
        if piece.strip():  # whitespace joins the following word
            ends.append(pos)
    if ends:
        ends[-1] = len(text)
    return ends


def _whitespace_ends(text: str) -> list[int]:
    ends = [
        i + 1
        for i, ch in enumerate(text)
        if not ch.isspace() and (i + 1 == len(text) or text[i + 1].isspace())
    ]
    if ends:
        ends[-1] = len(text)
    return ends


def _write_segmented(path: Path, texts: list[str], ends: list[list[int]]) -> Path:
    with ArrowShardWriter(path, SEGMENTED_SCHEMA, stage="segmented", fingerprint="seg") as w:
        w.write(
            {
                "doc_id": [f"d{i}" for i in range(len(texts))],
                "text": texts,
                "gold_word_ends": [None] * len(texts),
                "word_ends": ends,
            }
        )
    return path


class Doc:
    """A document's tokens and words, computed token by token (the independent reference).

    `word` numbers the whole-word groups: a token starts a new one where its first character
    falls in another segmenter word than the previous token's, unless (WordPiece) it is a `##`
    piece, which always joins the token before it, as in DataCollatorForWholeWordMask.
    """

    def __init__(self, tok, text: str, ends: list[int], wordpiece: bool = True) -> None:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        self.ids: list[int] = enc["input_ids"]
        starts = [s for s, _ in enc["offset_mapping"]]
        segmenter_word = [bisect_right(ends, s) for s in starts]
        pieces = tok.convert_ids_to_tokens(self.ids)
        self.word, group = [], -1
        for i, piece in enumerate(pieces):
            joins = wordpiece and piece.startswith("##")
            if i == 0 or (segmenter_word[i] != segmenter_word[i - 1] and not joins):
                group += 1
            self.word.append(group)
        self.sentence_start = [
            i == 0
            or (
                any(c in SENTENCE_END_CHARS for c in text[starts[i - 1] : starts[i]])
                and text[starts[i]] not in CLOSERS
            )
            for i in range(len(starts))
        ]

    def reference_rows(self, limit: int) -> tuple[list[tuple[int, int]], bool]:
        """Greedy packing of whole sentences; also whether a word had to be hard-cut."""
        starts = [i for i, s in enumerate(self.sentence_start) if s] + [len(self.ids)]
        segments, hard_cut = [], False
        for a, b in itertools.pairwise(starts):
            if b - a <= limit:
                segments.append((a, b))
                continue
            w = a
            for i in range(a + 1, b + 1):
                if i == b or self.word[i] != self.word[i - 1]:
                    hard_cut |= i - w > limit
                    segments.extend((j, min(j + limit, i)) for j in range(w, i, limit))
                    w = i
        rows, cur = [], None
        for a, b in segments:
            if cur is not None and b - cur[0] <= limit:
                cur = (cur[0], b)
            else:
                if cur is not None:
                    rows.append(cur)
                cur = (a, b)
        return rows + ([cur] if cur else []), hard_cut


def test_token_unit_masks_characters_of_the_same_instances(zh: dict, zh_masked, tmp_path) -> None:
    """Character masking (the wwm_vs_char claim's baseline): the same rows as whole-word
    masking, each token a unit of its own, so every row's budget is filled exactly and words
    are masked partly."""
    words_out, _, settings = zh_masked
    chars = settings.model_copy(update={"unit": "token"})
    out = tmp_path / "chars.arrow"
    stats = mask_shard(zh["segmented"], zh["tok"], out, chars, seed=7, shard_index=3)
    word_rows = open_shard(words_out, stage="masked").read_all().to_pylist()
    char_rows = open_shard(out, stage="masked").read_all().to_pylist()
    assert [_restored(r) for r in char_rows] == [_restored(r) for r in word_rows]
    assert stats["budget_filled"] == 1.0
    tok = load_tokenizer(zh["tok"])
    partly = 0
    for i, (text, doc_ends) in enumerate(zip(zh["texts"], zh["ends"], strict=True)):
        doc = Doc(tok, text, doc_ends, True)
        rows = [r for r in char_rows if r["doc_id"] == f"d{i}" and r["dupe"] == 0]
        for row, (a, b) in zip(rows, doc.reference_rows(settings.max_seq_len - 2)[0], strict=True):
            masked = {a + p - 1 for p in row["masked_positions"]}
            words = {doc.word[t] for t in masked}
            partly += {t for t in range(a, b) if doc.word[t] in words} != masked
    assert partly > 100
    with pytest.raises(ValueError, match="unit"):
        MaskingSettings.from_config({"unit": "char"})


def test_cross_document_rows_are_full_and_keep_every_token_in_order(zh: dict, tmp_path) -> None:
    settings = MaskingSettings(dupe_factor=1, batch_docs=64)
    per_doc, across = tmp_path / "doc.arrow", tmp_path / "across.arrow"
    mask_shard(zh["segmented"], zh["tok"], per_doc, settings, seed=7, shard_index=3)
    packed = settings.model_copy(update={"cross_documents": True})
    stats = mask_shard(zh["segmented"], zh["tok"], across, packed, seed=7, shard_index=3)
    tok = load_tokenizer(zh["tok"])
    doc_rows = open_shard(per_doc, stage="masked").read_all().to_pylist()
    rows = open_shard(across, stage="masked").read_all().to_pylist()
    # The same tokens in the same order, in fewer, fuller rows of at most max_seq_len.
    content = [t for r in rows for t in _restored(r)[1:-1]]
    assert content == [t for r in doc_rows for t in _restored(r)[1:-1]]
    assert all(len(r["input_ids"]) <= settings.max_seq_len for r in rows)
    assert len(rows) < 0.9 * len(doc_rows)  # these documents are long: 105 against 92 tokens
    # Masked groups are still whole words, each word numbered across the documents.
    word_of = []
    for i, (text, ends) in enumerate(zip(zh["texts"], zh["ends"], strict=True)):
        word_of += [(i, w) for w in Doc(tok, text, ends, True).word]
    a = 0
    for row in rows:
        b = a + len(row["input_ids"]) - 2
        masked = {a + p - 1 for p in row["masked_positions"]}
        words = {word_of[t] for t in masked}
        assert {t for t in range(a, b) if word_of[t] in words} == masked
        a = b
    assert stats["budget_filled"] > 0.99 and rows[0]["doc_id"] == doc_rows[0]["doc_id"]


def _rows_by_doc(path: Path) -> dict[tuple[int, str], list[dict]]:
    by_doc: dict[tuple[int, str], list[dict]] = {}
    for row in open_shard(path, stage="masked").read_all().to_pylist():
        by_doc.setdefault((row["dupe"], row["doc_id"]), []).append(row)
    return by_doc


def _restored(row: dict) -> list[int]:
    ids = list(row["input_ids"])
    for p, label in zip(row["masked_positions"], row["masked_labels"], strict=True):
        ids[p] = label
    return ids


def _check_shard(
    path: Path, tok, texts, ends, settings: MaskingSettings, wordpiece: bool = True
) -> dict[str, int]:
    """Every property of a masked shard that does not depend on the random draws."""
    by_doc = _rows_by_doc(path)
    counts: Counter[str] = Counter()
    specials = set(tok.all_special_ids)
    for i, (text, doc_ends) in enumerate(zip(texts, ends, strict=True)):
        doc = Doc(tok, text, doc_ends, wordpiece)
        expected_rows, hard_cut = doc.reference_rows(settings.max_seq_len - 2)
        counts["hard_cut"] += hard_cut
        for dupe in range(settings.dupe_factor):
            rows = by_doc.get((dupe, f"d{i}"), [])
            assert [len(r["input_ids"]) - 2 for r in rows] == [b - a for a, b in expected_rows]
            for row, (a, b) in zip(rows, expected_rows, strict=True):
                ids, pos = row["input_ids"], row["masked_positions"]
                assert len(ids) <= settings.max_seq_len
                assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
                assert _restored(row)[1:-1] == doc.ids[a:b]
                assert pos == sorted(set(pos)) and all(0 < p < len(ids) - 1 for p in pos)
                budget = min(
                    settings.max_predictions_per_seq,
                    max(1, round(len(ids) * settings.masked_lm_prob)),
                )
                assert len(pos) <= budget  # 0 when every word is over budget
                masked = {a + p - 1 for p in pos}
                words = {doc.word[t] for t in masked}
                whole = {t for t in range(a, b) if doc.word[t] in words}
                assert whole == masked, f"doc d{i}: a word is masked partly"
                counts["multi_piece_words"] += sum(
                    1 for w in words if sum(doc.word[t] == w for t in range(a, b)) > 1
                )
                for p, label in zip(pos, row["masked_labels"], strict=True):
                    if ids[p] == tok.mask_token_id:
                        counts["mask"] += 1
                    elif ids[p] == label:
                        counts["kept"] += 1
                    else:
                        assert ids[p] not in specials
                        counts["random"] += 1
                counts["tokens"] += len(ids)
    return counts


@pytest.fixture(scope="module")
def zh(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("zh")
    texts = [*clue_docs(1200), LONG_WORD_DOC]
    ends = [_jieba_ends(t) for t in texts]
    segmented = _write_segmented(root / "segmented.arrow", texts, ends)
    corpus = root / "corpus.arrow"
    with ArrowShardWriter(
        corpus, SEGMENTED_SCHEMA.remove(3), stage="corpus", fingerprint="corpus"
    ) as w:
        w.write(
            {
                "doc_id": [str(i) for i in range(len(texts) - 1)],
                "text": texts[:-1],  # the long word stays out of the vocab
                "gold_word_ends": [None] * (len(texts) - 1),
            }
        )
    tok_dir = root / "tokenizer"
    train_wordpiece([corpus], tok_dir, TokenizerSettings())
    return {"root": root, "texts": texts, "ends": ends, "segmented": segmented, "tok": tok_dir}


@pytest.fixture(scope="module")
def zh_masked(zh: dict) -> tuple[Path, dict, MaskingSettings]:
    settings = MaskingSettings(batch_docs=64)
    out = zh["root"] / "masked.arrow"
    stats = mask_shard(zh["segmented"], zh["tok"], out, settings, seed=7, shard_index=3)
    return out, stats, settings


def test_chinese_shard_masks_whole_words_within_budget(zh: dict, zh_masked) -> None:
    out, stats, settings = zh_masked
    tok = load_tokenizer(zh["tok"])
    counts = _check_shard(out, tok, zh["texts"], zh["ends"], settings)
    assert counts["multi_piece_words"] > 1000  # most jieba words have several characters
    n = counts["mask"] + counts["random"] + counts["kept"]
    assert n == stats["masked_tokens"] > 20000
    assert counts["mask"] / n == pytest.approx(0.8, abs=0.01)
    assert counts["random"] / n == pytest.approx(0.1, abs=0.01)
    assert counts["kept"] / n == pytest.approx(0.1, abs=0.01)
    assert stats["rows"] == settings.dupe_factor * stats["instances"]
    assert stats["documents"] == len(zh["texts"])
    shard = open_shard(out, stage="masked")
    assert shard.num_rows == stats["rows"]
    assert shard.meta["source_fingerprint"] == "seg" and shard.meta["shard_index"] == 3


def test_dupes_are_masked_differently(zh_masked) -> None:
    out, _, settings = zh_masked
    table = open_shard(out, stage="masked").read_all()
    dupes = [table.filter(pa.compute.equal(table["dupe"], d)) for d in range(settings.dupe_factor)]
    first, second = (
        dupes[0]["masked_positions"].to_pylist(),
        dupes[1]["masked_positions"].to_pylist(),
    )
    assert len(first) == len(second)
    assert sum(a != b for a, b in zip(first, second, strict=True)) > 0.9 * len(first)


def test_masked_rate_matches_masked_lm_prob(zh: dict, tmp_path: Path) -> None:
    settings = MaskingSettings(max_predictions_per_seq=1000, dupe_factor=2)
    stats = mask_shard(
        zh["segmented"], zh["tok"], tmp_path / "m.arrow", settings, seed=1, shard_index=0
    )
    assert stats["masked_fraction"] == pytest.approx(0.15, abs=0.01)


def test_short_instances_pack_sentences_and_cut_long_words(zh: dict, tmp_path: Path) -> None:
    settings = MaskingSettings(max_seq_len=24, dupe_factor=1, batch_docs=50)
    out = tmp_path / "short.arrow"
    mask_shard(zh["segmented"], zh["tok"], out, settings, seed=1, shard_index=0)
    counts = _check_shard(out, load_tokenizer(zh["tok"]), zh["texts"], zh["ends"], settings)
    assert counts["hard_cut"] >= 1


def test_same_seed_same_bytes_other_seed_other_bytes(zh: dict, zh_masked, tmp_path: Path) -> None:
    out, _, settings = zh_masked
    again = tmp_path / "again.arrow"
    mask_shard(zh["segmented"], zh["tok"], again, settings, seed=7, shard_index=3)
    assert again.read_bytes() == out.read_bytes()
    other = tmp_path / "other.arrow"
    mask_shard(zh["segmented"], zh["tok"], other, settings, seed=8, shard_index=3)
    assert open_shard(other).fingerprint != open_shard(out).fingerprint
    assert open_shard(other).read_all()["input_ids"] != open_shard(out).read_all()["input_ids"]


def _reference_greedy(lengths: list[int], budget: int) -> list[bool]:
    """The reference loop (Google BERT / HF DataCollatorForWholeWordMask)."""
    used, chosen = 0, []
    for n in lengths:
        if used >= budget:
            chosen.append(False)
            continue
        take = used + n <= budget
        chosen.append(take)
        used += n if take else 0
    return chosen


def test_greedy_select_matches_the_reference_loop() -> None:
    rng = random.Random(0)
    for _ in range(200):
        n_rows = rng.randint(1, 30)
        rows, lengths, budgets, expected = [], [], [], []
        for r in range(n_rows):
            row_lengths = [rng.choice([1, 1, 2, 2, 3, 4, 7, 12]) for _ in range(rng.randint(0, 40))]
            budget = rng.randint(1, 25)
            rows += [r] * len(row_lengths)
            lengths += row_lengths
            budgets.append(budget)
            expected += _reference_greedy(row_lengths, budget)
        got = greedy_select(np.array(rows), np.array(lengths), np.array(budgets))
        assert got.tolist() == expected


def test_byte_level_bpe_masks_whole_whitespace_words(tmp_path: Path) -> None:
    import argparse  # noqa: E401  (sources of real English)
    import difflib
    import subprocess
    import textwrap

    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    texts = [
        inspect.getdoc(f)
        for f in (
            argparse.ArgumentParser.add_argument,
            difflib.SequenceMatcher,
            subprocess.run,
            subprocess.Popen,
            textwrap.TextWrapper,
            inspect.signature,
            random.Random.shuffle,
        )
    ]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts,
        vocab_size=400,
        min_frequency=2,
        show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    tok_dir = tmp_path / "bpe"
    PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    ).save_pretrained(str(tok_dir))
    ends = [_whitespace_ends(t) for t in texts]
    segmented = _write_segmented(tmp_path / "en.arrow", texts, ends)
    settings = MaskingSettings(max_seq_len=64, dupe_factor=3, batch_docs=3)
    out = tmp_path / "en_masked.arrow"
    mask_shard(segmented, tok_dir, out, settings, seed=0, shard_index=0)
    counts = _check_shard(out, load_tokenizer(tok_dir), texts, ends, settings, wordpiece=False)
    assert counts["multi_piece_words"] > 50


def test_a_wordpiece_word_the_segmenter_cuts_is_never_split(tmp_path: Path) -> None:
    from transformers import BertTokenizerFast

    vocab = [*("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), *"今天６是冷。我们很好"]
    vocab += ["##℃", "abc", "##def", "x", "##y", "##z"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok_dir = tmp_path / "wp"
    BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(str(tok_dir))
    tok = load_tokenizer(tok_dir)
    # Segmenter words (|) cutting inside WordPiece words: 今天|６|℃是|冷|。 tokenised
    # 今 天 ６ ##℃ 是 冷 。; 我|abc|def们|。 as 我 abc ##def 们 。; x|y|z很|好 as x ##y ##z 很 好.
    texts = ["今天６℃是冷。", "我abcdef们。", "xyz很好", "今天６℃是冷今天６℃是冷。"]
    ends = [[2, 3, 5, 6, 7], [1, 4, 8, 9], [1, 2, 4, 5], [2, 3, 5, 6, 8, 9, 11, 12, 13]]
    inst = build_instances(
        texts,
        pa.array(ends, pa.list_(pa.int32())),
        tok.backend_tokenizer,
        max_seq_len=128,
        cls_id=tok.cls_token_id,
        sep_id=tok.sep_token_id,
    )
    groups = [[] for _ in range(inst.unit_row.size)]
    for pos, unit in zip(inst.content_pos.tolist(), inst.unit.tolist(), strict=True):
        groups[unit].append(tok.convert_ids_to_tokens(int(inst.input_ids[pos])))
    # Each group is the union of a segmenter word and the WordPiece word it cuts.
    assert groups == [
        *(["今", "天"], ["６", "##℃", "是"], ["冷"], ["。"]),
        *(["我"], ["abc", "##def", "们"], ["。"]),
        *(["x", "##y", "##z", "很"], ["好"]),
        *(["今", "天"], ["６", "##℃", "是"], ["冷"], ["今", "天"], ["６", "##℃", "是"], ["冷"]),
        ["。"],
    ]
    assert inst.unit_len.tolist() == [len(g) for g in groups]

    # Through the stage, masking often and packing the long sentence at group boundaries: no
    # WordPiece word is ever split, every masked group is masked whole.
    segmented = _write_segmented(tmp_path / "seg.arrow", texts * 20, ends * 20)
    settings = MaskingSettings(max_seq_len=8, masked_lm_prob=0.5, dupe_factor=5, batch_docs=16)
    out = tmp_path / "masked.arrow"
    mask_shard(segmented, tok_dir, out, settings, seed=0, shard_index=0)
    _check_shard(out, tok, texts * 20, ends * 20, settings)
    pieces_masked = 0
    for row in open_shard(out, stage="masked").read_all().to_pylist():
        pieces = tok.convert_ids_to_tokens(_restored(row))
        masked = set(row["masked_positions"])
        for p, piece in enumerate(pieces):
            if piece.startswith("##"):
                assert (p in masked) == (p - 1 in masked), f"{pieces} split at {p}"
                pieces_masked += p in masked
    assert pieces_masked > 50


def test_bad_input_is_reported(zh: dict, tmp_path: Path) -> None:
    bad = _write_segmented(tmp_path / "bad.arrow", ["你好世界", "再见"], [[2, 4], [1]])
    with pytest.raises(ValueError, match="'d1'"):
        mask_shard(bad, zh["tok"], tmp_path / "o.arrow", MaskingSettings(), seed=0, shard_index=0)
    assert not (tmp_path / "o.arrow").exists()
    with pytest.raises(ArtifactError, match="expected a 'segmented' artifact"):
        mask_shard(
            zh["root"] / "corpus.arrow",
            zh["tok"],
            tmp_path / "o.arrow",
            MaskingSettings(),
            seed=0,
            shard_index=0,
        )
    with pytest.raises(ValueError, match="unknown key"):
        MaskingSettings.from_config({"max_len": 5})
    with pytest.raises(ValueError, match="mask_token_prob"):
        MaskingSettings(mask_token_prob=0.95, random_token_prob=0.1)
