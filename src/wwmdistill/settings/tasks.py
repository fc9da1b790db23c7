"""Settings of the task side: a task's data, fine-tuning recipe, augmentation, task distillation,
and the evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from wwmdistill.settings.base import (
    DEFAULT_MAX_EXTRACT_BYTES,
    DEFAULT_MAX_EXTRACT_MEMBERS,
    MAX_EXTRACT_BYTES_HELP,
    MAX_EXTRACT_MEMBERS_HELP,
    Block,
    ConfigError,
    Int,
    KeyProblem,
    Num,
    Precision,
    Seq,
    no_default,
)
from wwmdistill.settings.pretraining import LayerMap


class FinetuneSettings(Block):
    """fine-tuning recipe of a task, the same for every model. The defaults below are generic
    and rank lowest: the task's CLUE recipe (wwmdistill.tasks.registry FINETUNE_RECIPES), then
    the top-level `finetune` block, then `tasks.{name}.finetune` override them key by key, where
    the config writes the key"""

    where: ClassVar[str] = "finetune"

    epochs: Num(gt=0) = 3
    max_steps: Int(ge=1) | None = Field(
        None, description="stop after this many optimizer steps instead of `epochs`"
    )
    batch_size: Int(ge=1) = Field(16, description="per device")
    eval_batch_size: Int(ge=1) = 64
    learning_rate: Num(gt=0) = 2.0e-5
    learning_rates: dict[str, Num(gt=0)] = Field(
        {},
        description="per-model learning rates (teacher or a student's name) in place of "
        "learning_rate, as HFL tunes it per model; changing one reruns that model's fine-tuning "
        "only",
    )
    warmup_ratio: Num(ge=0, le=1) = 0.1
    weight_decay: Num(ge=0) = 0.01
    max_seq_len: Int(ge=8) = 128
    evals_per_epoch: Int(ge=1) = Field(
        1, description="dev evaluations (and checkpoints) per epoch; the best is kept"
    )
    logging_steps: Int(ge=1) = 25
    precision: Precision = "auto"
    gpus: Int(ge=0) = Field(0, description="the job's gpu resource")
    processes: Int(ge=1) = Field(1, description="CPU ranks without GPUs")
    nodes: Int(ge=1) = Field(1, description="Slurm nodes, torchrun on each")
    doc_stride: Int(ge=1) = Field(128, description="span QA windows")
    max_query_len: Int(ge=1) = 64
    max_answer_len: Int(ge=1) = Field(30, description="in tokens")
    n_best: Int(ge=1) = 20

    def as_dict(self) -> dict[str, Any]:
        # A job's recipe has one learning rate, resolved from learning_rates by the workflow.
        return self.model_dump(exclude={"learning_rates"})


class AugmentSettings(Block):
    """TinyBERT's data augmentation, made to work for Chinese words"""

    where: ClassVar[str] = "augment"

    n: Int(ge=1) | None = Field(
        None,
        description="augmented examples per original; null = TinyBERT's 30, 20 (>= 50k rows), "
        "10 (>= 300k)",
    )
    p: Num(gt=0, le=1) = Field(0.4, description="replacement probability per word")
    m: Int(ge=1) = Field(15, description="candidates per word")
    batch_size: Int(ge=1) = Field(64, description="teacher forward batch")
    max_seq_len: Int(ge=8) = 128
    stopwords: str | None = Field(None, description="a file, one word per line (null: built in)")
    synonyms: str | None = Field(None, description="a Cilin-style synonym file")
    max_word_chars: Int(ge=1) = 4
    slices: Int(ge=1) = Field(2, description="augmentation jobs per task")

    @classmethod
    def from_config(
        cls, block: Mapping[str, Any] | None, where: str | None = None
    ) -> AugmentSettings:
        settings = super().from_config(block, where)
        # Checked when the job runs, not at DAG build: a file may be made by then.
        for key in ("stopwords", "synonyms"):
            path = getattr(settings, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"config {where or 'augment'}.{key}: {path} is not a file")
        return settings


class Stage1Settings(Block):
    """Intermediate-layer distillation (TinyBERT: 10 epochs on the augmented set)."""

    where: ClassVar[str] = "task_distill.stage1"

    epochs: Num(gt=0) = 10
    max_steps: Int(ge=1) | None = None
    batch_size: Int(ge=1) = 32
    learning_rate: Num(gt=0) = 5.0e-5
    warmup_ratio: Num(ge=0, le=1) = 0.1
    weight_decay: Num(ge=0) = 0.01
    save_steps: Int(ge=1) = 500
    logging_steps: Int(ge=1) = 25
    precision: Precision = "auto"
    embedding: Num(ge=0) = 1.0
    hidden: Num(ge=0) = 1.0
    attention: Num(ge=0) = 1.0
    layer_map: LayerMap = "uniform"


class Stage2Settings(Block):
    """Prediction-layer distillation (TinyBERT: lr 3e-5, 3 epochs, T = 1)."""

    where: ClassVar[str] = "task_distill.stage2"

    epochs: Num(gt=0) = 3
    max_steps: Int(ge=1) | None = None
    batch_size: Int(ge=1) = 32
    learning_rate: Num(gt=0) = 3.0e-5
    evals_per_epoch: Int(ge=1) = 1
    temperature: Num(gt=0) = 1.0
    hard_weight: Num(ge=0) = 0.0


class TaskDistillSettings(Block):
    """TinyBERT's two-stage task distillation of the general students on this task"""

    where: ClassVar[str] = "task_distill"

    enabled: bool = Field(False, description="task-distil the students on this task")
    students: Seq(str) | None = Field(None, description="which general students (null = all)")
    teacher_seed: int | None = Field(
        None,
        description="the fine-tuned teacher's seed whose logits teach (null = the first seed)",
    )
    ablation: bool = Field(
        True, description="also distil without augmentation (classification), for the comparison"
    )
    stage1: Stage1Settings = Stage1Settings()
    stage2: Stage2Settings = Stage2Settings()


Split = Literal["train", "dev", "test"]
Sha256 = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


def _digests(value: Any) -> Any:
    """A digest, or {file name: digest} for a task downloaded as several files."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    raise ValueError(f"expected a sha256 digest or {{file: digest}}, got {value!r}")


_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


class TaskBlock(Block):
    """A task's config block (`tasks.<name>`); wwmdistill.tasks.registry.TaskSettings adds the
    checks that depend on the task."""

    where: ClassVar[str] = "tasks.<name>"

    source: Literal["auto", "local", "url", "hf"] = Field(
        "auto",
        description="auto: the official files under data_root when present, else the official "
        "download; local: data_root only; url: an archive or file at `url`; hf: a Hugging Face "
        "dataset",
    )
    url: Annotated[str, Field(pattern="^https?://")] | None = None
    sha256: Annotated[
        Any,
        BeforeValidator(_digests),
        WithJsonSchema(
            {
                "anyOf": [
                    _SHA256,
                    {"type": "object", "additionalProperties": _SHA256},
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(None, description="the archive's digest, or {file name: digest}")
    max_extract_bytes: Int(ge=1) = Field(
        DEFAULT_MAX_EXTRACT_BYTES,
        description=MAX_EXTRACT_BYTES_HELP,
        json_schema_extra=no_default,
    )
    max_extract_members: Int(ge=1) = Field(
        DEFAULT_MAX_EXTRACT_MEMBERS,
        description=MAX_EXTRACT_MEMBERS_HELP,
        json_schema_extra=no_default,
    )
    hf_dataset: str | None = None
    hf_name: str | None = None
    splits: dict[Split, str | None] | None = Field(
        None,
        description="train/dev/test file names (or HF split names) instead of the task's "
        "defaults, e.g. FewCLUE's train_few_all.json; null drops a split",
        validate_default=True,
    )
    to_simplified: bool | None = Field(
        None,
        description="opencc t2s; null converts a traditional-script task (DRCD) when the models' "
        "tokenizer is simplified",
    )
    on_error: Literal["raise", "skip"] = Field(
        "raise", description="bad records: stop naming file and line, or skip and count them"
    )
    max_examples: dict[Split, Int(ge=1) | None] = Field(
        {},
        description="keep at most this many examples of a split (a seeded sample), for CPU runs",
    )
    dev_fraction: Num(gt=0, le=0.5) = 0.1
    test_fraction: Num(ge=0, le=0.5) = 0.1
    finetune: FinetuneSettings = FinetuneSettings()
    augment: AugmentSettings = AugmentSettings()
    task_distill: TaskDistillSettings = TaskDistillSettings()

    @field_validator("splits")
    @classmethod
    def _named_splits(cls, splits: dict[str, str | None] | None) -> dict[str, str | None]:
        # The library reads {} for "the task's own file names"; the schema's default stays null.
        for key, value in (splits or {}).items():
            if value == "":
                raise ValueError(f"{key}: expected a name or null")
        return dict(splits or {})

    @model_validator(mode="after")
    def _fractions(self) -> TaskBlock:
        if self.dev_fraction + self.test_fraction >= 1:
            raise KeyProblem("test_fraction", "dev_fraction + test_fraction must be below 1")
        return self


class SpeedSettings(Block):
    """timing of every model and format: all of a table's models in interleaved rounds (random
    ids, or dev requests end to end), the median and interquartile range over `repeats` rounds"""

    where: ClassVar[str] = "evaluation.speed"

    bench_seq_len: Int(ge=8) = 512
    repeats: Int(ge=1) = Field(7, description="timed rounds; each times every model once")
    warmup: Int(ge=0) = Field(1, description="untimed rounds before them")
    threads: Int(ge=1) = Field(
        1,
        description="torch and onnxruntime intra-op threads of the timed runs (pinned, recorded): "
        "one thread gives steady figures on a shared machine",
    )
    requests: Int(ge=1) = Field(
        8, description="dev examples sent one by one per round to time end-to-end latency"
    )
    max_spread: Num(gt=0) = Field(
        0.25,
        description="a timing whose interquartile range exceeds this share of its median is "
        "marked unsteady, and so is every ratio taken from it",
    )


class EvaluationSettings(Block):
    where: ClassVar[str] = "evaluation"

    seeds: Seq(Int(ge=0), min_length=1) = Field(
        (1, 2, 3),
        description="fine-tuning seeds; the report gives the max and the mean (HFL's practice)",
        json_schema_extra={"uniqueItems": True},
    )
    speed: SpeedSettings = SpeedSettings()

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{list(seeds)} repeats a seed")
        return seeds
