"""What every task kind provides: the one place a kind's code differs from another's.

A kind (sequence classification, span QA, multiple choice) owns its rows' Arrow schema, its model
class, its features, how raw model outputs become predictions, its metric, its prediction files,
what task distillation caches and matches for it, and what a deployed model takes and answers.
Everything else asks the kind.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:  # torch is imported by the jobs that train, not by the DAG build
    from torch import Tensor

# The inputs a BERT-style encoder takes, in every kind's features.
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class TaskKind:
    """Base of the kinds; one instance each in `wwmdistill.kinds.KINDS`."""

    name: ClassVar[str]
    # The rows of results/tasks/{task}/{split}.arrow.
    row_schema: ClassVar[pa.Schema]
    # The fine-tuned teacher's outputs cached for stage 2 of task distillation.
    logits_schema: ClassVar[pa.Schema]
    metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    # Columns task augmentation rewrites; every other column is copied from the original.
    augmented_columns: ClassVar[tuple[str, ...]]
    # Whether each row is exactly one training feature, so rows can be selected among features
    # (the no-augmentation ablation keeps the original rows' features).
    one_feature_per_row: ClassVar[bool]
    dev_predictions_file: ClassVar[str]
    # What carve_key groups by, for stats.json.
    carved_by: ClassVar[str]
    # The model's output fields that predictions and distillation read.
    output_names: ClassVar[tuple[str, ...]]
    # Whether predictions are classes (labels, option positions), so a model can be caught
    # predicting one class only.
    predicts_classes: ClassVar[bool]
    # The row fields a user gives a deployed model, in the serving command line's order; the
    # other fields are gold answers, filled with `unlabelled`'s values.
    input_fields: ClassVar[tuple[str, ...]]
    optional_fields: ClassVar[tuple[str, ...]] = ()
    unlabelled: ClassVar[dict[str, Any]]
    # The shape of each of `MODEL_INPUTS` in the example batch an ONNX export traces; every
    # axis is exported as dynamic.
    onnx_input_shape: ClassVar[tuple[int, ...]] = (2, 16)

    # --- rows ------------------------------------------------------------------------------

    def columns(self, examples: Sequence[Any]) -> dict[str, list[Any]]:
        """Arrow columns of checked examples, in `row_schema`'s order."""
        return {name: [getattr(e, name) for e in examples] for name in self.row_schema.names}

    def texts(self, examples: Sequence[Any]) -> list[str]:
        """The text of the examples, each shared document once (what a vocabulary must cover)."""
        raise NotImplementedError

    def carve_key(self, example: Any) -> tuple[Any, Any]:
        """(stratum, group) of an example when splits are carved out of one file: strata keep
        their shares in every split, a group never straddles two."""
        raise NotImplementedError

    # --- model -----------------------------------------------------------------------------

    def auto_model(self) -> Any:
        raise NotImplementedError

    def load_model(self, model_dir: Path, labels: Sequence[str]) -> Any:
        return self.auto_model().from_pretrained(model_dir)

    def speed_model(self, model_dir: Path) -> Any:
        """What the speed table times: the task model on (batch, length) token ids."""
        return self.auto_model().from_pretrained(model_dir)

    def collator(self, tokenizer: Any, return_tensors: str = "pt") -> Any:
        """Pads features into a batch: torch tensors ("pt") to train, numpy ("np") to serve."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer, return_tensors=return_tensors)

    def encoder_inputs(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The batch as the encoder sees it: one sequence per row (task distillation, stage 1)."""
        return {name: inputs[name] for name in MODEL_INPUTS if name in inputs}

    # --- features and predictions ----------------------------------------------------------

    def train_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        """Model inputs and gold targets of a training table (train split or augmented rows)."""
        raise NotImplementedError

    def eval_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        """Model inputs of a split to predict (`MODEL_INPUTS`, plus what decoding needs)."""
        raise NotImplementedError

    def decode(
        self, raw: Any, table: pa.Table, features: Mapping[str, Any], settings: Any
    ) -> dict[str, Any]:
        """Row id -> prediction, from the model's raw outputs on `eval_features`."""
        raise NotImplementedError

    def score(self, table: pa.Table, predicted: Mapping[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    def write_predictions(
        self,
        out: Path,
        task: str,
        labels: Sequence[str],
        split: str,
        predicted: Mapping[str, Any],
        *,
        submission: bool,
    ) -> Path:
        """CLUE's `{"id", "label"}` lines; `{task}_predict.json` is the file CLUE takes."""
        path = out / (f"{task}_predict.json" if submission else f"{split}_predictions.jsonl")
        with path.open("w", encoding="utf-8") as handle:
            for row_id, label in predicted.items():
                # CLUE's submission checker wants the integer ids of its test files.
                value: Any = int(row_id) if submission and row_id.isdigit() else row_id
                record = {"id": value, "label": self.label_name(labels, label)}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path

    def label_name(self, labels: Sequence[str], predicted: Any) -> Any:
        return predicted

    def served(
        self, table: pa.Table, labels: Sequence[str], predicted: Mapping[str, Any], raw: Any
    ) -> list[dict[str, Any]]:
        """What the serving entry point answers for each row, from `decode`'s predictions and
        the raw outputs they were decoded from."""
        raise NotImplementedError

    def baseline(self, labels: Sequence[str], train: pa.Table, dev: pa.Table) -> dict[str, Any]:
        """The trivial baseline of `dev`, fit on `train` (dev's own majority would be an oracle):
        `method`, `description`, `scores` in `metrics`, and the `class` it predicts where the
        kind predicts classes."""
        raise NotImplementedError

    # --- task distillation -----------------------------------------------------------------

    def teacher_rows(self, outputs: Any, lengths: Sequence[int]) -> list[Any]:
        """One cache row per batch row from the teacher's outputs (`lengths`: real tokens)."""
        raise NotImplementedError

    def logits_columns(self, rows: Sequence[Any]) -> dict[str, list]:
        raise NotImplementedError

    def teacher_columns(self, logits: pa.Table) -> dict[str, list]:
        """Dataset columns (named teacher_*) of the cached logits, one per training feature."""
        return {f"teacher_{name}": logits.column(name).to_pylist() for name in logits.column_names}

    def distillation_loss(
        self,
        outputs: Any,
        teacher: Mapping[str, Tensor],
        labels: Mapping[str, Tensor],
        attention_mask: Tensor,
        temperature: float,
        hard_weight: float,
    ) -> Tensor:
        """Stage 2's loss: soft cross-entropy against the teacher (+ hard_weight x gold loss)."""
        raise NotImplementedError


class LogitsPerRow(TaskKind):
    """A kind whose rows carry a gold `label` index and whose model gives one row of logits per
    row (classification over the labels, multiple choice over the options): accuracy, CLUE's
    `{"id", "label"}` lines, and stage 2 matches those logits."""

    logits_schema = pa.schema([("logits", pa.list_(pa.float32()))])
    metrics = ("accuracy",)
    primary_metric = "accuracy"
    one_feature_per_row = True
    dev_predictions_file = "dev_predictions.jsonl"
    output_names = ("logits",)
    predicts_classes = True
    unlabelled = {"label": -1}

    @staticmethod
    def gold_labels(table: pa.Table) -> list[int]:
        labels = table.column("label").to_pylist()
        if min(labels, default=0) < 0:
            raise ValueError("training rows include unlabelled ones (label -1)")
        return labels

    def score(self, table: pa.Table, predicted: Mapping[str, Any]) -> dict[str, float]:
        from wwmdistill.metrics import accuracy

        choices = [predicted[i] for i in row_ids(table)]
        return {"accuracy": accuracy(choices, table.column("label").to_pylist())}

    def teacher_rows(self, outputs: Any, lengths: Sequence[int]) -> list[Any]:
        return list(outputs.logits.float().cpu().numpy())

    def logits_columns(self, rows: Sequence[Any]) -> dict[str, list]:
        return {"logits": [r.tolist() for r in rows]}

    def distillation_loss(
        self,
        outputs: Any,
        teacher: Mapping[str, Tensor],
        labels: Mapping[str, Tensor],
        attention_mask: Tensor,
        temperature: float,
        hard_weight: float,
    ) -> Tensor:
        import torch.nn.functional as F

        from wwmdistill.distill.losses import soft_cross_entropy

        loss = soft_cross_entropy(outputs.logits, teacher["teacher_logits"], temperature)
        if hard_weight > 0:
            loss = loss + hard_weight * F.cross_entropy(outputs.logits, labels["labels"])
        return loss


def majority_label(train: pa.Table, dev: pa.Table) -> tuple[int, dict[str, float]]:
    """The most frequent `label` of train (the lowest on a tie) and its accuracy on dev."""
    from wwmdistill.metrics import accuracy

    train_labels, dev_labels = (t.column("label").to_pylist() for t in (train, dev))
    for split, labels in (("train", train_labels), ("dev", dev_labels)):
        if min(labels) < 0:
            raise ValueError(f"the {split} split has unlabelled rows")
    counts = Counter(train_labels)
    majority = min(counts, key=lambda label: (-counts[label], label))
    return majority, {"accuracy": accuracy([majority] * len(dev_labels), dev_labels)}


def argmax_predictions(ids: Sequence[str], logits: Any) -> dict[str, int]:
    logits = logits[0] if isinstance(logits, tuple) else logits
    return dict(zip(ids, np.asarray(logits).argmax(-1).tolist(), strict=True))


def probabilities(raw: Any) -> np.ndarray:
    """Softmax of each row of logits."""
    logits = np.asarray(raw[0] if isinstance(raw, tuple) else raw, dtype=np.float64)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def row_ids(table: pa.Table) -> list[str]:
    return [str(i) for i in table.column("id").to_pylist()]
