"""What every Trainer stage shares: settings, precision flags and resumable checkpoints."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from wwmdistill.arrow_io import fingerprint, open_shard, write_json

# Re-exported: the stages import their shared settings from here.
from wwmdistill.settings import PRECISIONS, ModelSize, TrainingSettings  # noqa: F401

log = logging.getLogger(__name__)

RUN_FILE = "run.json"


class NoRowsError(ValueError):
    """A stage was asked to train or evaluate on shards that hold no rows."""


def require_rows(paths: Sequence[Path], stage: str, purpose: str, remedy: str) -> None:
    """Stop unless the `stage` shards `paths` hold at least one row between them.

    The Trainer takes zero steps on an empty dataset and reports success; a model "trained" on
    nothing must not come out looking like a result.
    """
    if sum(open_shard(path, stage=stage).num_rows for path in paths) == 0:
        shards = ", ".join(str(path) for path in paths) or "no shard"
        raise NoRowsError(f"{purpose}: no rows in {shards}; {remedy}")


# Too few documents for the shards is the usual cause of an empty masked shard.
FEWER_SHARDS = "lower corpus.shards or give the corpus more documents"


def training_arguments(
    training: TrainingSettings, checkpoint_dir: Path, seed: int, **overrides: Any
) -> Any:
    """The TrainingArguments of a stage: checkpoints every save_steps (two kept), logs, seeds."""
    from transformers import TrainingArguments
    from transformers.integrations import is_tensorboard_available

    max_steps = overrides.pop("max_steps", training.max_steps)
    arguments = {
        "output_dir": str(checkpoint_dir),
        "max_steps": max_steps,
        "per_device_train_batch_size": training.batch_size,
        "gradient_accumulation_steps": training.gradient_accumulation_steps,
        "learning_rate": training.learning_rate,
        "warmup_steps": round(training.warmup_ratio * max_steps),
        "weight_decay": training.weight_decay,
        "save_strategy": "steps",
        "save_steps": training.save_steps,
        "save_total_limit": 2,
        "logging_steps": training.logging_steps,
        "report_to": ["tensorboard"] if is_tensorboard_available() else "none",
        # The collators emit exactly what the models take; nothing to drop.
        "remove_unused_columns": False,
        "dataloader_pin_memory": torch.cuda.is_available(),
        # Under DDP each process reads its own slice of a streamed (masked shard) dataset, whole
        # shards when they divide evenly: dispatching from rank 0 concatenates batches, which
        # padded rows and mask_index do not survive.
        "accelerator_config": {"dispatch_batches": False},
        "seed": seed,
        "data_seed": seed,
        **mixed_precision(training.precision),
    }
    arguments |= _cpu_processes()
    return TrainingArguments(**(arguments | overrides))


def _cpu_processes() -> dict[str, Any]:
    """Under torchrun without a GPU, DDP over gloo on the CPU.

    accelerate sets up multi-CPU DDP only when told to use the CPU; otherwise every process
    would train alone.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        return {"use_cpu": True, "ddp_backend": "gloo"}
    return {}


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (without them bf16 autocast is emulated, slow)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def mixed_precision(precision: str) -> dict[str, bool]:
    """TrainingArguments flags for `precision`: fp16 only ever on a GPU; bf16 on a CPU only when
    asked for by name ("auto" stays fp32 there) and the CPU has bf16 instructions, which the
    Trainer takes with use_cpu."""
    if not torch.cuda.is_available():
        if precision == "bf16":
            if cpu_has_bf16():
                return {"bf16": True, "fp16": False, "use_cpu": True}
            # Emulated, a fine-tuning step took 21x an fp32 one (benchmarks/RESULTS.md).
            log.warning("precision bf16 asked for, but this CPU has no bf16 instructions: fp32")
        if precision == "fp16":
            log.warning("precision fp16 asked for, but there is no GPU: training in fp32")
        return {"bf16": False, "fp16": False}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


# How often the state is written: the only setting a run may change and still resume, since
# resumption is exact and the weights, losses and logs come out the same.
_CHECKPOINT_ONLY = "save_steps"


def run_fingerprint(settings: dict[str, Any], *inputs: Any) -> str:
    """What a checkpoint may be resumed by: every setting but save_steps, the inputs, the ranks.

    max_steps, the schedule, the batch, the data and the losses all change what a run computes:
    resuming another run's checkpoint under them would load weights trained further than asked,
    or continue under a learning-rate schedule built for another length.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return fingerprint(_without_key(settings, _CHECKPOINT_ONLY), *inputs, world_size)


def _without_key(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _without_key(v, key) for k, v in value.items() if k != key}
    return value


def finished_state(resume: str | None, max_steps: int) -> Any:
    """The TrainerState of checkpoint `resume` when it already reached max_steps, else None.

    A job killed after its last checkpoint (in a final evaluation, say) must load that checkpoint
    rather than resume it: the Trainer would start another pass and take a step past max_steps.
    """
    from transformers import TrainerState
    from transformers.trainer import TRAINER_STATE_NAME

    if not resume:
        return None
    state = TrainerState.load_from_json(str(Path(resume) / TRAINER_STATE_NAME))
    if state.global_step < max_steps:
        return None
    log.info("%s already reached max_steps %d: loading it", resume, max_steps)
    return state


def resume_checkpoint(checkpoint_dir: Path, run_fingerprint: str, args: Any) -> str | None:
    """The newest complete checkpoint of this very run; another run's checkpoints are cleared.

    `run_fingerprint` is the run's (see run_fingerprint): a checkpoint of any other is cleared,
    never loaded. The Trainer writes a checkpoint in place,
    trainer_state.json last: one without it, or with that file cut short, was interrupted by a
    kill and is removed. Under DDP
    the first rank of all (`args` are the run's TrainingArguments) tidies the directory while
    the others wait: on several nodes it is one directory on a shared file system.
    """
    with args.main_process_first(local=False, desc="checkpoint directory"):
        return _tidy_and_find_checkpoint(Path(checkpoint_dir), run_fingerprint)


def _tidy_and_find_checkpoint(checkpoint_dir: Path, run_fingerprint: str) -> str | None:
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

    run_file = checkpoint_dir / RUN_FILE
    if checkpoint_dir.is_dir():
        recorded = json.loads(run_file.read_text()) if run_file.is_file() else {}
        if recorded.get("fingerprint") != run_fingerprint:
            log.warning("%s holds checkpoints of another run: clearing it", checkpoint_dir)
            shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_file, {"fingerprint": run_fingerprint})
    for partial in checkpoint_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        if not _whole_json(partial / TRAINER_STATE_NAME):
            log.warning("removing incomplete checkpoint %s", partial)
            shutil.rmtree(partial)
    return get_last_checkpoint(str(checkpoint_dir))


def _whole_json(path: Path) -> bool:
    """Whether `path` holds a whole JSON document: a kill while the Trainer wrote it leaves the
    file empty or cut short."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True
