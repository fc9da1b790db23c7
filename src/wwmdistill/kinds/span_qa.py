"""Span-extraction QA (CMRC 2018, DRCD): sliding windows, n-best span decoding, EM/F1.

Rows: `id`, `question`, `context`, `answers`, `answer_starts`. A row becomes one or more windows
(`wwmdistill.qa`), so features are not rows; predictions are one `{id: answer}` JSON object, as
CMRC 2018's and DRCD's scripts read them. Task distillation matches the start and end logits of
every window.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from torch import Tensor

from wwmdistill.kinds.base import TaskKind, row_ids
from wwmdistill.metrics import cmrc2018_scores


def _examples(table: pa.Table) -> dict[str, list]:
    return {name: table.column(name).to_pylist() for name in table.column_names}


class SpanQA(TaskKind):
    name = "qa"
    row_schema = pa.schema(
        [
            ("id", pa.string()),
            ("question", pa.string()),
            ("context", pa.string()),
            ("answers", pa.list_(pa.string())),
            ("answer_starts", pa.list_(pa.int32())),
        ]
    )
    logits_schema = pa.schema(
        [
            ("start_logits", pa.list_(pa.float32())),
            ("end_logits", pa.list_(pa.float32())),
        ]
    )
    metrics = ("em", "f1", "average")
    primary_metric = "f1"
    # The context holds the answers at fixed offsets; only the question is rewritten.
    augmented_columns = ("question",)
    one_feature_per_row = False
    carved_by = "paragraph"
    dev_predictions_file = "dev_predictions.json"
    output_names = ("start_logits", "end_logits")
    predicts_classes = False
    input_fields = ("question", "context")
    unlabelled = {"answers": [], "answer_starts": []}

    def columns(self, examples: Sequence[Any]) -> dict[str, list[Any]]:
        columns = super().columns(examples)
        for name in ("answers", "answer_starts"):
            columns[name] = [list(value) for value in columns[name]]
        return columns

    def texts(self, examples: Sequence[Any]) -> list[str]:
        contexts = dict.fromkeys(e.context for e in examples)
        return [e.question for e in examples] + list(contexts)

    def carve_key(self, example: Any) -> tuple[Any, Any]:
        return 0, example.context

    def auto_model(self) -> Any:
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering

    def train_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        from wwmdistill.qa import train_features

        return train_features(
            _examples(table),
            tokenizer,
            settings.max_seq_len,
            settings.doc_stride,
            settings.max_query_len,
        )

    def eval_features(self, table: pa.Table, tokenizer: Any, settings: Any) -> dict[str, list]:
        from wwmdistill.qa import eval_features

        return eval_features(
            _examples(table),
            tokenizer,
            settings.max_seq_len,
            settings.doc_stride,
            settings.max_query_len,
        )

    def decode(
        self, raw: Any, table: pa.Table, features: Mapping[str, Any], settings: Any
    ) -> dict[str, Any]:
        from wwmdistill.qa import decode_answers

        start, end = raw
        return decode_answers(
            _examples(table),
            features,
            np.asarray(start),
            np.asarray(end),
            n_best=settings.n_best,
            max_answer_len=settings.max_answer_len,
        )

    def score(self, table: pa.Table, predicted: Mapping[str, Any]) -> dict[str, float]:
        gold = dict(zip(row_ids(table), table.column("answers").to_pylist(), strict=True))
        scores = cmrc2018_scores(gold, predicted)
        return {key: scores[key] for key in self.metrics}

    def baseline(self, labels: Sequence[str], train: pa.Table, dev: pa.Table) -> dict[str, Any]:
        """The first k characters of every dev context, k the median length (the lower one of
        an even count) of train's first answers, scored with the official metric."""
        k = statistics.median_low(len(a[0]) for a in train.column("answers").to_pylist())
        contexts = dev.column("context").to_pylist()
        predicted = {i: c[:k] for i, c in zip(row_ids(dev), contexts, strict=True)}
        return {
            "method": "first_k_characters",
            "description": f"the first k = {k} characters of every dev context, k the median "
            "length of train's (first) answers, scored with the official CMRC 2018 metric",
            "k": k,
            "scores": self.score(dev, predicted),
        }

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
        path = out / ("test_predictions.json" if submission else f"{split}_predictions.json")
        path.write_text(json.dumps(predicted, ensure_ascii=False, indent=1) + "\n", "utf-8")
        return path

    def served(
        self, table: pa.Table, labels: Sequence[str], predicted: Mapping[str, Any], raw: Any
    ) -> list[dict[str, Any]]:
        """The answer text ("" when no span qualifies); n-best decoding runs in `decode`."""
        return [{"id": i, "answer": predicted[i]} for i in row_ids(table)]

    def teacher_rows(self, outputs: Any, lengths: Sequence[int]) -> list[Any]:
        return [
            (
                outputs.start_logits[j, :n].float().cpu().numpy(),
                outputs.end_logits[j, :n].float().cpu().numpy(),
            )
            for j, n in enumerate(lengths)
        ]

    def logits_columns(self, rows: Sequence[Any]) -> dict[str, list]:
        return {
            "start_logits": [r[0].tolist() for r in rows],
            "end_logits": [r[1].tolist() for r in rows],
        }

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

        from wwmdistill.distill.losses import PAD_LOGIT, soft_cross_entropy

        padding = attention_mask == 0
        loss = 0.0
        for side in ("start", "end"):
            logits = getattr(outputs, f"{side}_logits").masked_fill(padding, PAD_LOGIT)
            soft = soft_cross_entropy(logits, teacher[f"teacher_{side}_logits"], temperature)
            loss = loss + soft / 2
            if hard_weight > 0:
                hard = F.cross_entropy(logits.float(), labels[f"{side}_positions"])
                loss = loss + hard_weight * hard / 2
        return loss
