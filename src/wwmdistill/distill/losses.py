"""Distillation losses in plain torch: top-k KD, MLM, cosine, TinyBERT MSEs, MiniLM relations.

Every loss computes in float32 whatever the input dtype (mixed-precision logits would otherwise
lose the small probabilities KD is about) and returns a scalar tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KDKind = Literal["kl", "soft_ce"]
KD_KINDS = ("kl", "soft_ce")

# Additive attention masks are -1e4 (TinyBERT, old BERT) or finfo.min (transformers): anything at
# or below this is a mask value, never a real score.
MASK_SCORE_THRESHOLD = -1.0e4
# Padding positions of per-token task logits (span QA): no probability mass on either side.
PAD_LOGIT = -1.0e4


def soft_cross_entropy(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """TinyBERT's prediction loss: -sum softmax(t/T) log_softmax(s/T), batch mean, no T^2."""
    targets = F.softmax(teacher.float() / temperature, dim=-1)
    return -(targets * F.log_softmax(student.float() / temperature, dim=-1)).sum(-1).mean()


def _teacher_distribution(
    topk_logits: Tensor, temperature: float, logsumexp: Tensor | None
) -> Tensor:
    """Teacher probabilities over the k ids, plus a tail bucket (last column) with `logsumexp`."""
    scaled = topk_logits / temperature
    if logsumexp is None:
        return torch.softmax(scaled, dim=-1)
    # The tail bucket keeps its exact T=1 mass; the top-k share the rest as softmax(topk / T).
    # The cache holds no tail shape, so the tail at T != 1 cannot be known; this choice is exact
    # at T=1 and, for T > 1, a lower bound on the true tail (the tail ids have the lowest logits,
    # so flattening only raises their share; an upper bound for T < 1), never an invented tail
    # shape (a flat one would hand most of the mass to the tail at T=2 with a 21k vocabulary).
    head_mass = torch.exp(topk_logits - logsumexp.unsqueeze(-1)).sum(-1, keepdim=True)
    # fp16 logits can make the top-k sum exceed 1 by rounding.
    tail = (1.0 - head_mass).clamp(0.0, 1.0)
    return torch.cat([torch.softmax(scaled, dim=-1) * (1.0 - tail), tail], dim=-1)


def _student_log_probs(
    student_logits: Tensor, topk_ids: Tensor, temperature: float, with_tail: bool
) -> Tensor:
    """log_softmax(student / T) at the k ids, plus the log of its mass outside them."""
    scaled = student_logits / temperature
    log_z = torch.logsumexp(scaled, dim=-1, keepdim=True)
    log_probs = scaled.gather(-1, topk_ids) - log_z
    if not with_tail:
        return log_probs
    # Only called with k < V, so the complement keeps a finite logit and logsumexp stays finite.
    outside = scaled.scatter(-1, topk_ids, float("-inf"))
    tail = torch.logsumexp(outside, dim=-1, keepdim=True) - log_z
    return torch.cat([log_probs, tail], dim=-1)


def topk_kd_loss(
    student_logits: Tensor,
    topk_ids: Tensor,
    topk_logits: Tensor,
    *,
    temperature: float,
    logsumexp: Tensor | None = None,
    kind: KDKind = "kl",
    t2_scaling: bool = True,
) -> Tensor:
    """Knowledge-distillation loss against a teacher's cached top-k logits.

    student_logits [M, V] at the masked positions; topk_ids [M, k] and topk_logits [M, k] the
    teacher's k largest logits there; logsumexp [M] the teacher's full-vocabulary logsumexp at T=1.

    Teacher: softmax(topk_logits / T) over the k ids (softmax is shift-invariant, so T can be
    applied after caching). With `logsumexp` the teacher's mass outside the top-k becomes one
    extra bucket holding its T=1 probability 1 - sum(exp(topk - lse)), and the top-k are
    renormalised at T into the remaining mass (exact at T=1; see `_teacher_distribution`).
    Student: log_softmax(student_logits / T) at the k ids (not renormalised over them, so mass
    it puts elsewhere is penalised), plus, with the tail bucket, the log of its own mass outside
    the k ids. With k = V and no logsumexp this is the full-vocabulary KD loss.

    kind "kl": KL(teacher || student), summed over buckets, mean over positions (batchmean);
    "soft_ce": -sum p_teacher log p_student, mean over positions (= KL + teacher entropy).
    t2_scaling multiplies by T^2 (DistilBERT; keeps gradient size independent of T); TextBrewer
    and TinyBERT's prediction layer leave it out.
    """
    if kind not in KD_KINDS:
        raise ValueError(f"kd: unknown kind {kind!r}; expected one of {KD_KINDS}")
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0, got {temperature}")
    if student_logits.ndim != 2 or topk_ids.ndim != 2 or topk_ids.shape != topk_logits.shape:
        raise ValueError(
            f"topk_kd_loss: expected student_logits [M,V] and topk_ids/topk_logits [M,k], got "
            f"{tuple(student_logits.shape)}, {tuple(topk_ids.shape)}, {tuple(topk_logits.shape)}"
        )
    if topk_ids.shape[0] != student_logits.shape[0]:
        raise ValueError(
            f"topk_kd_loss: {student_logits.shape[0]} student positions but "
            f"{topk_ids.shape[0]} teacher positions"
        )
    vocab = student_logits.shape[-1]
    if topk_ids.shape[-1] > vocab:
        raise ValueError(f"topk_kd_loss: top_k {topk_ids.shape[-1]} exceeds vocab size {vocab}")
    if topk_ids.numel() and (int(topk_ids.min()) < 0 or int(topk_ids.max()) >= vocab):
        raise ValueError(
            f"topk_kd_loss: teacher ids outside the student vocabulary [0, {vocab}) "
            "(teacher and student vocabularies differ?)"
        )
    if logsumexp is not None and logsumexp.shape != topk_ids.shape[:1]:
        raise ValueError(
            f"topk_kd_loss: logsumexp must be [M]={tuple(topk_ids.shape[:1])}, "
            f"got {tuple(logsumexp.shape)}"
        )
    positions = student_logits.shape[0]
    if positions == 0:
        # A batch without masked positions: zero, still attached to the graph.
        return student_logits.sum() * 0.0

    if topk_ids.shape[-1] == vocab:
        # No tail when the k ids are the whole vocabulary (only rounding would put mass there).
        logsumexp = None
    teacher = _teacher_distribution(
        topk_logits.float(), temperature, None if logsumexp is None else logsumexp.float()
    )
    student = _student_log_probs(
        student_logits.float(), topk_ids.long(), temperature, with_tail=logsumexp is not None
    )
    if kind == "kl":
        # Summed elementwise, p_t (log p_t - log p_s): cross-entropy and entropy summed apart
        # (~640 - 631 at T=8 over 21k ids, with T^2) cancel to ~3e-6 relative error in float32.
        # xlogy: 0 * log 0 = 0 for buckets the teacher leaves empty.
        loss = (torch.xlogy(teacher, teacher) - teacher * student).sum()
    else:
        loss = -(teacher * student).sum()
    loss = loss / positions
    return loss * temperature**2 if t2_scaling else loss


def mlm_loss(student_logits: Tensor, labels: Tensor) -> Tensor:
    """Masked-LM cross entropy, mean over positions (labels -100 are ignored)."""
    return F.cross_entropy(student_logits.float(), labels.long())


def _project(hidden: Tensor, width: int, projection: nn.Module | None, what: str) -> Tensor:
    if projection is not None:
        hidden = projection(hidden)
    if hidden.shape[-1] != width:
        raise ValueError(
            f"{what}: student width {hidden.shape[-1]} != teacher width {width}; "
            "a projection (student -> teacher width) is required"
        )
    return hidden


def cosine_loss(
    student_hidden: Tensor, teacher_hidden: Tensor, projection: nn.Module | None = None
) -> Tensor:
    """Mean over positions of 1 - cos(projection(student), teacher) (DistilBERT's cosine loss).

    Same value as nn.CosineEmbeddingLoss with target 1. Inputs [..., H]; every leading index is
    one position (pass only real, e.g. masked, positions).
    """
    student = _project(student_hidden.float(), teacher_hidden.shape[-1], projection, "cosine_loss")
    cos = F.cosine_similarity(student, teacher_hidden.float(), dim=-1)
    return (1.0 - cos).mean()


def _check_pairs(student: Sequence[Tensor], teacher: Sequence[Tensor], what: str) -> None:
    if len(student) != len(teacher):
        raise ValueError(f"{what}: {len(student)} student layers but {len(teacher)} teacher layers")
    if not student:
        raise ValueError(f"{what}: no layer pairs given")


def attention_score_mse(
    student_scores: Sequence[Tensor], teacher_scores: Sequence[Tensor], attention_mask: Tensor
) -> Tensor:
    """TinyBERT attention loss: MSE between pre-softmax scores, summed over layer pairs.

    Scores [B, heads, L, L] (query, key), aligned pairs (see layers.layer_mapping). Entries
    whose key is padding, and additive-mask values (<= -1e4), are set to 0 in both before the
    MSE, which is the mean over all B*heads*L*L entries, as TinyBERT does.
    """
    _check_pairs(student_scores, teacher_scores, "attention_score_mse")
    key_padding = (attention_mask == 0)[:, None, None, :]
    total = student_scores[0].new_zeros((), dtype=torch.float32)
    for layer, (student, teacher) in enumerate(zip(student_scores, teacher_scores, strict=True)):
        if student.shape[1] != teacher.shape[1]:
            raise ValueError(
                f"attention_score_mse: pair {layer}: student has {student.shape[1]} heads, "
                f"teacher {teacher.shape[1]}; attention distillation needs equal head counts "
                "(set the student's heads to the teacher's or use the relation loss)"
            )
        if student.shape != teacher.shape:
            raise ValueError(
                f"attention_score_mse: pair {layer}: shapes {tuple(student.shape)} and "
                f"{tuple(teacher.shape)} differ"
            )
        student, teacher = student.float(), teacher.float()
        student = student.masked_fill(key_padding | (student <= MASK_SCORE_THRESHOLD), 0.0)
        teacher = teacher.masked_fill(key_padding | (teacher <= MASK_SCORE_THRESHOLD), 0.0)
        total = total + F.mse_loss(student, teacher)
    return total


def hidden_mse(
    student_states: Sequence[Tensor],
    teacher_states: Sequence[Tensor],
    projections: nn.ModuleList | None,
    attention_mask: Tensor,
) -> Tensor:
    """TinyBERT hidden-state loss: MSE(projection(student), teacher), summed over layer pairs.

    States [B, L, H], aligned pairs (hidden index 0 = embeddings). `projections`: one learned
    nn.Linear per pair (TextBrewer style: each layer learns its own map), or a single module
    shared by all pairs (TinyBERT's W_h); None when the widths match. The MSE is the mean over
    non-padding positions and hidden units (padding is excluded, unlike TinyBERT).
    """
    _check_pairs(student_states, teacher_states, "hidden_mse")
    if projections is not None and len(projections) not in (1, len(student_states)):
        raise ValueError(
            f"hidden_mse: {len(projections)} projections for {len(student_states)} layer pairs "
            "(give one per pair or one shared)"
        )
    valid = attention_mask.bool()
    total = student_states[0].new_zeros((), dtype=torch.float32)
    for layer, (student, teacher) in enumerate(zip(student_states, teacher_states, strict=True)):
        projection = None
        if projections is not None:
            projection = projections[layer if len(projections) > 1 else 0]
        projected = _project(student.float(), teacher.shape[-1], projection, "hidden_mse")
        total = total + F.mse_loss(projected[valid], teacher.float()[valid])
    return total


def _merge_heads(states: Tensor) -> Tensor:
    """[B, heads, L, d] -> [B, L, heads*d]; [B, L, H] is returned as it is."""
    if states.ndim == 4:
        batch, heads, length, dim = states.shape
        return states.transpose(1, 2).reshape(batch, length, heads * dim)
    if states.ndim != 3:
        raise ValueError(f"relation_kl: expected [B,L,H] or [B,h,L,d], got {tuple(states.shape)}")
    return states


def _relation_log_probs(states: Tensor, key_padding: Tensor, heads: int) -> Tensor:
    batch, length, width = states.shape
    if width % heads:
        raise ValueError(
            f"relation_heads: {heads} does not divide the hidden size {width} "
            "(students.<name>.relation_heads)"
        )
    dim = width // heads
    split = states.reshape(batch, length, heads, dim).transpose(1, 2)
    relation = split @ split.transpose(-1, -2) / math.sqrt(dim)
    relation = relation.masked_fill(key_padding, torch.finfo(relation.dtype).min)
    return torch.log_softmax(relation, dim=-1)


def relation_kl(
    student_qkv: Sequence[Tensor],
    teacher_qkv: Sequence[Tensor],
    attention_mask: Tensor,
    relation_heads: int,
) -> Tensor:
    """MiniLM-v2 self-attention relation loss for one (student layer, teacher layer) pair.

    student_qkv / teacher_qkv: the (Q, K, V) of one layer, each [B, L, H] with heads
    concatenated or [B, h, L, d] as AttentionCapture gives them; the student and teacher widths
    may differ. Each is re-split into `relation_heads` heads of width d_r = H / relation_heads;
    relation = softmax(X X^T / sqrt(d_r)) over the non-padding keys. The loss is
    KL(teacher || student) summed over keys, averaged over non-padding queries, relation heads
    and the batch, then summed over the Q-Q, K-K and V-V relations (as in the MiniLM-v2 paper).
    """
    if len(student_qkv) != 3 or len(teacher_qkv) != 3:
        raise ValueError("relation_kl: expected (Q, K, V) for the student and the teacher")
    if relation_heads < 1:
        raise ValueError(f"relation_heads: must be >= 1, got {relation_heads}")
    key_padding = (attention_mask == 0)[:, None, None, :]
    valid_queries = attention_mask.bool()[:, None, :].expand(-1, relation_heads, -1)
    total = attention_mask.new_zeros((), dtype=torch.float32)
    for student, teacher in zip(student_qkv, teacher_qkv, strict=True):
        log_s = _relation_log_probs(_merge_heads(student.float()), key_padding, relation_heads)
        log_t = _relation_log_probs(_merge_heads(teacher.float()), key_padding, relation_heads)
        # Padding keys carry probability exactly 0 in both (finfo.min); xlogy-free since
        # exp(log_t) * (log_t - log_s) is 0 * finite there.
        kl = (log_t.exp() * (log_t - log_s)).sum(-1)
        total = total + kl[valid_queries].mean()
    return total
