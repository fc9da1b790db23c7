"""The report and its plots, from eval / bench / metrics JSONs of known values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from matplotlib.colors import to_rgba
from matplotlib.text import Annotation
from PIL import Image
from report_samples import AFQMC, write_inputs

from wwmdistill.arrow_io import write_json
from wwmdistill.report.inputs import load_evals
from wwmdistill.report.plots import (
    loss_history,
    plot_loss_curves,
    plot_score_vs_speed,
    score_speed_points,
    score_vs_speed_figure,
)
from wwmdistill.report.tables import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Any]:
    return write_inputs(tmp_path)


CONFIG = {"evaluation": {"seeds": [1, 2]}, "tasks": {"afqmc": {"source": "local"}}}


def test_report_tables(inputs: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "results/report.md"
    text = build_report(inputs["evals"], inputs["benches"], CONFIG, out)
    assert out.read_text(encoding="utf-8") == text
    lines = text.splitlines()
    speed_header = (
        "| params (M) | size (MB) | int8 size (MB) | PyTorch b1 (ms) | int8 b1 (ms) "
        "| int8 b16 (seq/s) | int8 speed-up b16 | speed-up vs teacher | int8 request (ms) "
        "| fp32 agreement |"
    )
    assert (
        f"| model | Acc max | Acc mean | relative score | Acc vs baseline {speed_header} "
        "int8 Acc (Δ) |" in lines
    )
    # At length 128: PyTorch and int8 b1 medians, int8 b16 per second (16 / 16 ms), the int8
    # and teacher speed-ups, a request end to end with its ratio to the model alone, fp32
    # agreement, and the int8 score with its difference from PyTorch's (70.1 -> 69.6).
    assert (
        "| teacher | 71.00 | 70.55 | 100.0% | +1.55 | 11.0 | 42.1 | 10.6 | 5.00 | 2.50 | 1000.0 "
        "| 2.50x | 1.00x | 3.00 (×1.20) | 100.0% | 69.60 (-0.50) |" in lines
    )
    assert (
        "| first2 | 68.90 | 68.45 | 97.0% | -0.55 | 5.5 | 21.0 | 5.3 | 2.50 | 1.25 | 2000.0 "
        "| 2.50x | 2.00x | 1.50 (×1.20) | 100.0% | 67.75 (-0.25) |" in lines
    )
    assert (
        "| narrow | 61.00 | 60.00 | – | – | 3.0 | – | – | – | – | – | – | – | – | – | – |" in lines
    )
    # A model that predicted one class on some seed says so, naming the seed; its unsteady
    # int8 b16 timing marks the figure and the int8 speed-up taken from it, its unsteady
    # requests the request cell. No points lost reads +0.00, not -0.00.
    assert (
        "| first2.td ⚠ predicts one class (seed 1) | 69.00 | 69.00 | 97.8% | +0.00 | 5.5 | – "
        "| 5.3 | 2.50 | 1.25 | 2000.0 ⚠ | 2.50x ⚠ | 2.00x | 1.50 (×1.20) ⚠ | 100.0% "
        "| 69.00 (+0.00) |" in lines
    )
    # The baseline: one prediction, so its score is the max and the mean; relative to the
    # teacher like any row.
    assert (
        "Baseline (majority class 0): the most frequent label of train, predicted for every dev "
        "example: Acc 69.00." in lines
    )
    assert "| baseline: majority class 0 | 69.00 | 69.00 | 97.8% |" + " – |" * 12 in lines
    afqmc = text[text.index("### afqmc") : text.index("### cmrc2018")]
    assert afqmc.index("| narrow |") < afqmc.index("| baseline: majority class 0 |")
    # The note names the length, the threads and the spread limit of the task's config.
    assert "Speed at length 128 (2 thread(s)), the median over interleaved rounds" in afqmc
    assert (
        "⚠ spread (IQR) over 30% of the median: the figure, and any ratio taken from it, is not "
        "to be trusted." in afqmc
    )
    # QA: max and mean of each of EM, F1, Avg; an int8 score not recorded is a dash.
    assert (
        "| model | EM max | EM mean | F1 max | F1 mean | Avg max | Avg mean | relative score "
        f"| F1 vs baseline {speed_header} int8 F1 (Δ) |" in lines
    )
    assert (
        "| first2 | 51.00 | 50.50 | 72.50 | 72.25 | 61.75 | 61.38 | 89.8% | +52.25 | 5.6 | 21.0 "
        "| 5.3 | 10.00 | 5.00 | 320.0 | 2.00x | 4.00x | 6.00 (×1.20) | 100.0% | – |" in lines
    )
    assert (
        "| baseline: first 4 characters | 0.00 | 0.00 | 20.00 | 20.00 | 10.00 | 10.00 | 24.9% "
        "|" + " – |" * 12 in lines
    )
    assert "primary metric F1; 2 seed(s): 1, 2; length 512." in lines
    cmrc = text[text.index("### cmrc2018") : text.index("## Speed")]
    # No config recorded: threads unknown, the default 25% spread.
    assert "Speed at length 512 (threads not recorded)" in cmrc
    assert "⚠ spread (IQR) over 25% of the median" in cmrc
    assert "| cmrc2018 ⚠" not in text and "| teacher ⚠" not in text
    # Summary: mean primary per task; Average and Relative only with every task.
    assert "| model | params (M) | afqmc (Acc) | cmrc2018 (F1) | Average | Relative |" in lines
    assert "| teacher | 11.0 | 70.55 | 80.45 | 75.50 | 100.0% |" in lines
    assert "| first2 | 5.5 | 68.45 | 72.25 | 70.35 | 93.4% |" in lines
    assert "| first2.td | 5.5 | 69.00 ⚠ | – | – | – |" in lines
    assert "| narrow | 3.0 | 60.00 | – | – | – |" in lines
    # (69 / 70.55 + 20 / 80.45) / 2 = 61.3%
    assert "| baseline | – | 69.00 | 20.00 | 44.50 | 61.3% |" in lines
    # Speed table at length 512 from the bench JSONs; a null GPU is a dash.
    assert "| teacher | 10.9 | 42.1 | 120.50 | 10.3 | 8.00 | 400.0 |" in lines
    assert "| first2 | 5.4 | 21.0 | 30.25 | 41.0 | – | – |" in lines
    assert "CPU: Test CPU (4 thread(s)); GPU: Test GPU; torch 2.13.0." in text
    assert (
        "```yaml\nevaluation:\n  seeds:\n  - 1\n  - 2\ntasks:\n  afqmc:\n    source: local\n```"
        in text
    )
    # Task sections in the order given, teacher first in the summary.
    assert text.index("### afqmc") < text.index("### cmrc2018")
    summary = text[text.index("## Summary") : text.index("## Tasks")]
    assert summary.index("| teacher |") < summary.index("| first2 |") < summary.index("| narrow |")
    assert summary.index("| narrow |") < summary.index("| baseline |")


def test_deployed_formats_table(inputs: dict[str, Any], tmp_path: Path) -> None:
    text = build_report(inputs["evals"], inputs["benches"], CONFIG, tmp_path / "report.md")
    afqmc = text[text.index("#### afqmc: deployed formats") : text.index("### cmrc2018")]
    lines = afqmc.splitlines()
    # The task's length, then the longest timed (512): four times the time, a quarter the rate.
    assert (
        "| model | format | size (MB) | b1 ms @128 | b16 seq/s @128 | b1 ms @512 | b16 seq/s @512 "
        "| request ms |" in lines
    )
    assert (
        "| teacher | PyTorch | 42.10 | 5.00 [4.75–5.25] | 400.0 | 20.00 [19.00–21.00] | 100.0 "
        "| – |" in lines
    )
    assert (
        "| teacher | ONNX fp32 | 42.30 | 4.00 [3.80–4.20] | 500.0 | 16.00 [15.20–16.80] | 125.0 "
        "| 4.50 [4.27–4.73] |" in lines
    )
    assert (
        "| first2 | ONNX int8 | 5.30 | 1.25 [1.19–1.31] | 2000.0 | 5.00 [4.75–5.25] | 500.0 "
        "| 1.50 [1.42–1.58] |" in lines
    )
    # first2.td cannot hold 512 positions: dashes; its unsteady timings are marked.
    assert "| first2.td | PyTorch | 21.00 | 2.50 [2.38–2.62] | 800.0 | – | – | – |" in lines
    assert (
        "| first2.td | ONNX int8 | 5.30 | 1.25 [1.19–1.31] | 2000.0 ⚠ | – | – "
        "| 1.50 [1.12–1.88] ⚠ |" in lines
    )
    # Three rows per deployed model; narrow, never deployed, has none.
    assert sum(line.startswith("| first2 |") for line in lines) == 3
    assert "| narrow |" not in afqmc
    assert (
        "Serve a model of this table without torch: `python -m wwmdistill.predict "
        "results/deploy/afqmc/MODEL TEXT_A TEXT_B` (MODEL a row's name; `--int8` serves the "
        "int8 export, `--threads N` sets onnxruntime's threads), or give no texts and one JSON "
        'object per line on stdin: `{"text_a": "…", "text_b": "…"}`.' in lines
    )
    # Timed at 512 only: one pair of columns; span QA takes a question and a context.
    cmrc = text[text.index("#### cmrc2018: deployed formats") : text.index("## Speed")]
    assert "| model | format | size (MB) | b1 ms @512 | b16 seq/s @512 | request ms |" in cmrc
    assert (
        "| teacher | ONNX int8 | 10.60 | 20.00 [19.00–21.00] | 80.0 | 24.00 [22.80–25.20] |" in cmrc
    )
    assert "results/deploy/cmrc2018/MODEL QUESTION CONTEXT`" in cmrc
    assert '`{"question": "…", "context": "…"}`' in cmrc


def test_report_tolerates_a_row_without_speed(tmp_path: Path) -> None:
    """A partial run: an eval without timings or deploy figures renders dashes, no formats
    table."""
    data = AFQMC | {"rows": [AFQMC["rows"][-1]], "config": {}}
    path = tmp_path / "eval/afqmc.json"
    write_json(path, data)
    text = build_report([path], [], {}, tmp_path / "report.md")
    assert (
        "| narrow | 61.00 | 60.00 | – | – | 3.0 | – | – | – | – | – | – | – | – | – | – |"
        in text.splitlines()
    )
    assert "deployed formats" not in text


def test_report_without_benches_or_evals(tmp_path: Path) -> None:
    text = build_report([], [], {}, tmp_path / "report.md")
    assert "No evaluations." in text and "No speed measurements." in text


def test_report_names_a_broken_json(tmp_path: Path) -> None:
    bad = tmp_path / "afqmc.json"
    bad.write_text('{"task": "afqmc",\n  oops}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"afqmc\.json:2: not JSON"):
        build_report([bad], [], {}, tmp_path / "report.md")
    write_json(bad, {"task": "afqmc"})
    with pytest.raises(ValueError, match=r"afqmc\.json: eval JSON lacks the key 'metric'"):
        build_report([bad], [], {}, tmp_path / "report.md")


def _assert_png(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_plots(inputs: dict[str, Any], tmp_path: Path) -> None:
    history = [
        {"step": 10, "loss": 9.0, "loss_kd": 1.0, "loss_mlm": 3.0, "learning_rate": 1e-4},
        {"step": 20, "loss": 7.5, "loss_kd": 0.8, "loss_mlm": 2.5},
        {"step": 20, "train_loss": 8.0},  # the Trainer's closing summary: no curve point
    ]
    metrics = tmp_path / "general/first2/metrics.json"
    write_json(metrics, {"log_history": history, "parameters": {"student": 5_500_000}})
    teacher = tmp_path / "teacher/teacher.json"
    write_json(teacher, {"source": "scratch", "parameters": 11_000_000})
    assert loss_history(json.loads(metrics.read_text())) == {
        "loss": ([10.0, 20.0], [9.0, 7.5]),
        "loss_kd": ([10.0, 20.0], [1.0, 0.8]),
        "loss_mlm": ([10.0, 20.0], [3.0, 2.5]),
    }
    curves = tmp_path / "plots/loss.png"
    plot_loss_curves({"teacher": teacher, "first2": metrics}, curves)
    width, height = _assert_png(curves)
    assert width > height  # two panels side by side: total loss, first2's components
    empty = tmp_path / "plots/empty.png"
    plot_loss_curves({"teacher": teacher}, empty)
    _assert_png(empty)

    evals = load_evals(inputs["evals"])
    # Per model and format: b16 per second at the task's length against the score: the mean
    # over seeds for PyTorch, the export's dev score for fp32 and int8, the mean where the
    # export has none (cmrc2018 first2's int8). narrow has no timings: no points.
    assert score_speed_points(evals) == [
        ("afqmc", "teacher", "pytorch", 400.0, 70.55),
        ("afqmc", "teacher", "fp32", 500.0, 70.1),
        ("afqmc", "teacher", "int8", 1000.0, 69.6),
        ("afqmc", "first2", "pytorch", 800.0, 68.45),
        ("afqmc", "first2", "fp32", 1000.0, 68.0),
        ("afqmc", "first2", "int8", 2000.0, 67.75),
        ("afqmc", "first2.td (one class)", "pytorch", 800.0, 69.0),
        ("afqmc", "first2.td (one class)", "fp32", 1000.0, 69.0),
        ("afqmc", "first2.td (one class)", "int8", 2000.0, 69.0),
        ("cmrc2018", "teacher", "pytorch", 40.0, 80.45),
        ("cmrc2018", "teacher", "fp32", 50.0, 80.1),
        ("cmrc2018", "teacher", "int8", 80.0, 79.1),
        ("cmrc2018", "first2", "pytorch", 160.0, 72.25),
        ("cmrc2018", "first2", "fp32", 200.0, 72.0),
        ("cmrc2018", "first2", "int8", 320.0, 72.25),
    ]
    scatter = tmp_path / "plots/score_vs_speed.png"
    plot_score_vs_speed(inputs["evals"], scatter)
    _assert_png(scatter)


def test_score_vs_speed_draws_each_tasks_baseline(inputs: dict[str, Any]) -> None:
    (axes,) = score_vs_speed_figure(load_evals(inputs["evals"])).axes
    # A horizontal line per task at its baseline's primary score, in the task's colour,
    # labelled on the plot and in the legend.
    labels = {
        "afqmc baseline: majority class 0": 69.0,
        "cmrc2018 baseline: first 4 characters": 20.0,
    }
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert set(lines) == set(labels)
    scatters = {c.get_label(): c for c in axes.collections}
    for label, score in labels.items():
        assert list(lines[label].get_ydata()) == [score, score]
        task_dots = scatters[f"{label.split()[0]} PyTorch"]
        assert to_rgba(lines[label].get_color()) == tuple(task_dots.get_facecolor()[0])
    assert set(labels) <= {text.get_text() for text in axes.texts}
    # The legend: each task (its colour), each baseline, each format (its marker).
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == [
        "afqmc",
        "afqmc baseline: majority class 0",
        "cmrc2018",
        "cmrc2018 baseline: first 4 characters",
        "PyTorch",
        "ONNX fp32",
        "ONNX int8",
    ]
    # One scatter per task and format, its points those of score_speed_points.
    assert [tuple(map(tuple, c.get_offsets())) for c in axes.collections[:3]] == [
        ((400.0, 70.55), (800.0, 68.45), (800.0, 69.0)),
        ((500.0, 70.1), (1000.0, 68.0), (1000.0, 69.0)),
        ((1000.0, 69.6), (2000.0, 67.75), (2000.0, 69.0)),
    ]
    assert [c.get_label() for c in axes.collections] == [
        f"{task} {fmt}"
        for task in ("afqmc", "cmrc2018")
        for fmt in ("PyTorch", "ONNX fp32", "ONNX int8")
    ]
    # Each model named once per task, at its PyTorch point.
    assert [(t.get_text(), t.xy) for t in axes.texts if isinstance(t, Annotation)] == [
        ("teacher", (400.0, 70.55)),
        ("first2", (800.0, 68.45)),
        ("first2.td (one class)", (800.0, 69.0)),
        ("teacher", (40.0, 80.45)),
        ("first2", (160.0, 72.25)),
    ]
