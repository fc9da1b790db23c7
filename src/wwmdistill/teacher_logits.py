"""Making the teacher's logit cache: top-k logits at the masked positions of every masked shard row.

The encoder runs once per row; the MLM head runs only at the masked positions (about 15% of the
tokens), which is all distillation reads. Per position the cache keeps the top-k logits (fp16)
and their ids (uint16 when the vocab fits), optionally the full-vocab logsumexp (the exact tail
mass at T=1) and the encoder's final hidden state there. Rows are computed in length-sorted
batches (little padding) and written in the masked shard's row order, checked on opening. The
file format is `wwmdistill.artifacts.logit_cache`'s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from transformers import PretrainedConfig

from wwmdistill.arrow_io import ArrowShard, ArtifactError, fingerprint, rebatch
from wwmdistill.artifacts.logit_cache import logit_cache_writer, logits_schema
from wwmdistill.artifacts.masked import open_masked, tokenizer_fingerprint_of
from wwmdistill.models import ModelMismatchError, load_masked_lm, mlm_head, model_fingerprint
from wwmdistill.progress import tqdm
from wwmdistill.settings import LogitsSettings
from wwmdistill.tokenizer import TOKENIZER_FILES, tokenizer_fingerprint

log = logging.getLogger(__name__)


# Rows per written record batch, in model batches: enough to sort by length usefully, small
# enough that a chunk's outputs (hidden states above all) stay a few hundred MB at most.
CHUNK_BATCHES = 16
_MASKED_COLUMNS = ("input_ids", "masked_positions")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The encoder's autocast dtype; None runs it in float32."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def check_teacher_fits(masked: ArrowShard, teacher_dir: Path, config: PretrainedConfig) -> None:
    """The teacher must read the masked shard's ids: same tokenizer, big enough vocab and length.

    Also checks every masked position lies inside its row, so a bad shard fails before any
    compute rather than in the middle of the shard.
    """
    max_id, max_len = -1, 0
    for b, batch in enumerate(masked.iter_batches(list(_MASKED_COLUMNS))):
        ids, pos = batch.column("input_ids"), batch.column("masked_positions")
        if ids.null_count or pos.null_count:
            raise ArtifactError(f"{masked.path}: record batch {b}: null input_ids/masked_positions")
        lengths = pc.list_value_length(ids).to_numpy(zero_copy_only=False)
        if lengths.size:
            max_len = max(max_len, int(lengths.max()))
        flat_ids = pc.list_flatten(ids)
        if len(flat_ids):
            max_id = max(max_id, pc.max(flat_ids).as_py())
            if pc.min(flat_ids).as_py() < 0:
                raise ArtifactError(f"{masked.path}: record batch {b}: negative token id")
        flat_pos = pc.list_flatten(pos).to_numpy(zero_copy_only=False)
        row_of = pc.list_parent_indices(pos).to_numpy(zero_copy_only=False)
        if flat_pos.size and ((flat_pos < 0) | (flat_pos >= lengths[row_of])).any():
            raise ArtifactError(f"{masked.path}: record batch {b}: masked position outside its row")
    if max_id >= config.vocab_size:
        raise ModelMismatchError(
            f"{masked.path} holds token id {max_id} but the teacher {teacher_dir} has "
            f"vocab_size {config.vocab_size}; the teacher must use the masked shards' tokenizer"
        )
    limit = getattr(config, "max_position_embeddings", None)
    if config.model_type == "bert" and limit is not None and max_len > limit:
        raise ModelMismatchError(
            f"{masked.path} has rows of {max_len} tokens but the teacher {teacher_dir} takes "
            f"at most {limit} (max_position_embeddings)"
        )
    expected = tokenizer_fingerprint_of(masked)
    has_tokenizer = any((teacher_dir / name).is_file() for name in TOKENIZER_FILES[:-1])
    found = tokenizer_fingerprint(teacher_dir) if has_tokenizer else None
    if expected is not None and found is not None and expected != found:
        raise ModelMismatchError(
            f"{masked.path} was tokenised with tokenizer fingerprint {expected} but the tokenizer "
            f"files in the teacher {teacher_dir} have fingerprint {found}"
        )


def _list_array(counts: np.ndarray, values: np.ndarray, width: int, value_type) -> pa.Array:
    """Rows of `counts[i] * width` values each, `values` being [sum(counts), width]."""
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts * width, out=offsets[1:])
    flat = pa.array(values.reshape(-1), type=value_type)
    return pa.LargeListArray.from_arrays(offsets, flat).cast(pa.list_(value_type))


class MaskedHeadTeacher:
    """The teacher split into encoder and head, run on padded length-sorted batches."""

    def __init__(self, model: torch.nn.Module, settings: LogitsSettings, device: torch.device):
        self.model = model.to(device).eval()
        self.base = model.base_model
        self.head = mlm_head(model)
        self.settings = settings
        self.device = device
        self.amp = autocast_dtype(settings.precision, device)
        self.pad_id = model.config.pad_token_id or 0

    @torch.inference_mode()
    def run(self, rows: list[np.ndarray], positions: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Top-k ids/logits (and logsumexp, hidden) at every masked position, in input order."""
        length = max(r.size for r in rows)
        ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : r.size] = r
            mask[i, : r.size] = 1
        row_idx = np.repeat(np.arange(len(rows)), [p.size for p in positions])
        pos_idx = np.concatenate(positions).astype(np.int64)
        dev = self.device
        amp = torch.autocast(dev.type, dtype=self.amp) if self.amp else contextlib.nullcontext()
        with amp:
            states = self.base(
                input_ids=torch.from_numpy(ids).to(dev),
                attention_mask=torch.from_numpy(mask).to(dev),
            ).last_hidden_state
        hidden = states[torch.from_numpy(row_idx).to(dev), torch.from_numpy(pos_idx).to(dev)]
        # The head runs in float32 even when the encoder ran in bf16: it costs about 1% of the
        # encoder at masked positions only, and the fp16 cache then keeps fp16 resolution.
        with torch.autocast(dev.type, enabled=False):
            logits = self.head(hidden.float()).float()
        values, top_ids = torch.topk(logits, self.settings.top_k, dim=-1)
        out = {"topk_ids": top_ids.cpu().numpy(), "topk_logits": values.half().cpu().numpy()}
        if self.settings.logsumexp:
            out["logsumexp"] = torch.logsumexp(logits, dim=-1).cpu().numpy()
        if self.settings.hidden:
            out["hidden"] = hidden.half().cpu().numpy()
        return out


def _cache_chunk(
    teacher: MaskedHeadTeacher, chunk: pa.RecordBatch, schema: pa.Schema
) -> tuple[pa.RecordBatch, int, int]:
    """One chunk's output record batch (row order kept), tokens encoded and masked positions."""
    ids_col, pos_col = chunk.column("input_ids"), chunk.column("masked_positions")
    id_offsets = ids_col.offsets.to_numpy().astype(np.int64)
    flat_ids = ids_col.values.to_numpy(zero_copy_only=False)
    pos_offsets = pos_col.offsets.to_numpy().astype(np.int64)
    flat_pos = pos_col.values.to_numpy(zero_copy_only=False)
    lengths, counts = np.diff(id_offsets), np.diff(pos_offsets)
    # Rows without a masked position need no forward pass; the rest go longest first.
    todo = np.flatnonzero(counts > 0)
    order = todo[np.argsort(-lengths[todo], kind="stable")]
    parts: dict[str, list[np.ndarray]] = {}
    size = teacher.settings.batch_size
    for start in range(0, order.size, size):
        batch_rows = order[start : start + size]
        result = teacher.run(
            [flat_ids[id_offsets[r] : id_offsets[r + 1]] for r in batch_rows],
            [flat_pos[pos_offsets[r] : pos_offsets[r + 1]] for r in batch_rows],
        )
        for key, value in result.items():
            parts.setdefault(key, []).append(value)
    # Positions come out grouped by row in `order`; gather them back into row order.
    sorted_start = np.zeros(chunk.num_rows, dtype=np.int64)
    sorted_start[order] = np.cumsum(counts[order]) - counts[order]
    row_start = pos_offsets[:-1] - pos_offsets[0]
    gather = np.repeat(sorted_start - row_start, counts) + np.arange(counts.sum())
    columns = []
    for field in schema:
        value_type = field.type.value_type
        if parts:
            values = np.concatenate(parts[field.name])[gather]
            width = values.shape[1] if values.ndim == 2 else 1
        else:
            values, width = np.zeros(0), 1
        values = values.astype(value_type.to_pandas_dtype())
        columns.append(_list_array(counts, values, width, value_type))
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    return batch, int(lengths[todo].sum()), int(counts.sum())


def cache_logits(
    masked_shard: Path,
    teacher_dir: Path,
    out_path: Path,
    settings: LogitsSettings,
    *,
    device: str | None = None,
) -> dict[str, Any]:
    """Write the logits shard of one masked shard; return its statistics.

    `device` defaults to the GPU when there is one. Deterministic on a given device and
    precision: the same masked shard and teacher give the same bytes.
    """
    masked_shard, teacher_dir, out_path = Path(masked_shard), Path(teacher_dir), Path(out_path)
    masked = open_masked(masked_shard, columns=_MASKED_COLUMNS)
    model = load_masked_lm(teacher_dir)
    config = model.config
    check_teacher_fits(masked, teacher_dir, config)
    if settings.top_k > config.vocab_size:
        raise ValueError(
            f"logits.top_k: {settings.top_k} exceeds the teacher's vocab_size {config.vocab_size}"
        )
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    teacher = MaskedHeadTeacher(model, settings, dev)
    teacher_fp = model_fingerprint(teacher_dir)
    schema = logits_schema(config.vocab_size, logsumexp=settings.logsumexp, hidden=settings.hidden)
    settings_dict = settings.as_dict()
    fp = fingerprint(settings_dict, masked.fingerprint, teacher_fp)
    stats = {"rows": 0, "tokens": 0, "masked_positions": 0}
    started = time.perf_counter()
    with (
        logit_cache_writer(
            out_path,
            schema,
            fingerprint=fp,
            source_fingerprint=masked.fingerprint,
            teacher_fingerprint=teacher_fp,
            top_k=settings.top_k,
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size if settings.hidden else None,
            rows=masked.num_rows,
            settings=settings_dict,
        ) as writer,
        tqdm(total=masked.num_rows, desc="teacher logits", unit="row") as bar,
    ):
        for chunk in rebatch(
            masked.iter_batches(list(_MASKED_COLUMNS)), settings.batch_size * CHUNK_BATCHES
        ):
            batch, tokens, positions = _cache_chunk(teacher, chunk, schema)
            writer.write(batch)
            stats["rows"] += chunk.num_rows
            stats["tokens"] += tokens
            stats["masked_positions"] += positions
            bar.update(chunk.num_rows)
    seconds = time.perf_counter() - started
    stats.update(
        seconds=round(seconds, 3),
        tokens_per_s=round(stats["tokens"] / max(seconds, 1e-9), 1),
        device=str(dev),
        fingerprint=fp,
        teacher_fingerprint=teacher_fp,
    )
    log.info("cached teacher logits of %s into %s: %s", masked_shard, out_path, stats)
    return stats
