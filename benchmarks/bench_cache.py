"""Teacher logit cache: bytes on disk per top-k entry, and caching throughput on CPU.

    .venv/bin/python benchmarks/bench_cache.py --rows 64 --batches 4 --batch-size 2

Rows are 512-token windows of the CLUE corpus sample (tokenised with a WordPiece vocab trained
on it), 15% of positions masked at random, written as a masked shard. No trained teacher
exists offline, so the teacher is a random BERT with the BERT-base vocabulary size (21128).

1. Size: `cache_logits` at k=128 with a random BERT (hidden 768, vocab 21128, 2 layers: the
   size depends on the head's logit distribution, not on depth), bytes of the zstd Arrow file
   per top-k entry and per masked position, against full-vocab fp16 logits (V * 2 bytes).
2. Throughput: a random BERT-base (12 layers, hidden 768, vocab 21128) at length 512; the same
   batches through the cache's path (encoder, then the MLM head at the masked positions only)
   and through the plain path (`model(...).logits` at every position, then gather), alternated
   batch by batch in one process; the share of top-k ids on which the two agree is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from transformers import BertConfig, BertForMaskedLM

from wwmdistill.arrow_io import ArrowShardWriter, open_shard
from wwmdistill.artifacts.masked import MASKED_SCHEMA
from wwmdistill.teacher_logits import LogitsSettings, MaskedHeadTeacher, cache_logits
from wwmdistill.tokenizer import (
    TokenizerSettings,
    load_tokenizer,
    tokenizer_fingerprint,
    train_wordpiece,
)

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "shared/data/corpus/CLUECorpusSmall_bert_sampled.txt"
VOCAB = 21128
SEQ_LEN = 512
TOP_K = 128


def tokenizer_dir(work: Path) -> Path:
    """A WordPiece vocab trained on the corpus sample (as the pipeline's tokenizer stage does)."""
    corpus = work / "corpus.arrow"
    schema = pa.schema([("doc_id", pa.string()), ("text", pa.string())])
    texts = CORPUS.read_text(encoding="utf-8").split("\n\n")
    with ArrowShardWriter(corpus, schema, stage="corpus", fingerprint="bench") as w:
        w.write({"doc_id": [str(i) for i in range(len(texts))], "text": texts})
    train_wordpiece([corpus], work / "tokenizer", TokenizerSettings())
    return work / "tokenizer"


def masked_shard(tok_dir: Path, out: Path, rows: int, seed: int = 0) -> Path:
    """`rows` windows of SEQ_LEN tokens of the corpus, 15% of content positions masked."""
    tok = load_tokenizer(tok_dir)
    rng = np.random.default_rng(seed)
    ids: list[int] = []
    with CORPUS.open(encoding="utf-8") as f:
        for line in itertools.islice(f, 20000):
            ids.extend(tok(line.strip(), add_special_tokens=False)["input_ids"])
            if len(ids) >= rows * (SEQ_LEN - 2):
                break
    content = SEQ_LEN - 2
    n_mask = round(0.15 * content)
    table: dict[str, list] = {k: [] for k in MASKED_SCHEMA.names}
    for r in range(rows):
        window = ids[r * content : (r + 1) * content]
        if len(window) < content:
            raise SystemExit(f"{CORPUS}: not enough text for {rows} rows of {SEQ_LEN} tokens")
        row = [tok.cls_token_id, *window, tok.sep_token_id]
        positions = np.sort(rng.choice(np.arange(1, SEQ_LEN - 1), n_mask, replace=False))
        labels = [row[p] for p in positions]
        for p in positions:
            row[p] = tok.mask_token_id
        for key, value in zip(
            MASKED_SCHEMA.names, (row, positions.tolist(), labels, f"w{r}", 0), strict=True
        ):
            table[key].append(value)
    meta = {"tokenizer_fingerprint": tokenizer_fingerprint(tok_dir)}
    with ArrowShardWriter(out, MASKED_SCHEMA, stage="masked", fingerprint="bench", meta=meta) as w:
        w.write(table)
    return out


def random_teacher(out: Path, layers: int) -> tuple[Path, BertForMaskedLM]:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, num_hidden_layers=layers, max_position_embeddings=512)
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(str(out))
    return out, model


def cache_size(masked: Path, work: Path) -> dict:
    teacher, _ = random_teacher(work / "teacher_2l", layers=2)
    positions = sum(len(r) for r in open_shard(masked).read_all()["masked_positions"].to_pylist())
    result = {"masked_positions": positions, "top_k": TOP_K}
    for name, extra in (("topk_only", False), ("with_logsumexp_and_hidden", True)):
        out = work / f"{name}.arrow"
        settings = LogitsSettings(top_k=TOP_K, logsumexp=extra, hidden=extra, batch_size=16)
        cache_logits(masked, teacher, out, settings, device="cpu")
        size = out.stat().st_size
        result[name] = {"file_bytes": size, "bytes_per_position": round(size / positions, 1)}
    entries = positions * TOP_K
    result["topk_only"]["bytes_per_topk_entry"] = round(
        result["topk_only"]["file_bytes"] / entries, 3
    )
    # Where the bytes go: each column alone, zstd-compressed as the shard writer does.
    table = open_shard(work / "topk_only.arrow").read_all()
    for column in ("topk_ids", "topk_logits"):
        sink = pa.BufferOutputStream()
        single = table.select([column]).replace_schema_metadata(None)
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_file(sink, single.schema, options=options) as writer:
            writer.write_table(single)
        result["topk_only"][f"{column}_bytes_per_entry"] = round(sink.tell() / entries, 3)
    full_fp16 = positions * VOCAB * 2
    result["full_vocab_fp16_bytes_per_position"] = VOCAB * 2
    result["ratio_full_fp16_to_topk_only"] = round(full_fp16 / result["topk_only"]["file_bytes"], 1)
    return result


def _full_head(model: BertForMaskedLM, rows, positions, top_k: int) -> np.ndarray:
    """The plain path: logits at every position, then the masked ones' top-k."""
    ids = torch.tensor(np.stack(rows), dtype=torch.long)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        row_idx = torch.from_numpy(np.repeat(np.arange(len(rows)), [p.size for p in positions]))
        picked = logits[row_idx, torch.from_numpy(np.concatenate(positions).astype(np.int64))]
        torch.logsumexp(picked.float(), -1)
        return torch.topk(picked, top_k, dim=-1).indices.numpy()


def throughput(masked: Path, work: Path, batches: int, batch_size: int) -> dict:
    _, model = random_teacher(work / "teacher_base", layers=12)
    teacher = MaskedHeadTeacher(
        model, LogitsSettings(top_k=TOP_K, batch_size=batch_size), torch.device("cpu")
    )
    table = open_shard(masked).read_all().to_pylist()
    rows = [np.asarray(r["input_ids"]) for r in table]
    positions = [np.asarray(r["masked_positions"]) for r in table]
    times: dict[str, list[float]] = {"masked_only_head": [], "full_head": []}
    agree: list[float] = []
    # One warm-up batch each, then alternate so load from other processes hits both alike.
    for b in range(batches + 1):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        t0 = time.perf_counter()
        ours = teacher.run(rows[sl], positions[sl])["topk_ids"]
        t1 = time.perf_counter()
        plain = _full_head(model, rows[sl], positions[sl], TOP_K)
        t2 = time.perf_counter()
        if b:
            agree.append(float(np.mean(ours == plain)))
            times["masked_only_head"].append(t1 - t0)
            times["full_head"].append(t2 - t1)
    tokens = batch_size * SEQ_LEN
    result = {
        "config": "BERT-base random (12 layers, hidden 768, vocab 21128)",
        "seq_len": SEQ_LEN,
        "batch_size": batch_size,
        "batches": batches,
        "threads": torch.get_num_threads(),
    }
    for name, secs in times.items():
        result[name] = {
            "median_s_per_batch": round(statistics.median(secs), 3),
            "tokens_per_s": round(tokens / statistics.median(secs), 1),
        }
    result["topk_id_agreement"] = round(statistics.mean(agree), 5)
    result["speedup"] = round(
        result["masked_only_head"]["tokens_per_s"] / result["full_head"]["tokens_per_s"], 3
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows for the size measurement")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_cache-"))
    try:
        tok = tokenizer_dir(work)
        rows = max(args.rows, (args.batches + 1) * args.batch_size)
        masked = masked_shard(tok, work / "masked.arrow", rows)
        result = {
            "teacher": "random-init BertForMaskedLM (no trained teacher offline)",
            "size": cache_size(masked, work),
            "throughput": throughput(masked, work, args.batches, args.batch_size),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
