"""A Hugging Face model card (README.md) for a distilled student directory."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from wwmdistill.arrow_io import atomic_path
from wwmdistill.report import (
    MISSING,
    ONE_CLASS,
    TEACHER,
    baseline_name,
    fmt,
    fmt_margin,
    fmt_millions,
    fmt_percent,
    load_evals,
    load_json,
    markdown_table,
    metric_name,
    model_label,
    speed_note,
    speed_table,
)
from wwmdistill.settings import MaskingSettings, StudentSettings

TAGS = ("bert", "distillation", "whole-word-masking")


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()


def front_matter(language: str) -> str:
    meta = {
        "language": language,
        "license": "apache-2.0",
        "library_name": "transformers",
        "pipeline_tag": "fill-mask",
        "tags": list(TAGS),
    }
    return f"---\n{_yaml(meta)}\n---"


def _model_parameters(model_dir: Path) -> int:
    """The count the run recorded beside the weights, else one from loading the model."""
    for name, keys in (
        ("metrics.json", ("parameters", "student")),
        ("teacher.json", ("parameters",)),
    ):
        path = model_dir / name
        if path.is_file():
            value: Any = load_json(path)
            for key in keys:
                value = value.get(key) if isinstance(value, Mapping) else None
            if isinstance(value, int):
                return value
    from wwmdistill.models import count_parameters, load_masked_lm

    return count_parameters(load_masked_lm(model_dir))


def architecture_section(model_dir: Path, parameters: int) -> str:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"model card: {config_path} does not exist")
    config = load_json(config_path)
    rows = [
        ("model type", config.get("model_type")),
        ("layers", config.get("num_hidden_layers")),
        ("hidden size", config.get("hidden_size")),
        ("attention heads", config.get("num_attention_heads")),
        ("intermediate size", config.get("intermediate_size")),
        ("vocabulary", config.get("vocab_size")),
        ("max positions", config.get("max_position_embeddings")),
        ("parameters", f"{parameters:,} ({fmt_millions(parameters)}M)"),
    ]
    table = markdown_table(
        ["property", "value"], [[name, MISSING if v is None else str(v)] for name, v in rows]
    )
    return f"## Architecture\n\n{table}"


def teacher_section(teacher: Mapping[str, Any]) -> str:
    lines = ["## Teacher", ""]
    source = teacher.get("source", MISSING)
    revision = teacher.get("revision")
    lines.append(f"Distilled from `{source}`" + (f" (revision `{revision}`)." if revision else "."))
    if isinstance(teacher.get("parameters"), int):
        lines.append(
            f"The teacher has {teacher['parameters']:,} parameters "
            f"({fmt_millions(teacher['parameters'])}M)."
        )
    if teacher.get("size_mb") is not None:
        lines.append(f"Its weights take {fmt(teacher['size_mb'], 1)} MB.")
    return "\n".join(lines)


def corpus_section(corpus: Mapping[str, Any]) -> str:
    """Sources, corpus sharding, segmentation and the whole-word masking settings."""
    masking = MaskingSettings.from_config(dict(corpus.get("masking") or {}))
    segmentation = corpus.get("segmentation") or {}
    sources = corpus.get("sources") or {}
    lines = ["## Training corpus and whole-word masking", ""]
    if sources:
        names = ", ".join(
            f"`{name}` ({block.get('type', MISSING) if isinstance(block, Mapping) else MISSING})"
            for name, block in sources.items()
        )
        lines += [f"Sources: {names}.", ""]
    lines += [
        f"Words come from the `{segmentation.get('backend', 'ltp')}` segmenter; every WordPiece "
        "of a chosen word is masked together (whole-word masking), static masks written once.",
        "",
        f"- max sequence length: {masking.max_seq_len}",
        f"- masked fraction: {masking.masked_lm_prob} (at most {masking.max_predictions_per_seq} "
        "per sequence)",
        f"- of the chosen tokens: {masking.mask_token_prob:.0%} [MASK], "
        f"{masking.random_token_prob:.0%} random, "
        f"{1 - masking.mask_token_prob - masking.random_token_prob:.0%} kept",
        f"- duplication factor (masked copies of each document): {masking.dupe_factor}",
        "",
        "The configuration blocks:",
        "",
        "```yaml",
        _yaml({key: corpus[key] for key in corpus}),
        "```",
    ]
    return "\n".join(lines)


def losses_section(name: str, student_settings: Mapping[str, Any]) -> str:
    """Initialisation, distillation mode and the loss weights, with defaults filled in."""
    settings = StudentSettings.from_config(dict(student_settings), where=f"students.{name}")
    init = settings.init
    init_detail = {
        "teacher_layers": f"teacher layers {list(settings.teacher_layers or ())}",
        "first_n": f"the teacher's first {settings.first_n} layers",
        "path": f"the model in `{settings.path}`",
        "scratch": "random weights",
    }[init]
    layer_map = settings.layer_map
    layer_map = list(layer_map) if isinstance(layer_map, tuple) else layer_map
    weights = settings.weights.as_dict()
    lines = [
        "## Distillation",
        "",
        f"- initialisation: `{init}` ({init_detail})",
        f"- mode: `{settings.mode}` ("
        + (
            "from the teacher's cached top-k logits"
            if settings.mode == "cached"
            else "teacher run alongside the student"
        )
        + ")",
        f"- temperature: {settings.temperature}"
        + (" (losses scaled by T²)" if settings.t2_scaling else ""),
        f"- logit loss: `{settings.kd}`",
        f"- layer map: `{json.dumps(layer_map)}`",
        f"- training: {settings.training.max_steps} steps, batch {settings.training.batch_size}, "
        f"learning rate {settings.training.learning_rate}",
        "",
        markdown_table(["loss", "weight"], [[key, f"{value:g}"] for key, value in weights.items()]),
    ]
    return "\n".join(lines)


def results_section(name: str, eval_paths: Iterable[str | Path]) -> str:
    """Per task: the teacher's and this student's rows (its own and those built on it), then
    the task's baseline; a model that predicted one class on dev is marked."""
    rows = []
    for data in load_evals(eval_paths):
        metric = data["metric"]
        task = str(data["task"])
        mine = [
            row
            for row in data["rows"]
            if str(row.get("model")) in (TEACHER, name) or row.get("base") == name
        ]
        for row in mine:
            rows.append(
                [
                    task,
                    model_label(row),
                    str(row.get("stage", MISSING)),
                    metric_name(metric),
                    fmt((row.get("mean") or {}).get(metric)),
                    fmt((row.get("max") or {}).get(metric)),
                    fmt_percent((row.get("relative") or {}).get("score")),
                    fmt_margin((row.get("margin") or {}).get(metric)),
                ]
            )
        baseline = data.get("baseline")
        if mine and isinstance(baseline, Mapping):
            score = fmt((baseline.get("scores") or {}).get(metric))
            relative = fmt_percent((baseline.get("relative") or {}).get("score"))
            rows.append(
                [task, baseline_name(baseline), MISSING, metric_name(metric), score, score]
                + [relative, MISSING]
            )
    lines = ["## Results", ""]
    if not rows:
        return "\n".join([*lines, "No evaluations yet."])
    lines += [
        "Dev-set scores (0-100), mean and max over fine-tuning seeds; relative score is the "
        "mean over the teacher's mean; vs baseline is the mean minus the task's baseline (a "
        "trivial predictor fit on train: the majority class, or for span QA the context's first "
        f'characters), in points. "{ONE_CLASS}" marks a model that predicted a single class '
        "on dev: it learned nothing.",
        "",
        markdown_table(
            ["task", "model", "stage", "metric", "mean", "max", "relative score", "vs baseline"],
            rows,
            left=4,
        ),
    ]
    return "\n".join(lines)


def speed_section(benches: Mapping[str, Mapping[str, Any]]) -> str:
    if not benches:
        return "## Speed\n\nNot measured."
    return f"## Speed\n\n{speed_table(benches)}\n\n{speed_note(benches)}"


def _mask_token(model_dir: Path) -> str:
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = model_dir / name
        if path.is_file():
            token = load_json(path).get("mask_token")
            if isinstance(token, Mapping):
                token = token.get("content")
            if isinstance(token, str):
                return token
    return "[MASK]"


def usage_section(model_dir: Path, repo_id: str) -> str:
    mask = _mask_token(model_dir)
    code = f'''```python
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
model = AutoModelForMaskedLM.from_pretrained("{repo_id}")
fill = pipeline("fill-mask", model=model, tokenizer=tokenizer)
print(fill("北京是中国的首{mask}。"))
```'''
    return (
        "## How to use\n\n"
        "A BERT-style encoder with its masked-LM head; fine-tune it like any BERT checkpoint "
        "(AutoModelForSequenceClassification, AutoModelForQuestionAnswering).\n\n" + code
    )


def render_model_card(
    name: str,
    model_dir: Path,
    *,
    student_settings: Mapping[str, Any],
    teacher: Mapping[str, Any],
    corpus: Mapping[str, Any],
    eval_paths: Iterable[str | Path],
    benches: Mapping[str, Mapping[str, Any]],
    parameters: int,
    language: str,
    repo_id: str,
) -> str:
    sections = [
        front_matter(language),
        f"# {name}\n\nA student distilled from `{teacher.get('source', MISSING)}` with "
        "whole-word-masking data by the wwmdistill workflow.",
        architecture_section(model_dir, parameters),
        teacher_section(teacher),
        corpus_section(corpus),
        losses_section(name, student_settings),
        results_section(name, eval_paths),
        speed_section(benches),
        usage_section(model_dir, repo_id),
    ]
    return "\n\n".join(sections) + "\n"


def write_model_card(
    name: str,
    model_dir: str | Path,
    out_path: str | Path,
    *,
    student_settings: Mapping[str, Any],
    teacher: Mapping[str, Any],
    corpus: Mapping[str, Any],
    eval_paths: Iterable[str | Path] = (),
    bench_path: str | Path | None = None,
    teacher_bench_path: str | Path | None = None,
    parameters: int | None = None,
    language: str = "zh",
    repo_id: str | None = None,
) -> str:
    """Write the model card of student `name` (model in `model_dir`) to `out_path`; return it.

    `teacher`: source, revision, parameters, size_mb (any may be absent). `corpus`: the config's
    sources, corpus, masking and segmentation blocks. `parameters` defaults to the count in the
    directory's metrics.json, else a count of the loaded model. `repo_id` is what the usage
    snippet loads (default: the model directory).
    """
    model_dir = Path(model_dir)
    benches: dict[str, dict[str, Any]] = {}
    if teacher_bench_path is not None:
        benches[TEACHER] = load_json(teacher_bench_path)
    if bench_path is not None:
        benches[name] = load_json(bench_path)
    text = render_model_card(
        name,
        model_dir,
        student_settings=student_settings,
        teacher=teacher,
        corpus=corpus,
        eval_paths=eval_paths,
        benches=benches,
        parameters=parameters if parameters is not None else _model_parameters(model_dir),
        language=language,
        repo_id=repo_id or str(model_dir),
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
