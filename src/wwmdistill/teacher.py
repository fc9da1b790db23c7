"""The teacher stage: a scratch BERT pretrained with WWM MLM, or a hub / local masked LM.

Training runs through `transformers.Trainer` on the static whole-word masks of the masked
shards (labels are the original ids at the masked positions only). Checkpoints live outside the
rule output and a rerun resumes from the newest one, so a killed job loses at most `save_steps`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from wwmdistill.arrow_io import atomic_dir, fingerprint, write_json
from wwmdistill.artifacts.masked import STAGE as MASKED_STAGE
from wwmdistill.artifacts.masked import max_seq_len_of, open_masked
from wwmdistill.hub import hub_snapshot
from wwmdistill.mlm_data import MaskedLMCollator, masked_dataset, mlm_eval
from wwmdistill.models import (
    check_vocab,
    count_parameters,
    load_masked_lm,
    mlm_head,
    model_fingerprint,
    refuse_remote_code,
)
from wwmdistill.progress import heartbeat_callback
from wwmdistill.settings import TeacherSettings
from wwmdistill.tokenizer import TOKENIZER_FILES, copy_tokenizer_files, load_tokenizer
from wwmdistill.training import (
    FEWER_SHARDS,
    ModelSize,
    TrainingSettings,
    finished_state,
    require_rows,
    resume_checkpoint,
    run_fingerprint,
    training_arguments,
)

log = logging.getLogger(__name__)

# What a pretrained teacher needs from the hub: weights, config and its tokenizer files.
MODEL_PATTERNS = ("*.safetensors", "*.safetensors.index.json", *TOKENIZER_FILES)


def _max_seq_len(masked_paths: list[Path]) -> int:
    return max(max_seq_len_of(path) for path in masked_paths)


# Google BERT's hidden and attention dropout, for a scratch teacher whose settings leave it unset.
BERT_DROPOUT = 0.1


def _scratch_model(size: ModelSize, tokenizer_dir: Path, max_len: int, seed: int):
    from transformers import BertConfig, BertForMaskedLM

    tok = load_tokenizer(tokenizer_dir)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.intermediate,
        hidden_dropout_prob=BERT_DROPOUT if size.dropout is None else size.dropout,
        attention_probs_dropout_prob=BERT_DROPOUT if size.dropout is None else size.dropout,
        # BERT's own table size when it suffices, so a longer max_seq_len later still fits.
        max_position_embeddings=max(512, max_len),
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return BertForMaskedLM(config)


def _fetch_pretrained(source: str, revision: str | None, into: Path) -> Path:
    """A local model dir as it is, or a hub snapshot (safetensors, config, tokenizer) in `into`."""
    local = Path(source).expanduser()
    if source.startswith(("/", ".", "~")) or local.exists():
        if not local.is_dir():
            raise FileNotFoundError(f"teacher.source: local path {local} is not a directory")
        return local
    return hub_snapshot(source, revision, into, patterns=list(MODEL_PATTERNS), key="teacher.source")


def _masked_head_trainer():
    """A Trainer whose MLM loss runs the head at the masked positions only.

    The stock loss computes vocabulary logits at every position, about a third of a small
    teacher's step on CPU, only to ignore all but the ~15% that are masked.
    """
    from transformers import Trainer

    class MaskedHeadTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            rows, cols = inputs["mask_index"].unbind(1)
            text = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
            if self.accelerator.unwrap_model(model) is model:
                hidden = model.base_model(**text).last_hidden_state[rows, cols]
                logits = mlm_head(model)(hidden).float()
            else:
                # DDP syncs gradients only through its own forward: the full head runs there.
                logits = model(**text).logits[rows, cols].float()
            labels = inputs["labels"][rows, cols]
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
            # The Trainer counts the masked positions of the whole optimizer step, over
            # accumulated micro-batches and all ranks; DDP averages gradients over the ranks,
            # hence their count: the step's loss is the mean over all those positions.
            if num_items_in_batch is None:
                loss = loss / max(labels.numel(), 1)
            else:
                ranks = self.accelerator.num_processes
                loss = loss * ranks / max(float(num_items_in_batch), 1.0)
            return (loss, {"logits": logits}) if return_outputs else loss

    return MaskedHeadTrainer


def _train_info(state, resumed_from: str | None) -> dict[str, Any]:
    # The last logged loss; a run shorter than logging_steps has only the summary's mean.
    losses = [e["loss"] for e in state.log_history if "loss" in e] or [
        e["train_loss"] for e in state.log_history if "train_loss" in e
    ]
    return {
        "steps": state.global_step,
        "resumed_from": resumed_from,
        "final_train_loss": losses[-1] if losses else None,
    }


def train_mlm(
    model,
    train_paths: list[Path],
    pad_id: int,
    training: TrainingSettings,
    max_steps: int,
    checkpoint_dir: Path,
    run_fp: str,
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """WWM MLM training with the Trainer, resuming from checkpoint_dir; the model and its info."""
    # Every parameter takes part in the MLM loss: DDP need not look for unused ones.
    args = training_arguments(
        training, checkpoint_dir, seed, max_steps=max_steps, ddp_find_unused_parameters=False
    )
    resume = resume_checkpoint(checkpoint_dir, run_fp, args)
    if state := finished_state(resume, max_steps):
        return load_masked_lm(resume), _train_info(state, resume)
    if resume:
        log.info("resuming teacher training from %s", resume)
    trainer = _masked_head_trainer()(
        model=model,
        args=args,
        data_collator=MaskedLMCollator(pad_id),
        train_dataset=masked_dataset(train_paths, seed=seed, repeat=True),
        callbacks=[heartbeat_callback()],
    )
    trainer.train(resume_from_checkpoint=resume)
    return model, _train_info(trainer.state, resume)


def _starting_model(
    settings: TeacherSettings, tokenizer_dir: Path, max_len: int, seed: int, fetch_dir: Path
) -> tuple[Any, str, int]:
    """The model training starts from, its fingerprint, and the MLM steps it gets: a fresh one
    for `source: scratch`, else the pretrained one (fetched into `fetch_dir`) and its
    adaptation steps."""
    if settings.source == "scratch":
        model = _scratch_model(settings.scratch, tokenizer_dir, max_len, seed)
        return model, fingerprint(model.config.to_dict()), settings.training.max_steps
    model_dir = _fetch_pretrained(settings.source, settings.revision, fetch_dir)
    trusted = settings.trust_remote_code
    refuse_remote_code(model_dir, trusted, "teacher.trust_remote_code")
    check_vocab(model_dir, tokenizer_dir, trust_remote_code=trusted)
    source_fp = model_fingerprint(model_dir)
    model = load_masked_lm(model_dir, trust_remote_code=trusted)
    if model.config.max_position_embeddings < max_len:
        raise ValueError(
            f"teacher.source {settings.source}: max_position_embeddings "
            f"{model.config.max_position_embeddings} < the masked shards' max_seq_len "
            f"{max_len}"
        )
    return model, source_fp, settings.adapt_steps


def build_teacher(
    settings: TeacherSettings,
    train_paths: list[Path],
    heldout_masked: Path | None,
    tokenizer_dir: Path,
    out_dir: Path,
    checkpoint_dir: Path,
    seed: int,
) -> dict[str, Any]:
    """Make the teacher model directory (weights, tokenizer files, teacher.json); return its info.

    Trains on `train_paths`; `heldout_masked`, when given, is never trained on: the MLM eval.
    """
    trains = settings.source == "scratch" or settings.adapt_steps > 0
    if trains and not train_paths:
        raise ValueError("teacher: no masked shards given to train on")
    heldout = [] if heldout_masked is None else [heldout_masked]
    for purpose, paths in (("pretraining", train_paths), ("held-out MLM eval", heldout)):
        if paths:
            require_rows(paths, MASKED_STAGE, f"teacher: {purpose}", FEWER_SHARDS)
    tok = load_tokenizer(tokenizer_dir)
    # A fetched teacher that is not adapted reads no shards (the rule gives it none, so masking
    # changes do not refetch it); the logit cache checks its positions against the shards.
    max_len = _max_seq_len([*train_paths, *heldout]) if train_paths or heldout else 0
    data_fp = [open_masked(p).fingerprint for p in train_paths]
    train_info: dict[str, Any] = {"steps": 0, "resumed_from": None, "final_train_loss": None}
    with tempfile.TemporaryDirectory(prefix="wwmdistill-teacher-") as fetch_dir:
        model, source_fp, steps = _starting_model(
            settings, tokenizer_dir, max_len, seed, Path(fetch_dir)
        )
        if steps > 0:
            run_fp = run_fingerprint(settings.as_dict(), source_fp, data_fp, seed)
            model, train_info = train_mlm(
                model,
                train_paths,
                tok.pad_token_id,
                settings.training,
                steps,
                checkpoint_dir,
                run_fp,
                seed,
            )
    if int(os.environ.get("RANK", "0")) != 0:
        return train_info  # under torchrun the first rank evaluates and writes the teacher
    device = "cuda" if torch.cuda.is_available() else "cpu"
    heldout_metrics = (
        mlm_eval(
            model.to(device),
            heldout,
            MaskedLMCollator(tok.pad_token_id),
            settings.training.batch_size,
        )
        if heldout
        else None
    )
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        copy_tokenizer_files(tokenizer_dir, tmp)
        info = {
            "source": settings.source,
            "revision": settings.revision,
            "settings": settings.as_dict(),
            "fingerprint": model_fingerprint(tmp),
            "parameters": count_parameters(model),
            "steps": train_info["steps"],
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "resumed_from": train_info["resumed_from"],
            "final_train_loss": train_info["final_train_loss"],
            "train_shards": [str(p) for p in train_paths],
            "heldout_shard": str(heldout[0]) if heldout else None,
            "heldout_fingerprint": open_masked(heldout[0]).fingerprint if heldout else None,
            "heldout": heldout_metrics,
        }
        write_json(tmp / "teacher.json", info)
    log.info(
        "teacher %s: %d parameters, %d steps, held-out %s",
        settings.source,
        info["parameters"],
        info["steps"],
        heldout_metrics,
    )
    return info


def run_from_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """build_teacher from a JSON-able dict of its arguments (paths as strings).

    `settings` is the `teacher` config block; `heldout_masked` a path or None. This is what
    `--config` files hold.
    """
    heldout = arguments["heldout_masked"]
    return build_teacher(
        TeacherSettings.from_config(arguments["settings"]),
        [Path(p) for p in arguments["masked_paths"]],
        None if heldout is None else Path(heldout),
        Path(arguments["tokenizer_dir"]),
        Path(arguments["out_dir"]),
        Path(arguments["checkpoint_dir"]),
        seed=int(arguments["seed"]),
    )


if __name__ == "__main__":
    from wwmdistill.launch import main

    main(run_from_arguments)
