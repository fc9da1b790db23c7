"""A Hugging Face model card (README.md) for a distilled student directory.

Beside the student's own architecture, distillation and scores, the card describes the teacher
it came from (architecture, pretraining, held-out masked-LM figures), why its vocabulary may be
smaller than the config asked, and the ONNX deployments of its task models with how to serve
them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from wwmdistill.arrow_io import atomic_path
from wwmdistill.eval_fields import timing
from wwmdistill.report.formatting import (
    DEPLOY_ROOT,
    MISSING,
    ONE_CLASS,
    TEACHER,
    baseline_name,
    fmt,
    fmt_int8_score,
    fmt_margin,
    fmt_millions,
    fmt_ms,
    fmt_per_second,
    fmt_percent,
    fmt_request,
    markdown_table,
    metric_name,
    model_label,
    serve_usage,
    size_mb,
    spread_limit,
    threads_of,
    unsteady_note,
)
from wwmdistill.report.inputs import load_evals, load_json
from wwmdistill.report.tables import speed_note, speed_table
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


def _architecture_table(config: Mapping[str, Any], parameters: Any) -> str:
    count = f"{parameters:,} ({fmt_millions(parameters)}M)" if isinstance(parameters, int) else None
    rows = [
        ("model type", config.get("model_type")),
        ("layers", config.get("num_hidden_layers")),
        ("hidden size", config.get("hidden_size")),
        ("attention heads", config.get("num_attention_heads")),
        ("intermediate size", config.get("intermediate_size")),
        ("vocabulary", config.get("vocab_size")),
        ("max positions", config.get("max_position_embeddings")),
        ("parameters", count),
    ]
    return markdown_table(
        ["property", "value"], [[name, MISSING if v is None else str(v)] for name, v in rows]
    )


def vocabulary_note(vocab_size: Any, tokenizer: Mapping[str, Any] | None) -> str | None:
    """Where the vocabulary comes from, and why it is smaller than `tokenizer.vocab_size` asks:
    WordPiece training stops when no pair of pieces is left frequent enough to merge."""
    if not tokenizer or not isinstance(vocab_size, int):
        return None
    source = tokenizer.get("source", "train")
    if source != "train":
        return (
            f"The vocabulary ({vocab_size:,} tokens) is the tokenizer of `{source}`; "
            "`tokenizer.vocab_size` applies only to a tokenizer trained here."
        )
    asked, min_frequency = tokenizer.get("vocab_size"), tokenizer.get("min_frequency", 2)
    if not isinstance(asked, int) or asked == vocab_size:
        return f"The vocabulary ({vocab_size:,} tokens) is a WordPiece one trained on the corpus."
    why = (
        "WordPiece training stops short of the size asked when the corpus has no more pieces to "
        "add: every character it holds is in, and no pair of pieces left occurs at least "
        f"`min_frequency` ({min_frequency}) times; a larger corpus gives a larger vocabulary."
        if vocab_size < asked
        else "WordPiece keeps every character of the corpus (up to `limit_alphabet`) even past "
        "the size asked."
    )
    return (
        f"The vocabulary has {vocab_size:,} tokens where `tokenizer.vocab_size` asks for "
        f"{asked:,}: it is the WordPiece vocabulary trained on the corpus, and the model's "
        f"vocab_size is the trained tokenizer's size. {why}"
    )


def architecture_section(
    model_dir: Path, parameters: int, tokenizer: Mapping[str, Any] | None = None
) -> str:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"model card: {config_path} does not exist")
    config = load_json(config_path)
    lines = ["## Architecture", "", _architecture_table(config, parameters)]
    if note := vocabulary_note(config.get("vocab_size"), tokenizer):
        lines += ["", note]
    return "\n".join(lines)


def _teacher_origin(source: str, revision: str | None) -> str:
    """The teacher's source in words: scratch, a local directory or a hub id."""
    if source == "scratch":
        return "a teacher pretrained here from scratch"
    at = f" (revision `{revision}`)" if revision else ""
    if source.startswith(("/", ".", "~")) or Path(source).expanduser().exists():
        return f"the local model `{source}`{at}"
    return f"`{source}`{at} from the Hugging Face hub"


def _recipe(training: Mapping[str, Any], steps: Any, processes: Any) -> str:
    batch = f"batch size {training.get('batch_size', MISSING)}"
    if isinstance(processes, int) and processes > 1:
        batch += f" per process on {processes} processes"
    return f"{steps} steps, {batch}, learning rate {training.get('learning_rate', MISSING)}"


def teacher_section(teacher: Mapping[str, Any], teacher_dir: Path | None = None) -> str:
    """The teacher: where it came from, how it was pretrained, its architecture (config.json)
    and its held-out whole-word masked-LM figures (teacher.json, written when it was built).

    `teacher` is the config's teacher block, read where teacher.json is absent."""
    record: Mapping[str, Any] = {}
    config: Mapping[str, Any] | None = None
    if teacher_dir is not None:
        if (teacher_dir / "teacher.json").is_file():
            record = load_json(teacher_dir / "teacher.json")
        if (teacher_dir / "config.json").is_file():
            config = load_json(teacher_dir / "config.json")
    settings = record.get("settings") or teacher
    source = str(record.get("source") or settings.get("source") or MISSING)
    training = settings.get("training") or {}
    lines = ["## Teacher", ""]
    origin = _teacher_origin(source, record.get("revision") or settings.get("revision"))
    adapt = settings.get("adapt_steps") or 0
    if not record:
        how = "; its pretraining is not recorded (no teacher.json beside it)."
    elif source == "scratch" or adapt:
        steps = record.get("steps", adapt or training.get("max_steps"))
        how = (
            (", further pretrained here" if adapt else "")
            + " by whole-word masked LM on the training corpus below: "
            + f"{_recipe(training, steps, record.get('processes'))}."
        )
    else:
        how = ", used as fetched (no pretraining here)."
    lines.append(f"Distilled from {origin}{how}")
    parameters = record.get("parameters", teacher.get("parameters"))
    if config is not None:
        lines += ["", _architecture_table(config, parameters)]
    elif isinstance(parameters, int):
        lines.append(f"The teacher has {parameters:,} parameters ({fmt_millions(parameters)}M).")
    heldout = record.get("heldout")
    if isinstance(heldout, Mapping):
        tokens = heldout.get("tokens")
        shard = f"{tokens:,} masked tokens of a shard" if isinstance(tokens, int) else "a shard"
        lines += [
            "",
            f"Held-out whole-word masked LM ({shard} never trained on): accuracy "
            f"{fmt_percent(heldout.get('accuracy'))}, perplexity "
            f"{fmt(heldout.get('perplexity'), 1)}.",
        ]
    else:
        lines += ["", "Held-out whole-word masked-LM accuracy and perplexity: not recorded."]
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


def deploy_section(name: str, evals: list[dict[str, Any]]) -> str:
    """Per task: the student's own rows (fine-tuned and task-distilled) as deployed, their
    exports' agreement and scores, sizes and speed at the task's length, and how to serve them."""
    rows: list[list[str]] = []
    examples: list[str] = []
    threads: dict[str, None] = {}
    limits: dict[str, None] = {}
    for data in evals:
        task, seq_len = str(data["task"]), data.get("seq_len")
        mine = [
            row
            for row in data["rows"]
            if str(row.get("model")) == name or row.get("base") == name
            if row.get("deploy") is not None or row.get("speed") is not None
        ]
        for row in mine:
            sizes = " / ".join(fmt(size_mb(row, f), 2) for f in ("pytorch", "fp32", "int8"))
            rows.append(
                [
                    task,
                    str(row.get("model", MISSING)),
                    f"`{DEPLOY_ROOT}/{task}/{row.get('model')}`",
                    metric_name(data["metric"]),
                    str(seq_len or MISSING),
                    fmt_percent(((row.get("deploy") or {}).get("fp32") or {}).get("agreement")),
                    fmt(((row.get("deploy") or {}).get("pytorch") or {}).get("score")),
                    fmt_int8_score(row),
                    sizes,
                    fmt_ms(timing(row, "int8", 1, seq_len)),
                    fmt_per_second(timing(row, "int8", 16, seq_len)),
                    fmt_request(row, "int8"),
                ]
            )
        if mine:
            count = threads_of(data)
            threads[f"{task} {'not recorded' if count is None else count}"] = None
            limits[spread_limit(data)] = None
            command = f"python -m wwmdistill.predict {DEPLOY_ROOT}/{task}/{mine[0].get('model')}"
            arguments, line = serve_usage(data.get("kind"))
            examples += [
                f"# {task}: one example from the arguments",
                f"{command} {arguments}",
                "# or one JSON object per line on stdin, through the int8 export",
                f"echo '{line}' | {command} --int8 --threads {count or 1}",
            ]
    lines = ["## Deploy", ""]
    if not rows:
        return "\n".join([*lines, "Not deployed yet."])
    lines += [
        "Each task model built on this student is exported to ONNX fp32 (`model.onnx`) and int8 "
        "(`model.int8.onnx`) in its directory, beside its tokenizer files, `labels.json` and "
        "`deploy.json`; the first seed's model. fp32 agreement is the share of dev predictions "
        "equal to PyTorch's; the scores are on dev (Δ: the int8 export's points against "
        "PyTorch); sizes are PyTorch / fp32 / int8; int8 b1 ms and b16 seq/s time the model "
        "alone at the task's length, int8 request one dev request at a time, raw text in and "
        "answer out (×: over the model alone). Threads (torch and onnxruntime): "
        f"{', '.join(threads)}. {unsteady_note(' / '.join(limits))}",
        "",
        markdown_table(
            [
                "task",
                "model",
                "directory",
                "metric",
                "length",
                "fp32 agreement",
                "PyTorch",
                "int8 (Δ)",
                "size (MB)",
                "int8 b1 (ms)",
                "int8 b16 (seq/s)",
                "int8 request (ms)",
            ],
            rows,
            left=4,
        ),
        "",
        "Serve a directory without torch (onnxruntime and the model's own tokenizer); it prints "
        "one JSON line per example: a label and every label's probability, an answer span, or "
        "the chosen option.",
        "",
        "```bash",
        *examples,
        "```",
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
        f"# {name}\n\nA student distilled from {_teacher_origin(source, teacher.get('revision'))} "
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
