"""A Hugging Face model card (README.md) for a distilled student directory.

The card is assembled here: front matter, the student's architecture, training corpus and
distillation, and how to use it. The teacher's section and the vocabulary note come from
`model_card_teacher`; the results, speed and deploy sections from `model_card_results`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from wwmdistill.arrow_io import atomic_path
from wwmdistill.model_card_results import deploy_section, results_section, speed_section
from wwmdistill.model_card_teacher import (
    architecture_table,
    teacher_origin,
    teacher_section,
    vocabulary_note,
)
from wwmdistill.report.formatting import MISSING, TEACHER, markdown_table
from wwmdistill.report.inputs import load_evals, load_json
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


def architecture_section(
    model_dir: Path, parameters: int, tokenizer: Mapping[str, Any] | None = None
) -> str:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"model card: {config_path} does not exist")
    config = load_json(config_path)
    lines = ["## Architecture", "", architecture_table(config, parameters)]
    if note := vocabulary_note(config.get("vocab_size"), tokenizer):
        lines += ["", note]
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
    teacher_dir: Path | None,
    tokenizer: Mapping[str, Any] | None,
    corpus: Mapping[str, Any],
    eval_paths: Iterable[str | Path],
    benches: Mapping[str, Mapping[str, Any]],
    parameters: int,
    language: str,
    repo_id: str,
) -> str:
    eval_paths = list(eval_paths)
    source = str(teacher.get("source", MISSING))
    sections = [
        front_matter(language),
        f"# {name}\n\nA student distilled from {teacher_origin(source, teacher.get('revision'))} "
        "with whole-word-masking data by the wwmdistill workflow.",
        architecture_section(model_dir, parameters, tokenizer),
        teacher_section(teacher, teacher_dir),
        corpus_section(corpus),
        losses_section(name, student_settings),
        results_section(name, eval_paths),
        speed_section(benches),
        deploy_section(name, load_evals(eval_paths)),
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
    teacher_dir: str | Path | None = None,
    tokenizer: Mapping[str, Any] | None = None,
    eval_paths: Iterable[str | Path] = (),
    bench_path: str | Path | None = None,
    teacher_bench_path: str | Path | None = None,
    parameters: int | None = None,
    language: str = "zh",
    repo_id: str | None = None,
) -> str:
    """Write the model card of student `name` (model in `model_dir`) to `out_path`; return it.

    `teacher`: the config's teacher block (source, revision, training, ...; parameters may be
    given), read where the teacher directory's teacher.json is missing. `teacher_dir`: the
    teacher model directory (config.json, teacher.json). `tokenizer`: the config's tokenizer
    block, to explain the vocabulary's size. `corpus`: the config's sources, corpus, masking and
    segmentation blocks. `parameters` defaults to the count in the directory's metrics.json,
    else a count of the loaded model. `repo_id` is what the usage snippet loads (default: the
    model directory).
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
        teacher_dir=None if teacher_dir is None else Path(teacher_dir),
        tokenizer=tokenizer,
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
