"""Student settings and initialisation: from scratch, from chosen teacher layers, or a local model.

`teacher_layers` follows DistilBERT's `extract_distilbert.py`: the student keeps the teacher's
embeddings, the listed encoder layers (renumbered in order) and the masked-LM head, with the
decoder tied to the word embeddings as in the teacher. `first_n` is the RBT3 recipe (the first n
layers). The student has the teacher's architecture class (BERT for the Chinese WWM teachers,
RoBERTa for an English DistilRoBERTa run), so a teacher-layers student computes exactly what
the same layers compute in the teacher.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers import PreTrainedModel

from wwmdistill.models import ModelMismatchError, load_masked_lm
from wwmdistill.settings import known_keys
from wwmdistill.training import ModelSize, TrainingSettings

log = logging.getLogger(__name__)

Init = Literal["scratch", "teacher_layers", "first_n", "path"]


@dataclass(frozen=True)
class LossWeights:
    kd: float = 5.0
    mlm: float = 2.0
    cos: float = 1.0
    attention: float = 0.0
    hidden: float = 0.0
    embedding: float = 0.0
    relation: float = 0.0

    @classmethod
    def from_config(cls, block: dict[str, Any] | None, where: str) -> LossWeights:
        weights = cls(**known_keys(cls, block, where))
        for name, value in vars(weights).items():
            if value < 0:
                raise ValueError(f"config {where}.{name}: {value} is negative")
        return weights


@dataclass(frozen=True)
class StudentSettings:
    init: Init = "scratch"
    teacher_layers: tuple[int, ...] | None = None
    first_n: int | None = None
    path: str | None = None
    scratch: ModelSize = field(
        default_factory=lambda: ModelSize(layers=2, hidden=128, heads=2, intermediate=512)
    )
    mode: Literal["cached", "online"] = "cached"
    temperature: float = 2.0
    t2_scaling: bool = True
    kd: Literal["kl", "soft_ce"] = "kl"
    weights: LossWeights = field(default_factory=LossWeights)
    layer_map: str | tuple[int, ...] | dict[str, int] = "uniform"
    relation_heads: int | None = None
    training: TrainingSettings = field(default_factory=TrainingSettings)
    # Where the block sits in the config, for error messages (not a setting).
    where: InitVar[str] = "student"

    def __post_init__(self, where: str) -> None:
        choice = {"teacher_layers": self.teacher_layers, "first_n": self.first_n, "path": self.path}
        if self.init not in ("scratch", *choice):
            raise ValueError(
                f"config {where}.init: {self.init!r} not one of scratch, {list(choice)}"
            )
        if self.init != "scratch" and choice[self.init] is None:
            raise ValueError(f"config {where}.{self.init}: required by init: {self.init}")
        if self.mode not in ("cached", "online"):
            raise ValueError(f"config {where}.mode: {self.mode!r} not one of cached, online")
        if self.kd not in ("kl", "soft_ce"):
            raise ValueError(f"config {where}.kd: {self.kd!r} not one of kl, soft_ce")
        if self.temperature <= 0:
            raise ValueError(f"config {where}.temperature: must be positive")
        if self.first_n is not None and self.first_n < 1:
            raise ValueError(f"config {where}.first_n: must be at least 1")
        if self.relation_heads is not None and self.relation_heads < 1:
            raise ValueError(f"config {where}.relation_heads: must be at least 1")
        if self.mode == "cached":
            # Without the teacher in the loop there are no attention maps or hidden states to match.
            for name in ("attention", "hidden", "embedding", "relation"):
                if getattr(self.weights, name) > 0:
                    raise ValueError(
                        f"config {where}.weights.{name}: must be 0 in mode: cached (the logit "
                        "cache holds no attention maps or intermediate hidden states); use "
                        "mode: online"
                    )

    @classmethod
    def from_config(cls, block: dict[str, Any], where: str = "student") -> StudentSettings:
        """The `students.<name>` block of the config (`where` names it in errors)."""
        values = known_keys(cls, block, where)
        values["scratch"] = ModelSize.from_config(values.get("scratch"), f"{where}.scratch")
        values["weights"] = LossWeights.from_config(values.get("weights"), f"{where}.weights")
        values["training"] = TrainingSettings.from_config(
            values.get("training"), f"{where}.training"
        )
        if values.get("teacher_layers") is not None:
            values["teacher_layers"] = tuple(values["teacher_layers"])
        if isinstance(values.get("layer_map"), list):
            values["layer_map"] = tuple(values["layer_map"])
        return cls(**values, where=where)


def init_student(
    settings: StudentSettings, teacher: PreTrainedModel, where: str = "student"
) -> PreTrainedModel:
    """A masked-LM student for `teacher`, initialised as `settings.init` says."""
    n_teacher = teacher.config.num_hidden_layers
    if settings.init == "scratch":
        return _scratch_student(settings.scratch, teacher)
    if settings.init == "first_n":
        if settings.first_n > n_teacher:
            raise ValueError(
                f"config {where}.first_n: {settings.first_n} > the teacher's {n_teacher} layers"
            )
        return _layers_student(teacher, list(range(settings.first_n)))
    if settings.init == "teacher_layers":
        layers = list(settings.teacher_layers)
        bad = [i for i in layers if not 0 <= i < n_teacher]
        if bad:
            raise ValueError(
                f"config {where}.teacher_layers: {bad} out of range for a {n_teacher}-layer "
                f"teacher (valid 0..{n_teacher - 1})"
            )
        if len(set(layers)) != len(layers):
            raise ValueError(f"config {where}.teacher_layers: {layers} repeats a layer")
        return _layers_student(teacher, layers)
    return _path_student(Path(settings.path), teacher, where)


def _scratch_student(size: ModelSize, teacher: PreTrainedModel) -> PreTrainedModel:
    # The teacher's config keeps vocabulary, positions, token types, pad id and model family.
    config = copy.deepcopy(teacher.config)
    config.hidden_size = size.hidden
    config.num_hidden_layers = size.layers
    config.num_attention_heads = size.heads
    config.intermediate_size = size.intermediate
    config.architectures = None
    return type(teacher)(config)


def _layers_student(teacher: PreTrainedModel, layers: list[int]) -> PreTrainedModel:
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    config.architectures = None
    student = type(teacher)(config)
    prefix = re.escape(teacher.base_model_prefix)
    layer_key = re.compile(rf"^({prefix}\.encoder\.layer\.)(\d+)(\..*)$")
    source = teacher.state_dict()
    mapped = {}
    for key in student.state_dict():
        match = layer_key.match(key)
        src = f"{match[1]}{layers[int(match[2])]}{match[3]}" if match else key
        mapped[key] = source[src]
    student.load_state_dict(mapped, strict=True)
    return student


def _path_student(path: Path, teacher: PreTrainedModel, where: str) -> PreTrainedModel:
    student = load_masked_lm(path)
    if student.config.vocab_size != teacher.config.vocab_size:
        raise ModelMismatchError(
            f"config {where}.path: {path} has vocab_size {student.config.vocab_size}, the "
            f"teacher {teacher.config.vocab_size}; a student must share the teacher's vocabulary"
        )
    return student


def count_parameters(model: PreTrainedModel) -> int:
    """Distinct parameters (a tied decoder counts once)."""
    return sum(p.numel() for p in model.parameters())
