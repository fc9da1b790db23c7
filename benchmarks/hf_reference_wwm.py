"""The Hugging Face reference path for Chinese whole-word masking, timed (transformers 4.x).

Runs in its own venv (benchmarks/.venv-hf4, see requirements-hf4.txt) because
DataCollatorForWholeWordMask's Chinese path is the transformers 4 one. Reads the same segmented
shard as bench_wwm.py (pyarrow only, no wwmdistill import) and reproduces, in our own code:

1. examples/research_projects/mlm_wwm/run_chinese_ref.py: per line, the segmenter's words that
   are longer than one character and entirely CJK form a word set; the line's BERT tokens
   (slow BertTokenizer, with [CLS]/[SEP]) are matched greedily, longest word first, against it,
   and every non-initial character of a matched word becomes a "ref id";
2. run_mlm_wwm.py --line_by_line: each document is a line, tokenised with the fast tokenizer and
   truncated to max_seq_len, with its ref ids attached;
3. DataCollatorForWholeWordMask over batches, once per dupe (the dynamic equivalent of
   dupe_factor static copies).

Prints one JSON object: instances, tokens, masked tokens, seconds per phase, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import time

import pyarrow.ipc as ipc
import torch
from transformers import AutoTokenizer, BertTokenizer, DataCollatorForWholeWordMask


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _all_cjk(word: str) -> bool:
    return all(_is_cjk(ord(c)) for c in word)


def chinese_word_set(words: list[str]) -> set[str]:
    return {w for w in words if len(w) > 1 and _all_cjk(w)}


def ref_ids(tokens: list[str], word_set: set[str]) -> list[int]:
    """Greedy longest-first matching of tokens against the word set, as run_chinese_ref does."""
    if not word_set:
        return []
    longest = max(len(w) for w in word_set)
    marked = list(tokens)
    start, end = 0, len(marked)
    while start < end:
        step = 1
        if _all_cjk(marked[start]):
            for size in range(min(end - start, longest), 1, -1):
                if "".join(marked[start : start + size]) in word_set:
                    for j in range(start + 1, start + size):
                        marked[j] = "##" + marked[j]
                    step = size
                    break
        start += step
    return [
        i for i, t in enumerate(marked) if t.startswith("##") and len(t) == 3 and _is_cjk(ord(t[2]))
    ]


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmented", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--dupe-factor", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    reader = ipc.open_file(args.segmented)
    table = reader.read_all().select(["text", "word_ends"])
    texts = table.column("text").to_pylist()
    ends = table.column("word_ends").to_pylist()
    lines = [
        [t[a:b].strip() for a, b in zip([0, *e[:-1]], e, strict=True)]
        for t, e in zip(texts, ends, strict=True)
    ]

    torch.manual_seed(args.seed)
    slow = BertTokenizer.from_pretrained(args.tokenizer)
    fast = AutoTokenizer.from_pretrained(args.tokenizer)
    t0 = time.perf_counter()
    refs = []
    for i in range(0, len(texts), 100):  # run_chinese_ref.py works in chunks of 100 lines
        chunk = texts[i : i + 100]
        encoded = slow(chunk, add_special_tokens=True, truncation=True, max_length=512)
        for ids, words in zip(encoded["input_ids"], lines[i : i + 100], strict=True):
            tokens = [slow._convert_id_to_token(x) for x in ids]
            refs.append(ref_ids(tokens, chinese_word_set(words)))
    t1 = time.perf_counter()
    encoded = fast(texts, truncation=True, max_length=args.max_seq_len)
    examples = [
        {"input_ids": ids, "chinese_ref": ref}
        for ids, ref in zip(encoded["input_ids"], refs, strict=True)
        if len(ids) > 2
    ]
    t2 = time.perf_counter()
    collator = DataCollatorForWholeWordMask(fast, mlm_probability=0.15)
    masked = tokens = 0
    for _ in range(args.dupe_factor):
        for i in range(0, len(examples), args.batch_size):
            batch = collator(examples[i : i + args.batch_size])
            masked += int((batch["labels"] != -100).sum())
            tokens += sum(len(e["input_ids"]) for e in examples[i : i + args.batch_size])
    t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "side": "hf-reference",
                "transformers": __import__("transformers").__version__,
                "documents": len(texts),
                "instances": len(examples) * args.dupe_factor,
                "tokens": tokens,
                "masked_tokens": masked,
                "masked_fraction": masked / max(tokens, 1),
                "seconds_ref_ids": t1 - t0,
                "seconds_tokenize": t2 - t1,
                "seconds_collate": t3 - t2,
                "seconds": t3 - t0,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
