"""General (task-agnostic) distillation of a masked-LM student on the transformers Trainer.

Two modes share one loss module (`DistillationModel` in `general_loss`: the student plus learned
projections):
- cached: the teacher is not loaded; KD reads its top-k logits (and logsumexp) from the logit
  cache, cosine its cached final hidden states; plus the MLM loss (DistilBERT, seed 000);
- online: the frozen teacher runs on the same batch; KD is exact over the full vocabulary, and
  TinyBERT attention-score / hidden-state MSEs and MiniLM-v2 relations become available.
The student's LM head runs only at the masked positions, so a step costs the encoder plus
M x V logits, not B x L x V. Projections train and checkpoint with the student (so a resumed
run continues them) and are dropped from the final directory, which `AutoModelForMaskedLM`
loads as it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor
from torch.utils.data import IterableDataset
from transformers import (
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    set_seed,
)
from transformers.trainer_pt_utils import nested_gather
from transformers.utils import SAFE_WEIGHTS_NAME

from wwmdistill.arrow_io import atomic_dir, write_json
from wwmdistill.artifacts.logit_cache import (
    cache_layout,
    cache_vocab_size,
    open_logit_cache,
    open_logits,
)
from wwmdistill.artifacts.masked import STAGE as MASKED_STAGE
from wwmdistill.artifacts.masked import open_masked
from wwmdistill.distill.general_loss import PER_POSITION, DistillationModel, head_name
from wwmdistill.distill.layers import AttentionCapture, layer_mapping
from wwmdistill.distill.student import StudentSettings, init_student
from wwmdistill.mlm_data import MaskedLMCollator, masked_dataset, mlm_eval
from wwmdistill.models import (
    check_vocab,
    count_parameters,
    load_masked_lm,
    model_fingerprint,
)
from wwmdistill.progress import heartbeat_callback
from wwmdistill.tokenizer import copy_tokenizer_files, load_tokenizer
from wwmdistill.training import (
    FEWER_SHARDS,
    finished_state,
    require_rows,
    resume_checkpoint,
    run_fingerprint,
    training_arguments,
)

log = logging.getLogger(__name__)


class DistillationTrainer(Trainer):
    """A Trainer whose loss is the distillation loss; online, it runs the frozen teacher too.

    Per-position losses (kd, mlm, cos) are means over every masked position of the optimizer
    step, whatever the split into accumulated micro-batches and processes, so a run with 2
    processes or 2 accumulation steps follows the run with one big batch; the other components
    are per-batch means, averaged. Each component is logged beside the total (their weighted
    sum), so `state.log_history` holds the whole curve of every component.
    """

    # compute_loss scales for gradient accumulation itself.
    loss_is_scaled_for_ga = True

    def __init__(
        self, *args: Any, teacher: PreTrainedModel | None, settings: StudentSettings, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.teacher = None
        if teacher is not None:
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
            self._teacher_head = head_name(teacher)
            student = self.model.student
            n_teacher = teacher.config.num_hidden_layers
            n_student = student.config.num_hidden_layers
            kind = settings.layer_map
            kind = list(kind) if isinstance(kind, tuple) else kind
            self._attention_map = layer_mapping(kind, n_teacher, n_student, target="attention")
            self._hidden_map = layer_mapping(kind, n_teacher, n_student, target="hidden")
        self._part_sums: dict[str, Tensor] = {}
        self._part_steps: set[int] = set()

    @torch.no_grad()
    def teacher_targets(self, inputs: dict[str, Tensor]) -> dict[str, Any]:
        """The teacher's outputs on the batch, already mapped onto the student's layers."""
        weights = self.settings.weights
        with_states = weights.hidden > 0 or weights.embedding > 0
        capture = AttentionCapture(self.teacher) if weights.attention or weights.relation else None
        with capture or contextlib.nullcontext():
            out = self.teacher.base_model(
                input_ids=inputs["input_ids"],
                attention_mask=inputs["attention_mask"],
                output_hidden_states=with_states,
                return_dict=True,
            )
        rows, cols = inputs["mask_index"].unbind(1)
        masked = out.last_hidden_state[rows, cols]
        targets: dict[str, Any] = {"hidden": masked}
        if weights.kd > 0:
            targets["logits"] = getattr(self.teacher, self._teacher_head)(masked)
        if weights.attention > 0:
            targets["attention"] = [
                torch.stack([capture.scores(j) for j in group]).mean(0)
                for group in self._attention_map
            ]
        if with_states:
            targets["states"] = [
                torch.stack([out.hidden_states[j] for j in group]).mean(0)
                for group in self._hidden_map
            ]
        if weights.relation > 0:
            # MiniLM-v2: the student's last layer learns from one teacher layer, the last one
            # that the layer map gives the student's last layer.
            targets["relation_qkv"] = capture.qkv(self._attention_map[-1][-1])
        return targets

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = self.teacher_targets(inputs) if self.teacher is not None else None
        parts = model(**inputs, teacher=teacher)
        accumulation = self.current_gradient_accumulation_steps
        if num_items_in_batch is None:
            per_position = 1.0 / accumulation
        else:
            # DDP averages gradients over processes, hence the process count: the sum of the
            # shares over micro-batches and processes is the mean over all masked positions.
            positions = inputs["mask_index"].shape[0] * self.accelerator.num_processes
            per_position = positions / max(float(num_items_in_batch), 1.0)
        loss = 0.0
        for name, value in parts.items():
            share = value * (per_position if name in PER_POSITION else 1.0 / accumulation)
            loss = loss + getattr(self.settings.weights, name) * share
            self._part_sums[name] = self._part_sums.get(name, 0.0) + share.detach().float()
        self._part_steps.add(self.state.global_step)
        return (loss, parts) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._part_steps:
            # As the Trainer logs the total: gathered mean over processes, per optimizer step.
            steps = len(self._part_steps)
            for name, total in self._part_sums.items():
                gathered = nested_gather(total, self.args.parallel_mode).mean().item()
                logs[f"loss_{name}"] = gathered / steps
            self._part_sums, self._part_steps = {}, set()
        super().log(logs, start_time)

    # The student's decoder is tied to its word embeddings: safetensors' save_model/load_model
    # store a tied tensor once and restore the tie, where the Trainer's state-dict path for a
    # plain nn.Module refuses shared tensors.
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        safetensors.torch.save_model(self.model, os.path.join(output_dir, SAFE_WEIGHTS_NAME))
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        path = os.path.join(resume_from_checkpoint, SAFE_WEIGHTS_NAME)
        safetensors.torch.load_model(model or self.model, path, device=str(self.args.device))


def _cache_layout(
    logits_paths: list[Path], masked_paths: list[Path], teacher_fp: str, vocab_size: int
) -> dict[str, Any]:
    """Open every logits shard (refusing another teacher's) and check they agree on the layout."""
    if len(logits_paths) != len(masked_paths):
        raise ValueError(
            f"mode: cached needs one logits shard per masked shard: {len(logits_paths)} "
            f"logits for {len(masked_paths)} masked shard(s)"
        )
    layout = None
    for path, masked in zip(logits_paths, masked_paths, strict=True):
        cache = open_logits(path, masked, teacher_fingerprint=teacher_fp)
        meta = cache_layout(cache)
        if cache_vocab_size(cache) != vocab_size:
            raise ValueError(
                f"{path}: vocab_size {cache_vocab_size(cache)}, the teacher has {vocab_size}"
            )
        if layout is not None and meta != layout:
            raise ValueError(
                f"{path}: cache layout {meta} differs from {logits_paths[0]}: {layout}"
            )
        layout = meta
    return layout


def _check_settings(settings: StudentSettings, student, teacher, where: str) -> int:
    """Refuse loss settings the two models cannot meet; return the relation head count."""
    weights = settings.weights
    s_heads, t_heads = student.config.num_attention_heads, teacher.config.num_attention_heads
    if weights.attention > 0 and s_heads != t_heads:
        raise ValueError(
            f"config {where}.weights.attention: attention-score distillation needs equal head "
            f"counts, the student has {s_heads} and the teacher {t_heads}"
        )
    heads = settings.relation_heads or s_heads
    if weights.relation > 0:
        for who, model in (("student", student), ("teacher", teacher)):
            if model.config.hidden_size % heads:
                raise ValueError(
                    f"config {where}.relation_heads: {heads} does not divide the {who}'s hidden "
                    f"size {model.config.hidden_size}"
                )
    return heads


def run_general_distillation(
    student_name: str,
    settings: StudentSettings,
    teacher_dir: Path,
    tokenizer_dir: Path,
    masked_paths: list[Path],
    logits_paths: list[Path],
    heldout_masked: Path | None,
    out_dir: Path,
    checkpoint_dir: Path,
    seed: int,
    *,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any]:
    """Distil `teacher_dir` into a student; write `out_dir` (model, tokenizer, metrics.json).

    Resumes from the newest checkpoint in `checkpoint_dir` made by the same run. Under torchrun
    every process trains; process 0 evaluates and writes `out_dir`. `callbacks` go to the
    Trainer (benchmarks time steps with one). Returns the metrics.
    """
    where = f"students.{student_name}"
    _check_inputs(where, settings, teacher_dir, tokenizer_dir, masked_paths, heldout_masked)
    teacher_fp = model_fingerprint(teacher_dir)
    teacher = load_masked_lm(teacher_dir)
    tokenizer = load_tokenizer(tokenizer_dir)
    collator, dataset = _training_data(
        where,
        settings,
        teacher,
        teacher_fp,
        tokenizer.pad_token_id,
        masked_paths,
        logits_paths,
        seed,
    )
    set_seed(seed)
    student = init_student(settings, teacher, where)
    relation_heads = _check_settings(settings, student, teacher, where)
    model = DistillationModel(student, settings, teacher.config.hidden_size, relation_heads)
    training = settings.training
    args = training_arguments(
        training,
        checkpoint_dir,
        seed,
        # An unused LM head (kd and mlm weights 0) would stop DDP waiting for its gradients.
        ddp_find_unused_parameters=settings.weights.kd == 0 and settings.weights.mlm == 0,
    )
    run_fp = run_fingerprint(
        settings.as_dict(),
        teacher_fp,
        [open_masked(p).fingerprint for p in masked_paths],
        [open_logit_cache(p).fingerprint for p in logits_paths],
        seed,
    )
    resume = resume_checkpoint(checkpoint_dir, run_fp, args)
    if resume:
        log.info("resuming %s from %s", where, resume)
    trainer = DistillationTrainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=dataset,
        teacher=teacher if settings.mode == "online" else None,
        settings=settings,
        callbacks=[*(callbacks or []), heartbeat_callback()],
    )
    summary = _train(trainer, resume, args.max_steps)
    metrics: dict[str, Any] = {
        "student": student_name,
        "settings": settings.as_dict(),
        "teacher_fingerprint": teacher_fp,
        "steps": trainer.state.global_step,
        "resumed_from": resume,
        "processes": args.world_size,
        "train": summary,
        "log_history": [entry for entry in trainer.state.log_history if "loss" in entry],
        "parameters": {
            "student": count_parameters(student),
            "teacher": count_parameters(teacher),
            "projections_dropped": count_parameters(model) - count_parameters(student),
        },
        "heldout": None,
    }
    if not trainer.is_world_process_zero():
        return metrics
    if heldout_masked is not None:
        metrics["heldout"] = _heldout_eval(
            student,
            teacher,
            _recorded_teacher_heldout(teacher_dir, teacher_fp, heldout_masked),
            tokenizer.pad_token_id,
            heldout_masked,
            training.batch_size,
            args.device,
        )
    with atomic_dir(out_dir) as tmp:
        student.save_pretrained(tmp)
        copy_tokenizer_files(tokenizer_dir, tmp)
        write_json(tmp / "metrics.json", metrics)
    log.info("general distillation of %s done: %s", where, {k: metrics[k] for k in ("steps",)})
    return metrics


def _check_inputs(
    where: str,
    settings: StudentSettings,
    teacher_dir: Path,
    tokenizer_dir: Path,
    masked_paths: list[Path],
    heldout_masked: Path | None,
) -> None:
    """Refuse empty masked shards and models whose vocabulary is not the tokenizer's."""
    require_rows(masked_paths, MASKED_STAGE, f"{where}: general distillation", FEWER_SHARDS)
    if heldout_masked is not None:
        require_rows([heldout_masked], MASKED_STAGE, f"{where}: held-out MLM eval", FEWER_SHARDS)
    check_vocab(teacher_dir, tokenizer_dir)
    if settings.init == "path":
        check_vocab(Path(settings.path), tokenizer_dir)


def _training_data(
    where: str,
    settings: StudentSettings,
    teacher: PreTrainedModel,
    teacher_fp: str,
    pad_token_id: int,
    masked_paths: list[Path],
    logits_paths: list[Path],
    seed: int,
) -> tuple[MaskedLMCollator, IterableDataset]:
    """The collator and the training set: with the teacher's cached logits (and hidden states
    when the cosine loss needs them) in cached mode, the masked shards alone online."""
    if settings.mode == "cached":
        layout = _cache_layout(logits_paths, masked_paths, teacher_fp, teacher.config.vocab_size)
        if settings.weights.cos > 0 and not layout["has_hidden"]:
            raise ValueError(
                f"config {where}.weights.cos: > 0 but {logits_paths[0]} holds no teacher hidden "
                "states (set logits.hidden: true or the weight to 0)"
            )
        collator = MaskedLMCollator(
            pad_token_id,
            top_k=layout["top_k"],
            hidden_size=layout["hidden_size"] if settings.weights.cos > 0 else None,
        )
        return collator, masked_dataset(masked_paths, logits_paths, seed=seed)
    if logits_paths:
        raise ValueError(f"config {where}.mode: online reads no logit cache, got {logits_paths}")
    return MaskedLMCollator(pad_token_id), masked_dataset(masked_paths, seed=seed)


def _train(
    trainer: DistillationTrainer, resume: str | None, max_steps: int
) -> dict[str, Any] | None:
    """Train, resuming from `resume`; a run that already finished is loaded, not trained again
    (no summary then)."""
    if state := finished_state(resume, max_steps):
        trainer._load_from_checkpoint(resume)
        trainer.state = state
        return None
    return trainer.train(resume_from_checkpoint=resume).metrics


def _recorded_teacher_heldout(
    teacher_dir: Path, teacher_fp: str, heldout_masked: Path
) -> dict[str, Any] | None:
    """The teacher's metrics on this held-out shard as its teacher.json recorded them, when
    both the weights and the shard are the ones it was evaluated with (else None)."""
    path = teacher_dir / "teacher.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        log.warning("%s:%d: not JSON (%s); evaluating the teacher again", path, err.lineno, err.msg)
        return None
    if (
        isinstance(info, dict)
        and info.get("heldout")
        and info.get("fingerprint") == teacher_fp
        and info.get("heldout_fingerprint") == open_masked(heldout_masked).fingerprint
    ):
        return info["heldout"]
    return None


def _heldout_eval(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    recorded: dict[str, Any] | None,
    pad_token_id: int,
    heldout_masked: Path,
    batch_size: int,
    device: Any,
) -> dict[str, Any]:
    """Student and teacher MLM metrics on the held-out masked shard; the teacher's are
    `recorded` when its own stage already measured them there."""
    eval_collator = MaskedLMCollator(pad_token_id)
    heldout = [heldout_masked]
    return {
        "path": str(heldout_masked),
        "student": mlm_eval(student, heldout, eval_collator, batch_size),
        "teacher": recorded or mlm_eval(teacher.to(device), heldout, eval_collator, batch_size),
    }


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """run_general_distillation from a JSON-able dict of its arguments (paths as strings).

    `settings` is the `students.<name>` config block. This is what `--config` files hold.
    """
    name = arguments["student_name"]
    heldout = arguments.get("heldout_masked")
    return run_general_distillation(
        name,
        StudentSettings.from_config(arguments["settings"], where=f"students.{name}"),
        Path(arguments["teacher_dir"]),
        Path(arguments["tokenizer_dir"]),
        [Path(p) for p in arguments["masked_paths"]],
        [Path(p) for p in arguments.get("logits_paths") or []],
        Path(heldout) if heldout else None,
        Path(arguments["out_dir"]),
        Path(arguments["checkpoint_dir"]),
        int(arguments["seed"]),
    )


if __name__ == "__main__":
    from wwmdistill.launch import main

    main(run_from_arguments)
