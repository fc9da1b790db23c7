"""Multiple-choice reading comprehension (C3): one document, a question, 2-4 options.

Rows: `id`, `context` (the document), `question`, `choices` (the options), `label` (index of the
right option, -1 unlabelled). As CLUE's C3 baseline does, every question is given 4 options,
padding with "无效答案" ("invalid answer"), and each option is encoded with the document and the
question; the model scores the options and a softmax runs over them. Padding options are
trained as wrong answers and never predicted. Accuracy; CLUE's `{"id", "label"}` lines with the
option's index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from torch import Tensor

from wwmdistill.kinds.base import (
    MODEL_INPUTS,
    LogitsPerRow,
    majority_label,
    probabilities,
    row_ids,
)

MAX_CHOICES = 4
PADDING_CHOICE = "无效答案"


def encode_choices(table: pa.Table, tokenizer: Any, max_len: int) -> dict[str, list]:
    """Per row, MAX_CHOICES sequences "[CLS] document [SEP] question option [SEP]".

    The document is cut first when a sequence is too long (it is the long part), so the
    question and the option stay whole.
    """
    contexts = table.column("context").to_pylist()
    questions = table.column("question").to_pylist()
    choices = table.column("choices").to_pylist()
    firsts, seconds = [], []
    for context, question, options in zip(contexts, questions, choices, strict=True):
        padded = list(options) + [PADDING_CHOICE] * (MAX_CHOICES - len(options))
        firsts += [context] * MAX_CHOICES
        seconds += [f"{question}{option}" for option in padded]
    encoded = tokenizer(firsts, seconds, truncation="longest_first", max_length=max_len)
    return {
        key: [encoded[key][i : i + MAX_CHOICES] for i in range(0, len(firsts), MAX_CHOICES)]
        for key in MODEL_INPUTS
    }


class MultipleChoiceCollator:
    """Pads every option of every row to one length: (rows, options, length) tensors, torch
    ("pt") or numpy ("np") ones."""

    def __init__(self, tokenizer: Any, return_tensors: str = "pt") -> None:
        self.tokenizer = tokenizer
        self.return_tensors = return_tensors

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        rows, options = len(features), len(features[0]["input_ids"])
        flat = [
            {key: feature[key][i] for key in MODEL_INPUTS if key in feature}
            for feature in features
            for i in range(options)
        ]
        batch = self.tokenizer.pad(flat, return_tensors=self.return_tensors)
        batch = {key: value.reshape(rows, options, -1) for key, value in batch.items()}
        if "labels" in features[0]:
            import torch

            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.int64)
        return batch


class MultipleChoice(LogitsPerRow):
    name = "multiple_choice"
    row_schema = pa.schema(
        [
            ("id", pa.string()),
            ("context", pa.string()),
            ("question", pa.string()),
            ("choices", pa.list_(pa.string())),
            ("label", pa.int32()),
        ]
    )
    # Options must stay as written (the answer is one of them, word for word) and the document
    # is long and read by every option: the question is what varies.
    augmented_columns = ("question",)
    carved_by = "document"
    input_fields = ("context", "question", "choices")
    onnx_input_shape = (2, MAX_CHOICES, 16)

    def columns(self, examples: Sequence[Any]) -> dict[str, list[Any]]:
        columns = super().columns(examples)
        columns["choices"] = [list(value) for value in columns["choices"]]
        return columns

    def texts(self, examples: Sequence[Any]) -> list[str]:
        contexts = dict.fromkeys(e.context for e in examples)
        return [t for e in examples for t in (e.question, *e.choices)] + list(contexts)

    def carve_key(self, example: Any) -> tuple[Any, Any]:
        return 0, example.context

    def auto_model(self) -> Any:
        from transformers import AutoModelForMultipleChoice

        return AutoModelForMultipleChoice

    def speed_model(self, model_dir: Path) -> Any:
        # The options are sequences of the encoder; timing it on (batch, length) gives the cost
        # per option (the scoring head is one linear layer).
        from transformers import AutoModel

        return AutoModel.from_pretrained(model_dir)

    def collator(self, tokenizer: Any, return_tensors: str = "pt") -> Any:
        return MultipleChoiceCollator(tokenizer, return_tensors)

    def encoder_inputs(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {
            name: inputs[name].reshape(-1, inputs[name].shape[-1])
            for name in MODEL_INPUTS
            if name in inputs
        }

    def train_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        labels = self.gold_labels(table)
        return encode_choices(table, tokenizer, settings.max_seq_len) | {"labels": labels}

    def eval_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        options = [len(c) for c in table.column("choices").to_pylist()]
        return encode_choices(table, tokenizer, settings.max_seq_len) | {"options": options}

    def decode(
        self, raw: Any, table: pa.Table, features: Mapping[str, Any], settings: Any
    ) -> dict[str, Any]:
        logits = np.asarray(raw[0] if isinstance(raw, tuple) else raw, dtype=np.float64)
        options = np.asarray(features["options"])
        padding = np.arange(logits.shape[1])[None, :] >= options[:, None]
        choice = np.where(padding, -np.inf, logits).argmax(-1)
        return dict(zip(row_ids(table), choice.tolist(), strict=True))

    def baseline(self, labels: Sequence[str], train: pa.Table, dev: pa.Table) -> dict[str, Any]:
        position, scores = majority_label(train, dev)
        return {
            "method": "majority_position",
            "description": "the most frequent answer position of train (0 = the first option), "
            "predicted for every dev question",
            "class": position,
            "scores": scores,
        }

    def served(
        self, table: pa.Table, labels: Sequence[str], predicted: Mapping[str, Any], raw: Any
    ) -> list[dict[str, Any]]:
        """The chosen option (its index and text) and each real option's probability."""
        logits = np.asarray(raw[0] if isinstance(raw, tuple) else raw, dtype=np.float64)
        choices = table.column("choices").to_pylist()
        out = []
        for j, (i, options) in enumerate(zip(row_ids(table), choices, strict=True)):
            scores = probabilities(logits[j, : len(options)]).tolist()
            choice = predicted[i]
            out.append({"id": i, "choice": choice, "answer": options[choice], "scores": scores})
        return out
