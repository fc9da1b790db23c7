"""Masked shards (and their teacher logits) as a streaming training set, batches and MLM eval.

Rows are read a record batch at a time and turned into numpy views of the batch's flat value
buffers, so a row costs a few slices, not a Python list per token; the collator pads and
scatters a whole batch with a handful of numpy operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import IterableDataset

from wwmdistill.artifacts.logit_cache import cache_columns, open_logits
from wwmdistill.artifacts.masked import MASKED_COLUMNS, masked_rows, open_masked
from wwmdistill.models import mlm_head
from wwmdistill.progress import tqdm


def _list_rows(column: pa.Array) -> list[np.ndarray]:
    """Every row of a list column as a numpy view of the column's flat values."""
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy(zero_copy_only=False)
    return np.split(values[offsets[0] : offsets[-1]], offsets[1:-1] - offsets[0])


def _aligned(a: Iterator[pa.RecordBatch], b: Iterator[pa.RecordBatch]):
    """Pairs of equally long slices of two row-aligned batch streams (batch sizes may differ)."""
    right = None
    for left in a:
        while left.num_rows:
            if right is None or not right.num_rows:
                right = next(b)
            n = min(left.num_rows, right.num_rows)
            yield left.slice(0, n), right.slice(0, n)
            left, right = left.slice(n), right.slice(n)


def _shard_examples(masked_path: str, logits_path: str | None) -> Iterator[dict[str, Any]]:
    masked = open_masked(masked_path, columns=("input_ids", "masked_positions", "masked_labels"))
    names = [c for c in MASKED_COLUMNS if c in masked.schema.names]
    if logits_path is None:
        pairs = ((batch, None) for batch in masked.iter_batches(names))
    else:
        logits = open_logits(Path(logits_path), Path(masked_path))
        extra = cache_columns(logits)
        pairs = _aligned(masked.iter_batches(names), logits.iter_batches(extra))
    for batch, extra_batch in pairs:
        columns: dict[str, list[Any]] = {}
        for name in names:
            column = batch.column(name)
            columns[name] = (
                _list_rows(column) if pa.types.is_list(column.type) else column.to_pylist()
            )
        if extra_batch is not None:
            for name in extra_batch.schema.names:
                columns[name] = _list_rows(extra_batch.column(name))
        for i in range(batch.num_rows):
            yield {name: values[i] for name, values in columns.items()}


def _examples(shards: list[tuple[str, str | None]]) -> Iterator[dict[str, Any]]:
    for masked_path, logits_path in shards:
        yield from _shard_examples(masked_path, logits_path)


def masked_dataset(
    masked_paths: Sequence[Path],
    logits_paths: Sequence[Path] | None = None,
    *,
    seed: int,
    shuffle_buffer: int = 10_000,
    repeat: bool = False,
) -> IterableDataset:
    """A shuffled streaming dataset over masked shards, one generator shard per file.

    Each file is a shard of the generator, so `split_dataset_by_node` and DataLoader workers
    take whole files when their count divides evenly. With logits, every logits shard is opened
    through `artifacts.logit_cache.open_logits`, which refuses one not made from its masked
    shard. List fields come as numpy arrays in their stored dtypes; `doc_id` and `dupe`
    (provenance) come along and the collator ignores them.

    `repeat=True` makes one endless pass (rows reshuffled through the buffer as they recur).
    Train with it under `Trainer(max_steps=...)`: the Trainer resumes a dataset without a
    length by fast-forwarding global_step batches of its first epoch, which is exact only when
    that epoch never ends.
    """
    if logits_paths is not None and len(logits_paths) != len(masked_paths):
        raise ValueError(
            f"{len(logits_paths)} logits shard(s) for {len(masked_paths)} masked shard(s); "
            "they must pair up one to one"
        )
    if not masked_paths:
        raise ValueError("masked_dataset: no masked shards given")
    shards = [
        (str(m), None if logits_paths is None else str(lg))
        for m, lg in zip(masked_paths, logits_paths or [None] * len(masked_paths), strict=True)
    ]
    dataset = IterableDataset.from_generator(_examples, gen_kwargs={"shards": shards})
    if repeat:
        dataset = dataset.repeat(None)
    return dataset.shuffle(seed=seed, buffer_size=shuffle_buffer)


class MaskedLMCollator:
    """Pad a list of masked-shard examples into model inputs, labels and teacher targets."""

    def __init__(
        self, pad_id: int, top_k: int | None = None, hidden_size: int | None = None
    ) -> None:
        self.pad_id = pad_id
        self.top_k = top_k
        self.hidden_size = hidden_size

    def _flat(self, examples: list[dict[str, Any]], key: str, dtype: Any) -> np.ndarray:
        try:
            return np.concatenate([np.asarray(e[key], dtype=dtype) for e in examples])
        except KeyError as err:
            raise KeyError(f"MaskedLMCollator: an example has no {key!r}") from err

    def _per_position(self, flat: np.ndarray, m: int, width: int, key: str) -> np.ndarray:
        if flat.size != m * width:
            raise ValueError(
                f"MaskedLMCollator: {key!r} holds {flat.size} values for {m} masked positions; "
                f"expected {width} per position"
            )
        return flat.reshape(m, width)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        b = len(examples)
        lengths = np.fromiter((len(e["input_ids"]) for e in examples), dtype=np.int64, count=b)
        width = int(lengths.max())
        ids = self._flat(examples, "input_ids", np.int64)
        row = np.repeat(np.arange(b), lengths)
        col = np.arange(ids.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        input_ids = np.full((b, width), self.pad_id, dtype=np.int64)
        input_ids[row, col] = ids
        attention_mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)

        n_masked = np.fromiter(
            (len(e["masked_positions"]) for e in examples), dtype=np.int64, count=b
        )
        positions = self._flat(examples, "masked_positions", np.int64)
        masked_labels = self._flat(examples, "masked_labels", np.int64)
        if masked_labels.size != positions.size:
            raise ValueError(
                "MaskedLMCollator: masked_positions and masked_labels differ in length"
            )
        masked_row = np.repeat(np.arange(b), n_masked)
        if positions.size and ((positions < 0).any() or (positions >= lengths[masked_row]).any()):
            raise ValueError("MaskedLMCollator: a masked position lies outside its row")
        labels = np.full((b, width), -100, dtype=np.int64)
        labels[masked_row, positions] = masked_labels
        m = positions.size
        out = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(labels),
            "mask_index": torch.from_numpy(np.stack([masked_row, positions], axis=1)),
        }
        if self.top_k is not None:
            k = self.top_k
            topk_ids = self._flat(examples, "topk_ids", np.int64)
            topk_logits = self._flat(examples, "topk_logits", np.float32)
            out["teacher_topk_ids"] = torch.from_numpy(
                self._per_position(topk_ids, m, k, "topk_ids")
            )
            out["teacher_topk_logits"] = torch.from_numpy(
                self._per_position(topk_logits, m, k, "topk_logits")
            )
            if "logsumexp" in examples[0]:
                lse = self._flat(examples, "logsumexp", np.float32)
                out["teacher_logsumexp"] = torch.from_numpy(
                    self._per_position(lse, m, 1, "logsumexp").reshape(m)
                )
        if self.hidden_size is not None:
            hidden = self._flat(examples, "hidden", np.float32)
            out["teacher_hidden"] = torch.from_numpy(
                self._per_position(hidden, m, self.hidden_size, "hidden")
            )
        return out


@torch.no_grad()
def mlm_eval(
    model: torch.nn.Module,
    masked_paths: Sequence[Path],
    collator: MaskedLMCollator,
    batch_size: int,
    max_rows: int = 4096,
) -> dict[str, float]:
    """Top-1 accuracy and perplexity (exp of mean cross-entropy) at the masked positions.

    The shards are read in order, unshuffled, up to `max_rows` rows (a held-out shard holds
    dupe_factor copies of every instance: a sample keeps evaluation minutes shorter than
    training); only masked positions count, and the head runs at those alone: vocabulary
    logits at every position made up a third of a small teacher's eval and two thirds of a
    narrow student's.
    """
    was_training = model.training
    model.eval()
    head = mlm_head(model)
    device = next(model.parameters()).device
    correct = tokens = 0
    nll = 0.0
    examples = islice(_examples([(str(p), None) for p in masked_paths]), max_rows)
    total = min(max_rows, masked_rows(masked_paths))
    try:
        with torch.inference_mode(), tqdm(total=total, desc="mlm eval", unit="row") as bar:
            while chunk := list(islice(examples, batch_size)):
                batch = collator(chunk)
                hidden = model.base_model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                ).last_hidden_state
                rows, cols = batch["mask_index"].to(device).unbind(1)
                picked = head(hidden[rows, cols]).float()
                target = batch["labels"].to(device)[rows, cols]
                nll += torch.nn.functional.cross_entropy(picked, target, reduction="sum").item()
                correct += int((picked.argmax(-1) == target).sum())
                tokens += int(target.numel())
                bar.update(len(chunk))
    finally:
        model.train(was_training)
    if not tokens:
        raise ValueError(f"mlm_eval: no masked positions in {[str(p) for p in masked_paths]}")
    return {
        "accuracy": correct / tokens,
        "perplexity": math.exp(nll / tokens),
        "tokens": tokens,
    }
