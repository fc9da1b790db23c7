"""The teacher's part of a model card: where it came from, how it was pretrained, its
architecture and held-out masked-LM figures; the architecture table both models' sections use;
and the vocabulary note (student and teacher share the tokenizer), which says why the vocabulary
may be smaller than the config asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wwmdistill.report.formatting import (
    MISSING,
    fmt,
    fmt_millions,
    fmt_percent,
    markdown_table,
)
from wwmdistill.report.inputs import load_json


def architecture_table(config: Mapping[str, Any], parameters: Any) -> str:
    """A model's config.json as a property/value table, the parameter count in millions too."""
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


def teacher_origin(source: str, revision: str | None) -> str:
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
    origin = teacher_origin(source, record.get("revision") or settings.get("revision"))
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
        lines += ["", architecture_table(config, parameters)]
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
