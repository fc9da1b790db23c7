"""Deploying: ONNX fp32 and int8 exports of every kind, their agreement with PyTorch, and the
torch-free serving entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import BertConfig, BertTokenizer

from wwmdistill.arrow_io import ArtifactError
from wwmdistill.deploy.agreement import torch_runner
from wwmdistill.deploy.bundle import (
    MIN_AGREEMENT,
    UnfaithfulExportError,
    check_faithful,
    deploy_model,
)
from wwmdistill.deploy.runtime import (
    DEPLOY_FILE,
    FP32_FILE,
    INT8_FILE,
    LABELS_FILE,
    open_deployed,
    run_features,
)
from wwmdistill.deploy.timing import speed_table
from wwmdistill.finetune import TaskData
from wwmdistill.kinds import KINDS
from wwmdistill.predict import main as predict_main
from wwmdistill.settings import FinetuneSettings, SpeedSettings

SRC = Path(__file__).resolve().parents[1] / "src"
# Long enough contexts for several span QA windows of 32 tokens.
SETTINGS = FinetuneSettings.from_config(
    {"max_seq_len": 32, "doc_stride": 8, "max_query_len": 8, "max_answer_len": 6, "n_best": 5}
)
SENTENCES = ["今天下雨了", "我们在家吧", "他喜欢读书", "她在公园跑步", "明天天气很好", "我不想出门"]
CONTEXT = "小明住在北京，他每天早上六点起床，然后去公园跑步。下午他在家里读书，晚上和朋友一起吃饭。"
ROWS = {
    "classification": {
        "id": [str(i) for i in range(12)],
        "text_a": [SENTENCES[i % 6] for i in range(12)],
        "text_b": [SENTENCES[(i * 5 + 1) % 6] for i in range(12)],
        "label": [i % 3 for i in range(12)],
    },
    "qa": {
        "id": ["q0", "q1", "q2", "q3"],
        "question": ["小明住在哪里？", "他几点起床？", "他下午做什么？", "晚上他和谁吃饭？"],
        "context": [CONTEXT] * 4,
        "answers": [["北京"], ["六点"], ["读书"], ["朋友"]],
        "answer_starts": [[CONTEXT.index(a)] for a in ("北京", "六点", "读书", "朋友")],
    },
    "multiple_choice": {
        "id": ["m0", "m1", "m2", "m3", "m4"],
        "context": [CONTEXT] * 5,
        "question": [
            "小明住在哪里？",
            "他几点起床？",
            "他下午做什么？",
            "他去哪里跑步？",
            "谁读书？",
        ],
        "choices": [
            ["北京", "上海"],
            ["六点", "七点", "八点"],
            ["读书", "跑步", "吃饭", "睡觉"],
            ["公园", "家里"],
            ["小明", "朋友", "老师"],
        ],
        "label": [0, 0, 0, 0, 0],
    },
}
LABELS = {"classification": ["entailment", "neutral", "contradiction"]}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [str(v) for rows in ROWS.values() for column in rows.values() for v in column]
    chars = sorted({ch for text in texts for ch in text if ch.strip()} | set("无效答案"))
    out = tmp_path_factory.mktemp("tokenizer")
    vocab = out / "vocab.txt"
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab.write_text("\n".join(special + chars) + "\n", encoding="utf-8")
    BertTokenizer(str(vocab)).save_pretrained(str(out))
    return out


def _task(kind: str) -> TaskData:
    table = pa.table(ROWS[kind], schema=KINDS[kind].row_schema)
    return TaskData(
        name=f"tiny_{kind}",
        kind=KINDS[kind],
        labels=LABELS.get(kind, []),
        splits={"dev": table},
        labelled={"dev": True},
        fingerprints={},
    )


def _model_dir(kind: str, tokenizer_dir: Path, out: Path) -> Path:
    """A tiny randomly initialised (seeded) model of the kind, saved with its tokenizer."""
    torch.manual_seed(0)
    vocab = len((tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").splitlines())
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=max(2, len(LABELS.get(kind, []))),
    )
    KINDS[kind].auto_model().from_config(config).save_pretrained(out)
    BertTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def deploy(tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """kind -> (model dir, deploy dir, deploy.json's record), each kind exported once."""
    done: dict[str, tuple[Path, Path, dict]] = {}

    def get(kind: str) -> tuple[Path, Path, dict]:
        if kind not in done:
            base = tmp_path_factory.mktemp(kind)
            model_dir = _model_dir(kind, tokenizer_dir, base / "model")
            record = deploy_model(model_dir, _task(kind), base / "deploy", SETTINGS, batch_size=3)
            done[kind] = model_dir, base / "deploy", record
        return done[kind]

    return get


def _pytorch_predictions(kind: str, model_dir: Path) -> dict:
    """What the PyTorch model predicts on the split, through the kind's features and decoding."""
    task, k = _task(kind), KINDS[kind]
    model = k.load_model(model_dir, task.labels)
    tokenizer = BertTokenizer.from_pretrained(str(model_dir))
    features = k.eval_features(task.splits["dev"], tokenizer, SETTINGS)
    raw, _ = run_features({"pt": torch_runner(model, k)}, k, tokenizer, features, 2)
    return k.decode(raw["pt"], task.splits["dev"], features, SETTINGS)


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_exports_agree_with_pytorch(deploy, kind: str) -> None:
    _, deploy_dir, record = deploy(kind)
    for name in (FP32_FILE, INT8_FILE, LABELS_FILE, DEPLOY_FILE, "tokenizer.json"):
        assert (deploy_dir / name).is_file(), name
    assert json.loads((deploy_dir / DEPLOY_FILE).read_text(encoding="utf-8")) == record
    figures = record["agreement"]
    assert figures["rows"] == len(ROWS[kind]["id"])
    if kind == "qa":  # the context needs several windows
        assert figures["features"] > figures["rows"]
    assert figures["fp32"]["agreement"] == 1.0
    assert figures["fp32"]["max_abs_logit_diff"] < 1e-4
    assert figures["fp32"]["scores"] == figures["pytorch"]["scores"]
    int8 = figures["int8"]
    assert 0.0 <= int8["agreement"] <= 1.0 and set(int8["scores"]) == set(KINDS[kind].metrics)
    assert record["threads"] == {"intra_op_num_threads": 1, "inter_op_num_threads": 1}
    assert record["size_mb"]["int8"] < record["size_mb"]["fp32"]


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_serving_predicts_what_pytorch_predicts(deploy, kind: str) -> None:
    model_dir, deploy_dir, _ = deploy(kind)
    rows = pa.table(ROWS[kind]).to_pylist()
    inputs = [{k: row[k] for k in ("id", *KINDS[kind].input_fields)} for row in rows]
    served = open_deployed(deploy_dir).predict(inputs)
    expected = _pytorch_predictions(kind, model_dir)
    assert [s["id"] for s in served] == list(expected)
    for answer in served:
        want = expected[answer["id"]]
        if kind == "classification":
            assert answer["label"] == LABELS[kind][want]
            assert np.isclose(sum(answer["scores"].values()), 1.0)
        elif kind == "multiple_choice":
            assert answer["choice"] == want
            assert len(answer["scores"]) == len(ROWS[kind]["choices"][int(answer["id"][1:])])
        else:
            assert answer["answer"] == want
    assert len(open_deployed(deploy_dir, int8=True).predict(inputs)) == len(inputs)


def _predict(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    # Runs the module as `python -m` does, then checks that serving never imported torch.
    code = (
        "import runpy, sys; sys.argv = ['predict', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('wwmdistill.predict', run_name='__main__')\n"
        "except SystemExit as end:\n    assert 'torch' not in sys.modules, 'torch imported'\n"
        "    raise\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_predict_command_line_and_json_lines(deploy) -> None:
    kind = "classification"
    model_dir, deploy_dir, _ = deploy(kind)
    expected = _pytorch_predictions(kind, model_dir)
    row = pa.table(ROWS[kind]).to_pylist()[0]
    done = _predict([str(deploy_dir), row["text_a"], row["text_b"]])
    assert done.returncode == 0, done.stderr
    (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert answer["label"] == LABELS[kind][expected["0"]]
    lines = [{"id": "a", "text_a": row["text_a"], "text_b": row["text_b"]}, {"text_a": "今天"}]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    done = _predict([str(deploy_dir), "--int8"], stdin)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["a", "1"]
    assert all(a["label"] in LABELS[kind] for a in answers)


def test_predict_names_what_is_missing(
    tmp_path: Path, tokenizer_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    model_dir = _model_dir("classification", tokenizer_dir, tmp_path / "model")
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match=r"no weights \(model.safetensors\)"):
        deploy_model(model_dir, _task("classification"), tmp_path / "deploy", SETTINGS)
    assert not (tmp_path / "deploy").exists()
    deploy_dir = tmp_path / "incomplete"
    deploy_dir.mkdir()
    for name in (DEPLOY_FILE, LABELS_FILE, "tokenizer.json"):
        (deploy_dir / name).write_text("{}", encoding="utf-8")
    assert predict_main([str(deploy_dir), "今天"]) == 1
    assert f"missing {FP32_FILE}" in capsys.readouterr().err


def test_predict_arguments_fill_each_kinds_fields(deploy, capsys: pytest.CaptureFixture) -> None:
    qa = ROWS["qa"]
    assert predict_main([str(deploy("qa")[1]), qa["question"][0], qa["context"][0]]) == 0
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert answer["answer"] in qa["context"][0]
    mc = ROWS["multiple_choice"]
    args = [mc["context"][1], mc["question"][1], *mc["choices"][1]]
    assert predict_main([str(deploy("multiple_choice")[1]), *args]) == 0
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert answer["answer"] == mc["choices"][1][answer["choice"]]
    assert predict_main([str(deploy("qa")[1]), "只有问题"]) == 1
    assert "no context" in capsys.readouterr().err


def test_an_unfaithful_export_is_refused(tmp_path: Path, tokenizer_dir: Path) -> None:
    model_dir = _model_dir("classification", tokenizer_dir, tmp_path / "model")
    # A bar no export can clear: more than every row, with no logit difference tolerated.
    with pytest.raises(UnfaithfulExportError, match="agrees with PyTorch on 100.0000%"):
        deploy_model(
            model_dir,
            _task("classification"),
            tmp_path / "deploy",
            SETTINGS,
            min_agreement=1.01,
            logit_tolerance=-1.0,
        )
    assert not (tmp_path / "deploy").exists()


def test_near_ties_flipped_by_float_noise_are_not_unfaithful() -> None:
    # c3's dev split through an untrained student: equal choice logits, 1 row in 16 flipped by
    # a 5.6e-9 difference. The export computes PyTorch's function; it is kept.
    check_faithful(
        {"agreement": 0.9375, "max_abs_logit_diff": 5.59e-9}, "tiny on c3", MIN_AGREEMENT, 1e-4
    )
    with pytest.raises(UnfaithfulExportError, match=r"tiny on c3: .* 93.7500% .* up to 0.25"):
        check_faithful(
            {"agreement": 0.9375, "max_abs_logit_diff": 0.25}, "tiny on c3", MIN_AGREEMENT, 1e-4
        )
    # Agreeing predictions pass whatever the logits: the bar is on what the export predicts.
    check_faithful(
        {"agreement": 1.0, "max_abs_logit_diff": 0.25}, "tiny on c3", MIN_AGREEMENT, 1e-4
    )


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_speed_table_times_every_format_length_and_request(deploy, kind: str) -> None:
    model_dir, deploy_dir, _ = deploy(kind)
    task = _task(kind)
    settings = SpeedSettings(bench_seq_len=128, repeats=3, warmup=1, requests=2)
    table = speed_table(
        [("a", model_dir, deploy_dir), ("b", model_dir, deploy_dir)],
        task.labels,
        task.splits["dev"],
        16,
        settings,
    )
    assert table["seq_lens"] == [16, 128] and table["requests"] == 2
    assert table["threads"] == {"torch": 1, "onnxruntime_intra_op": 1}
    for row in table["rows"].values():
        for fmt in ("pytorch", "fp32", "int8"):
            for batch in ("1", "16"):
                stats = row["model"][fmt]["16"][batch]
                assert len(stats["runs_ms"]) == 3 and stats["median_ms"] > 0
                # 128 positions do not fit a model of 64: not timed, not faked.
                assert row["model"][fmt]["128"][batch] is None
        for fmt in ("fp32", "int8"):
            request = row["request"][fmt]
            assert request["end_to_end"]["median_ms"] > 0
            assert request["overhead"]["value"] == pytest.approx(
                request["end_to_end"]["median_ms"] / request["model_only"]["median_ms"]
            )
        assert row["size_mb"]["int8"] < row["size_mb"]["fp32"]
