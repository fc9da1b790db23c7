"""The loss module of general distillation: the student and its learned student->teacher width
projections as one trainable module (`DistillationModel`), whose forward returns each unweighted
loss component (KD, MLM, cosine, attention, embedding, hidden, relation). The student's LM head
runs only at the masked positions.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel

from wwmdistill.distill.layers import AttentionCapture
from wwmdistill.distill.losses import (
    attention_score_mse,
    cosine_loss,
    hidden_mse,
    mlm_loss,
    relation_kl,
    topk_kd_loss,
)
from wwmdistill.distill.student import StudentSettings
from wwmdistill.models import mlm_head

# Losses that are means over masked positions (the others are over tokens or heads).
PER_POSITION = ("kd", "mlm", "cos")


def head_name(model: PreTrainedModel) -> str:
    """The attribute name of the model's LM head (reached by name, never registered twice)."""
    head = mlm_head(model)
    return next(name for name, child in model.named_children() if child is head)


class DistillationModel(nn.Module):
    """The student and the learned student->teacher width projections, as one trainable module.

    `forward` takes a collated batch (plus, online, the teacher's targets already mapped onto the
    student's layers) and returns each unweighted loss component, a mean over this batch.
    """

    # Makes the Trainer count the masked positions of each whole optimizer step (all
    # accumulated micro-batches, all processes): `DistillationTrainer.compute_loss` uses it.
    accepts_loss_kwargs = True

    def __init__(
        self,
        student: PreTrainedModel,
        settings: StudentSettings,
        teacher_hidden_size: int,
        relation_heads: int,
    ) -> None:
        super().__init__()
        self.student = student
        self.settings = settings
        self.relation_heads = relation_heads
        # The head is reached by name: registering it twice would duplicate its parameters.
        self._head = head_name(student)
        width, weights = student.config.hidden_size, settings.weights
        n_layers = student.config.num_hidden_layers

        def projection(used: bool) -> nn.Linear | None:
            return (
                nn.Linear(width, teacher_hidden_size)
                if used and width != teacher_hidden_size
                else None
            )

        self.cos_projection = projection(weights.cos > 0)
        self.embedding_projection = projection(weights.embedding > 0)
        # TextBrewer style: one projection per matched hidden state.
        hidden = [projection(weights.hidden > 0) for _ in range(n_layers)]
        self.hidden_projections = nn.ModuleList(hidden) if hidden[0] is not None else None

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        labels: Tensor,
        mask_index: Tensor,
        teacher_topk_ids: Tensor | None = None,
        teacher_topk_logits: Tensor | None = None,
        teacher_logsumexp: Tensor | None = None,
        teacher_hidden: Tensor | None = None,
        teacher: dict[str, Any] | None = None,
    ) -> dict[str, Tensor]:
        settings, weights = self.settings, self.settings.weights
        with_states = weights.hidden > 0 or weights.embedding > 0
        capture = AttentionCapture(self.student) if weights.attention or weights.relation else None
        with capture or contextlib.nullcontext():
            out = self.student.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=with_states,
                return_dict=True,
            )
        rows, cols = mask_index.unbind(1)
        masked_hidden = out.last_hidden_state[rows, cols]
        parts: dict[str, Tensor] = {}
        if weights.kd > 0 or weights.mlm > 0:
            logits = getattr(self.student, self._head)(masked_hidden)
            if weights.mlm > 0:
                parts["mlm"] = mlm_loss(logits, labels[rows, cols])
            if weights.kd > 0:
                if teacher is None:
                    ids, target, lse = teacher_topk_ids, teacher_topk_logits, teacher_logsumexp
                else:
                    # Every vocabulary id, in order: exact KD (no tail), without materialising.
                    target, lse = teacher["logits"], None
                    ids = torch.arange(target.shape[1], device=target.device).expand_as(target)
                parts["kd"] = topk_kd_loss(
                    logits,
                    ids,
                    target,
                    temperature=settings.temperature,
                    logsumexp=lse,
                    kind=settings.kd,
                    t2_scaling=settings.t2_scaling,
                )
        if weights.cos > 0:
            target = teacher_hidden if teacher is None else teacher["hidden"]
            parts["cos"] = cosine_loss(masked_hidden, target, self.cos_projection)
        if weights.attention > 0:
            scores = [capture.scores(i) for i in range(len(capture))]
            parts["attention"] = attention_score_mse(scores, teacher["attention"], attention_mask)
        if weights.embedding > 0:
            parts["embedding"] = hidden_mse(
                [out.hidden_states[0]],
                [teacher["states"][0]],
                None if self.embedding_projection is None else [self.embedding_projection],
                attention_mask,
            )
        if weights.hidden > 0:
            parts["hidden"] = hidden_mse(
                list(out.hidden_states[1:]),
                teacher["states"][1:],
                self.hidden_projections,
                attention_mask,
            )
        if weights.relation > 0:
            parts["relation"] = relation_kl(
                capture.qkv(len(capture) - 1),
                teacher["relation_qkv"],
                attention_mask,
                self.relation_heads,
            )
        return parts
