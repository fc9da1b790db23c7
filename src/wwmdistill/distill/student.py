"""Student initialisation: from scratch, from chosen teacher layers, or a local model.

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
from pathlib import Path

from transformers import PreTrainedModel

from wwmdistill.models import ModelMismatchError, load_masked_lm
from wwmdistill.settings import ModelSize, StudentSettings

log = logging.getLogger(__name__)


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
    if size.dropout is not None:  # else the teacher's, as the rest of its config
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = size.dropout
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
