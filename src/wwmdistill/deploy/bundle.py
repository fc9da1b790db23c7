"""The deploy stage: a fine-tuned model as a directory that serves without torch.

`results/deploy/{task}/{model}/` holds `model.onnx` (fp32), `model.int8.onnx` (dynamic int8),
the model's tokenizer files, `labels.json` (the task's labels, index -> name by position) and
`deploy.json`: the kind, the feature settings serving needs, what was exported and how, the
onnxruntime threads, file sizes, and the agreement of both exports with PyTorch on a split.
Written atomically, and refused when the fp32 export predicts differently from PyTorch on more
than 1 - `min_agreement` of the split's rows while its logits differ by more than
`logit_tolerance`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wwmdistill.arrow_io import atomic_dir, write_json
from wwmdistill.deploy.agreement import agreement
from wwmdistill.deploy.export import export_onnx, quantize_int8
from wwmdistill.deploy.runtime import DEPLOY_FILE, FP32_FILE, INT8_FILE, LABELS_FILE, session
from wwmdistill.models import model_fingerprint, require_model_dir
from wwmdistill.settings import FinetuneSettings
from wwmdistill.tokenizer import copy_tokenizer_files, load_tokenizer

if TYPE_CHECKING:
    from wwmdistill.finetune import TaskData

log = logging.getLogger(__name__)

# The bar: fp32 ONNX predicts what PyTorch predicts on at least 99.9% of the rows.
MIN_AGREEMENT = 0.999
# Logits this close are float noise: rows they decide differently are PyTorch's own near-ties
# (an untrained model's equal choice logits flipped by 6e-9), not an export that computes
# something else.
LOGIT_TOLERANCE = 1e-4


class UnfaithfulExportError(RuntimeError):
    """The fp32 export predicts differently from the PyTorch model too often."""


def check_faithful(
    fp32: dict[str, Any], where: str, min_agreement: float, logit_tolerance: float
) -> None:
    """Raise UnfaithfulExportError when the fp32 export's figures (`agreement`,
    `max_abs_logit_diff`) show it predicting something other than PyTorch."""
    if fp32["agreement"] < min_agreement and fp32["max_abs_logit_diff"] > logit_tolerance:
        raise UnfaithfulExportError(
            f"{where}: ONNX fp32 agrees with PyTorch on {fp32['agreement']:.4%} of the rows,"
            f" below {min_agreement:.1%}, and its logits differ by up to"
            f" {fp32['max_abs_logit_diff']:.3g}, above {logit_tolerance:g}"
        )


def _size_mb(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 3)


def deploy_model(
    model_dir: Path,
    task: TaskData,
    out_dir: Path,
    settings: FinetuneSettings,
    *,
    split: str = "dev",
    threads: int = 1,
    batch_size: int = 32,
    min_agreement: float = MIN_AGREEMENT,
    logit_tolerance: float = LOGIT_TOLERANCE,
) -> dict[str, Any]:
    """Export `model_dir` (fine-tuned on `task`) into `out_dir`; check both exports against
    PyTorch on `split` with `settings`' features. Returns what deploy.json holds."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    require_model_dir(model_dir, need_tokenizer=True)
    if split not in task.splits:
        raise ValueError(f"task {task.name}: no {split} split to check the exports on")
    kind = task.kind
    # fp32 whatever the checkpoint's dtype: the fp32 export is the reference int8 is built from.
    model = kind.load_model(model_dir, task.labels).float()
    tokenizer = load_tokenizer(model_dir)
    with atomic_dir(out_dir) as tmp:
        exported = export_onnx(model, kind, tmp / FP32_FILE)
        quantized = quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE)
        sessions = {
            "fp32": session(tmp / FP32_FILE, threads),
            "int8": session(tmp / INT8_FILE, threads),
        }
        figures = agreement(
            model,
            sessions,
            kind,
            tokenizer,
            task.splits[split],
            settings,
            labelled=task.labelled.get(split, True),
            batch_size=batch_size,
        )
        check_faithful(
            figures["fp32"], f"{model_dir} on {task.name}'s {split}", min_agreement, logit_tolerance
        )
        copy_tokenizer_files(model_dir, tmp)
        (tmp / LABELS_FILE).write_text(
            json.dumps(list(task.labels), ensure_ascii=False, indent=1) + "\n", "utf-8"
        )
        record = {
            "task": task.name,
            "kind": kind.name,
            "model_dir": str(model_dir),
            "model_fingerprint": model_fingerprint(model_dir),
            "settings": settings.as_dict(),
            "batch_size": batch_size,
            "threads": {"intra_op_num_threads": threads, "inter_op_num_threads": 1},
            "export": exported,
            "quantization": quantized,
            "size_mb": {"fp32": _size_mb(tmp / FP32_FILE), "int8": _size_mb(tmp / INT8_FILE)},
            "split": split,
            "agreement": figures,
        }
        write_json(tmp / DEPLOY_FILE, record)
    log.info(
        "%s on %s: fp32 agreement %.4f (max logit diff %.3g), int8 agreement %.4f",
        model_dir,
        task.name,
        figures["fp32"]["agreement"],
        figures["fp32"]["max_abs_logit_diff"],
        figures["int8"]["agreement"],
    )
    return record
