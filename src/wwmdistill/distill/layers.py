"""Which teacher layers teach which student layer, and capturing Q/K/V inside attention.

Indices: for target "attention" a group lists 0-based teacher transformer layers (one group per
student layer); for target "hidden" a group lists teacher hidden-state indices as in
`output_hidden_states` (0 = embeddings, j = output of layer j-1), one group per student hidden
state (student embeddings first).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

Target = Literal["hidden", "attention"]
TARGETS = ("hidden", "attention")

# Names of the query/key/value projections inside one self-attention block: BERT/RoBERTa/ERNIE,
# DistilBERT, most newer encoders.
QKV_NAMES = (("query", "key", "value"), ("q_lin", "k_lin", "v_lin"), ("q_proj", "k_proj", "v_proj"))


def _layer_groups(kind, n_teacher: int, n_student: int) -> list[list[int]]:
    """Teacher transformer layers (0-based) per student layer, for target "attention"."""
    if kind == "uniform":
        if n_teacher % n_student:
            raise ValueError(
                f"layer_map: uniform needs the teacher's {n_teacher} layers to be a multiple of "
                f"the student's {n_student}; give an explicit list or {{mean: g}} instead"
            )
        step = n_teacher // n_student
        return [[i * step + step - 1] for i in range(n_student)]
    if isinstance(kind, dict):
        if set(kind) != {"mean"} or not isinstance(kind["mean"], int) or kind["mean"] < 1:
            raise ValueError(f"layer_map: expected {{mean: <int >= 1>}}, got {kind!r}")
        size = kind["mean"]
        if size * n_student > n_teacher:
            raise ValueError(
                f"layer_map: mean groups of {size} for {n_student} student layers need "
                f"{size * n_student} teacher layers, the teacher has {n_teacher}"
            )
        return [list(range(i * size, i * size + size)) for i in range(n_student)]
    if isinstance(kind, (list, tuple)):
        if len(kind) != n_student:
            raise ValueError(
                f"layer_map: {len(kind)} entries for a student with {n_student} layers"
            )
        groups = [[entry] if isinstance(entry, int) else list(entry) for entry in kind]
        for group in groups:
            in_range = (type(j) is int and 0 <= j < n_teacher for j in group)  # no bools
            if not group or not all(in_range):
                raise ValueError(
                    f"layer_map: entry {group!r} must name teacher layers in [0, {n_teacher})"
                )
        return groups
    raise ValueError(
        f"layer_map: expected 'uniform', a list of teacher layers or {{mean: g}}, got {kind!r}"
    )


def layer_mapping(kind, n_teacher: int, n_student: int, *, target: Target) -> list[list[int]]:
    """For each student layer, the group of teacher layers whose states are averaged to teach it.

    kind (config key `layer_map`):
    - "uniform": TinyBERT, k = n_teacher / n_student; attention: student layer i -> teacher
      layer i*k + k-1; hidden: student state i -> teacher state i*k (0 = embeddings).
    - a list, one entry per student layer: a teacher layer (0-based) or a list of them.
    - {"mean": g}: student layer i -> teacher layers i*g .. i*g+g-1, averaged (DistilRuBERT-tiny).
    target "attention" returns n_student groups of teacher layers; "hidden" returns
    n_student + 1 groups of hidden-state indices, embeddings mapped to embeddings and each
    student layer's output to the outputs of its teacher layers (layer j -> state j+1).
    """
    if target not in TARGETS:
        raise ValueError(f"layer_mapping: target must be one of {TARGETS}, got {target!r}")
    if n_teacher < 1 or n_student < 1:
        raise ValueError(
            f"layer_map: layer counts must be >= 1 (teacher {n_teacher}, student {n_student})"
        )
    groups = _layer_groups(kind, n_teacher, n_student)
    if target == "attention":
        return groups
    return [[0]] + [[j + 1 for j in group] for group in groups]


def mean_of(states: Sequence[Tensor], group: Sequence[int]) -> Tensor:
    """The average of the teacher states named by one mapping group."""
    if len(group) == 1:
        return states[group[0]]
    return torch.stack([states[j] for j in group]).mean(dim=0)


def _attention_blocks(model: nn.Module) -> list[tuple[nn.Module, tuple[nn.Linear, ...]]]:
    """Every self-attention block of the model with its query, key and value Linear modules."""
    blocks = []
    for _, module in model.named_modules():
        children = dict(module.named_children())
        for names in QKV_NAMES:
            found = [children.get(name) for name in names]
            if all(isinstance(linear, nn.Linear) for linear in found):
                blocks.append((module, tuple(found)))
                break
    return blocks


def _head_count(model: nn.Module, block: nn.Module) -> int:
    for name in ("num_attention_heads", "n_heads", "num_heads"):
        value = getattr(block, name, None)
        if isinstance(value, int):
            return value
    config = getattr(model, "config", None)
    if config is not None and isinstance(getattr(config, "num_attention_heads", None), int):
        return config.num_attention_heads
    raise ValueError(f"AttentionCapture: cannot tell the head count of {type(block).__name__}")


class AttentionCapture:
    """Records every self-attention layer's Q, K and V during a forward pass.

    Forward hooks sit on the query/key/value nn.Linear modules, so the captured tensors do not
    depend on the attention implementation (eager, sdpa, flash) and keep their autograd graph.
    Use as a context manager around the forward pass; the hooks are removed on exit. Each forward
    pass overwrites what the previous one left.
    """

    def __init__(self, model: nn.Module) -> None:
        blocks = _attention_blocks(model)
        if not blocks:
            raise ValueError(
                f"AttentionCapture: no self-attention query/key/value Linear modules found in "
                f"{type(model).__name__}"
            )
        self._linears = [linears for _, linears in blocks]
        self._heads = [_head_count(model, block) for block, _ in blocks]
        self._outputs: list[list[Tensor | None]] = [[None, None, None] for _ in blocks]
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __len__(self) -> int:
        return len(self._linears)

    def __enter__(self) -> AttentionCapture:
        for layer, linears in enumerate(self._linears):
            for slot, linear in enumerate(linears):
                self._handles.append(linear.register_forward_hook(self._recorder(layer, slot)))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _recorder(self, layer: int, slot: int):
        def record(_module: nn.Module, _inputs, output: Tensor) -> None:
            self._outputs[layer][slot] = output

        return record

    def heads(self, layer: int) -> int:
        return self._heads[layer]

    def _split(self, layer: int, slot: int) -> Tensor:
        output = self._outputs[layer][slot]
        if output is None:
            raise RuntimeError(
                f"AttentionCapture: layer {layer} has not run; call the model inside the context"
            )
        batch, length, width = output.shape
        heads = self._heads[layer]
        return output.view(batch, length, heads, width // heads).transpose(1, 2)

    def q(self, layer: int) -> Tensor:
        """Queries of `layer`, [B, heads, L, head_dim]."""
        return self._split(layer, 0)

    def k(self, layer: int) -> Tensor:
        """Keys of `layer`, [B, heads, L, head_dim]."""
        return self._split(layer, 1)

    def v(self, layer: int) -> Tensor:
        """Values of `layer`, [B, heads, L, head_dim]."""
        return self._split(layer, 2)

    def qkv(self, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        """(Q, K, V) of `layer`, each [B, heads, L, head_dim] (what relation_kl takes)."""
        return self.q(layer), self.k(layer), self.v(layer)

    def scores(self, layer: int, attention_mask: Tensor | None = None) -> Tensor:
        """Pre-softmax attention scores Q K^T / sqrt(head_dim), [B, heads, L(query), L(key)].

        Without a mask the raw scores (what attention_score_mse takes: it zeroes padding
        itself); with attention_mask [B, L] the padding keys hold finfo.min, so softmax over the
        last dimension gives the model's attention probabilities.
        """
        query, key = self.q(layer), self.k(layer)
        scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        if attention_mask is not None:
            padding = (attention_mask == 0)[:, None, None, :]
            scores = scores.masked_fill(padding, torch.finfo(scores.dtype).min)
        return scores
