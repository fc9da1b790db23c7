"""Sequence classification (CLUE's classification tasks, ChnSentiCorp, LCQMC, XNLI, ...).

Rows: `id`, `text_a`, `text_b` (null for single sentences), `label` (index into the task's fixed
labels, -1 unlabelled). One feature per row; accuracy; CLUE's `{"id", "label"}` prediction lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from wwmdistill.kinds.base import (
    MODEL_INPUTS,
    LogitsPerRow,
    argmax_predictions,
    majority_label,
    probabilities,
    row_ids,
)


def encode_texts(table: pa.Table, tokenizer: Any, max_len: int) -> dict[str, list]:
    text_a = table.column("text_a").to_pylist()
    text_b = table.column("text_b").to_pylist()
    pair = any(b is not None for b in text_b)
    encoded = tokenizer(
        text_a,
        [b or "" for b in text_b] if pair else None,
        truncation=True,
        max_length=max_len,
    )
    return {key: encoded[key] for key in MODEL_INPUTS}


class Classification(LogitsPerRow):
    name = "classification"
    row_schema = pa.schema(
        [
            ("id", pa.string()),
            ("text_a", pa.string()),
            ("text_b", pa.string()),
            ("label", pa.int32()),
        ]
    )
    augmented_columns = ("text_a", "text_b")
    carved_by = "label"
    input_fields = ("text_a", "text_b")
    optional_fields = ("text_b",)

    def texts(self, examples: Sequence[Any]) -> list[str]:
        return [t for e in examples for t in (e.text_a, e.text_b) if t]

    def carve_key(self, example: Any) -> tuple[Any, Any]:
        return example.label, (example.text_a, example.text_b)

    def auto_model(self) -> Any:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def load_model(self, model_dir: Path, labels: Sequence[str]) -> Any:
        return self.auto_model().from_pretrained(
            model_dir,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )

    def train_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        labels = self.gold_labels(table)
        return encode_texts(table, tokenizer, settings.max_seq_len) | {"labels": labels}

    def eval_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        return encode_texts(table, tokenizer, settings.max_seq_len)

    def decode(
        self, raw: Any, table: pa.Table, features: Mapping[str, Any], settings: Any
    ) -> dict[str, Any]:
        return argmax_predictions(row_ids(table), raw)

    def baseline(self, labels: Sequence[str], train: pa.Table, dev: pa.Table) -> dict[str, Any]:
        label, scores = majority_label(train, dev)
        return {
            "method": "majority_class",
            "description": "the most frequent label of train, predicted for every dev example",
            "class": labels[label],
            "scores": scores,
        }

    def label_name(self, labels: Sequence[str], predicted: Any) -> Any:
        return labels[predicted]

    def served(
        self, table: pa.Table, labels: Sequence[str], predicted: Mapping[str, Any], raw: Any
    ) -> list[dict[str, Any]]:
        """The label's name and every label's probability."""
        rows = probabilities(raw).tolist()
        return [
            {"id": i, "label": labels[predicted[i]], "scores": dict(zip(labels, p, strict=True))}
            for i, p in zip(row_ids(table), rows, strict=True)
        ]
