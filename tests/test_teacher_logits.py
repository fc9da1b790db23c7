"""The teacher's logit cache on real masked shards and a tiny random teacher.

Every cached value is checked against a plain full forward of the teacher, one row at a time
and without padding, so the length sorting, the head-at-masked-positions-only path and the
reordering back into row order are all tested against the obvious computation.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from wwmdistill.arrow_io import ArrowShardWriter, open_shard
from wwmdistill.artifacts.logit_cache import StaleCacheError, open_logits
from wwmdistill.artifacts.masked import MASKED_SCHEMA
from wwmdistill.models import ModelMismatchError, model_fingerprint
from wwmdistill.teacher_logits import LogitsSettings, cache_logits

TOP_K = 16
SETTINGS = LogitsSettings(top_k=TOP_K, batch_size=2)  # 32-row chunks: several per shard


@pytest.fixture(scope="module")
def cached(tiny_masked, tiny_teacher, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("logits") / "000.arrow"
    stats = cache_logits(tiny_masked.masked_paths[0], tiny_teacher, out, SETTINGS)
    return {"path": out, "stats": stats, "masked": tiny_masked.masked_paths[0]}


def _rows(path: Path, stage: str) -> list[dict]:
    return open_shard(path, stage=stage).read_all().to_pylist()


def test_cache_equals_a_full_forward_at_the_masked_positions(cached, tiny_teacher) -> None:
    model = BertForMaskedLM.from_pretrained(tiny_teacher).eval()
    masked, cache = _rows(cached["masked"], "masked"), _rows(cached["path"], "logits")
    assert len(masked) == len(cache) > 2 * SETTINGS.batch_size * 16  # several chunks
    hidden_size = model.config.hidden_size
    positions = 0
    for row, got in zip(masked, cache, strict=True):
        pos = row["masked_positions"]
        n = len(pos)
        assert n > 0
        positions += n
        with torch.no_grad():
            out = model(torch.tensor([row["input_ids"]]), output_hidden_states=True)
        logits = out.logits[0, pos]  # [n, V]
        ref_values, ref_ids = torch.topk(logits, TOP_K, dim=-1)
        ids = np.asarray(got["topk_ids"]).reshape(n, TOP_K)
        values = np.asarray(got["topk_logits"], dtype=np.float32).reshape(n, TOP_K)
        np.testing.assert_array_equal(ids, ref_ids.numpy())
        np.testing.assert_allclose(values, ref_values.numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(
            got["logsumexp"], torch.logsumexp(logits, -1).numpy(), rtol=1e-5, atol=1e-5
        )
        hidden = np.asarray(got["hidden"], dtype=np.float32).reshape(n, hidden_size)
        np.testing.assert_allclose(
            hidden, out.hidden_states[-1][0, pos].numpy(), rtol=1e-3, atol=1e-3
        )
    assert cached["stats"]["masked_positions"] == positions
    assert cached["stats"]["rows"] == len(masked)


def test_schema_and_metadata(cached, tiny_teacher) -> None:
    shard = open_logits(cached["path"], cached["masked"], model_fingerprint(tiny_teacher))
    assert shard.schema.field("topk_ids").type == pa.list_(pa.uint16())
    assert shard.schema.field("topk_logits").type == pa.list_(pa.float16())
    assert shard.schema.field("logsumexp").type == pa.list_(pa.float32())
    assert shard.schema.field("hidden").type == pa.list_(pa.float16())
    masked = open_shard(cached["masked"], stage="masked")
    meta = shard.meta
    assert meta["source_fingerprint"] == masked.fingerprint
    assert meta["teacher_fingerprint"] == model_fingerprint(tiny_teacher)
    config = BertConfig.from_pretrained(tiny_teacher)
    assert (meta["top_k"], meta["vocab_size"], meta["hidden_size"]) == (
        TOP_K,
        config.vocab_size,
        64,
    )
    assert meta["has_logsumexp"] and meta["has_hidden"]
    assert meta["rows"] == shard.num_rows == masked.num_rows


def test_optional_columns_can_be_left_out(tiny_masked, tiny_teacher, cached, tmp_path) -> None:
    out = tmp_path / "lean.arrow"
    settings = LogitsSettings(top_k=4, logsumexp=False, hidden=False, batch_size=32)
    cache_logits(tiny_masked.masked_paths[0], tiny_teacher, out, settings)
    lean = open_logits(out, tiny_masked.masked_paths[0])
    assert lean.schema.names == ["topk_ids", "topk_logits"]
    assert lean.meta["hidden_size"] is None and not lean.meta["has_hidden"]
    full = _rows(cached["path"], "logits")
    for small, big in zip(lean.read_all().to_pylist(), full, strict=True):
        # Another batch size pads rows differently; the top-4 are the top-16's first four.
        n = len(big["topk_ids"]) // TOP_K
        assert small["topk_ids"] == [
            i for p in range(n) for i in big["topk_ids"][p * TOP_K : p * TOP_K + 4]
        ]


def test_same_inputs_same_bytes(cached, tiny_teacher, tmp_path) -> None:
    again = tmp_path / "again.arrow"
    cache_logits(cached["masked"], tiny_teacher, again, SETTINGS)
    assert again.read_bytes() == cached["path"].read_bytes()


def test_stale_cache_is_refused(cached, tiny_masked, tiny_teacher) -> None:
    other = tiny_masked.masked_paths[1]
    this_fp = open_shard(cached["masked"]).fingerprint
    other_fp = open_shard(other).fingerprint
    with pytest.raises(StaleCacheError) as err:
        open_logits(cached["path"], other)
    assert str(cached["path"]) in str(err.value)
    assert this_fp in str(err.value) and other_fp in str(err.value)
    teacher_fp = model_fingerprint(tiny_teacher)
    with pytest.raises(StaleCacheError) as err:
        open_logits(cached["path"], cached["masked"], "0123456789abcdef")
    assert teacher_fp in str(err.value) and "0123456789abcdef" in str(err.value)


def test_settings_reject_bad_values() -> None:
    assert LogitsSettings.from_config({"top_k": 64, "precision": "bf16"}).top_k == 64
    with pytest.raises(ValueError, match="logits: unknown key"):
        LogitsSettings.from_config({"topk": 64})
    with pytest.raises(ValueError, match="logits.precision"):
        LogitsSettings.from_config({"precision": "int8"})
    with pytest.raises(ValueError, match="config logits.top_k: input should be greater"):
        LogitsSettings.from_config({"top_k": 0})


def _save_teacher(path: Path, vocab_size: int, with_tokenizer_from: Path | None = None) -> Path:
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertForMaskedLM(config).save_pretrained(str(path))
    if with_tokenizer_from is not None:
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
            if (with_tokenizer_from / name).is_file():
                shutil.copy2(with_tokenizer_from / name, path / name)
    return path


def test_teacher_that_cannot_read_the_shard_is_refused(
    cached, tiny_masked, tiny_teacher, tmp_path
) -> None:
    max_id = max(max(r["input_ids"]) for r in _rows(cached["masked"], "masked"))
    small = _save_teacher(tmp_path / "small", vocab_size=max_id)
    with pytest.raises(ModelMismatchError, match=f"token id {max_id}.*vocab_size {max_id}"):
        cache_logits(cached["masked"], small, tmp_path / "o.arrow", SETTINGS)
    # Right size, but its tokenizer files are not the ones the shard was tokenised with.
    vocab_size = BertConfig.from_pretrained(tiny_teacher).vocab_size
    teacher = _save_teacher(tmp_path / "other_vocab", vocab_size, tiny_masked.tokenizer_dir)
    cache_logits(cached["masked"], teacher, tmp_path / "ok.arrow", SETTINGS)
    with (teacher / "vocab.txt").open("a", encoding="utf-8") as f:
        f.write("extra\n")
    expected = open_shard(cached["masked"]).meta["tokenizer_fingerprint"]
    with pytest.raises(ModelMismatchError, match=f"fingerprint {expected}.*fingerprint [0-9a-f]+"):
        cache_logits(cached["masked"], teacher, tmp_path / "o.arrow", SETTINGS)
    assert not (tmp_path / "o.arrow").exists()


def _big_shard(masked: Path, out: Path, repeats: int) -> tuple[Path, int]:
    """The masked shard's rows `repeats` times, every 7th row with no masked position."""
    source = open_shard(masked, stage="masked")
    rows = source.read_all().to_pylist()
    big = [dict(r) for _ in range(repeats) for r in rows]
    for i in range(0, len(big), 7):
        big[i]["masked_positions"], big[i]["masked_labels"] = [], []
    with ArrowShardWriter(
        out, MASKED_SCHEMA, stage="masked", fingerprint="big", meta=source.meta
    ) as w:
        for start in range(0, len(big), 1000):
            w.write(pa.Table.from_pylist(big[start : start + 1000], schema=MASKED_SCHEMA))
    return out, len(rows)


def _run_script(masked: Path, teacher: Path, out: Path) -> str:
    return (
        "import torch; torch.set_num_threads(1)\n"
        "from wwmdistill.teacher_logits import LogitsSettings, cache_logits\n"
        f"cache_logits({str(masked)!r}, {str(teacher)!r}, {str(out)!r}, "
        f"LogitsSettings(top_k={TOP_K}, batch_size=8))\n"
    )


def test_killed_job_leaves_no_output_and_rerun_matches(cached, tiny_teacher, tmp_path) -> None:
    big, n = _big_shard(cached["masked"], tmp_path / "big.arrow", repeats=20)
    out = tmp_path / "out" / "big.arrow"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _run_script(big, tiny_teacher, out)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    tmp_file = out.with_name(f".tmp-{proc.pid}-{out.name}")
    deadline = time.monotonic() + 120
    # Wait until the first chunk is on disk (the file grows past its Arrow header), then kill.
    while time.monotonic() < deadline and proc.poll() is None:
        if tmp_file.exists() and tmp_file.stat().st_size > 4096:
            break
        time.sleep(0.05)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL, "the job finished before it could be killed"
    assert tmp_file.exists() and not out.exists()  # killed mid-write, nothing looks finished
    subprocess.run([sys.executable, "-c", _run_script(big, tiny_teacher, out)], env=env, check=True)
    reference = tmp_path / "uninterrupted.arrow"
    subprocess.run(
        [sys.executable, "-c", _run_script(big, tiny_teacher, reference)], env=env, check=True
    )
    assert out.read_bytes() == reference.read_bytes()
    # Rows are aligned: empty rows stay empty, the others are the small shard's cache.
    small = _rows(cached["path"], "logits")
    for i, row in enumerate(open_logits(out, big).read_all().to_pylist()[: 3 * n]):
        if i % 7 == 0:
            assert row["topk_ids"] == [] and row["logsumexp"] == [] and row["hidden"] == []
        else:
            assert row["topk_ids"] == small[i % n]["topk_ids"]
            np.testing.assert_allclose(
                row["logsumexp"], small[i % n]["logsumexp"], rtol=1e-5, atol=1e-5
            )
