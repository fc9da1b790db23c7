"""One teacher recipe at full length, outside Snakemake: train, then held-out masked-LM accuracy.

Trains the teacher of a config (its `teacher` block, with `--training` JSON over its `training`)
on a finished run's masked shards, all but the last, exactly as the `teacher` rule does
(`wwmdistill.teacher.train_mlm`), and scores it on the last shard as `teacher.json` does. Two
recipes run side by side on one thread each, so the loss curves (the checkpoints'
`trainer_state.json`) and accuracies compare; the wall time does not (a rule gets 2 threads).
`--positions sinusoidal` starts BERT's learned position table from the Transformer's sinusoids
rescaled to `--position-std`: the model stays a plain BertForMaskedLM. `--scratch` JSON changes
the shape; `--train-results` trains on another run's masked shards (say, masked at another rate)
while the held-out shard stays `--results`'s, so every probe is scored on the same masks.

    .venv/bin/python benchmarks/probe_teacher_recipe.py --results /path/to/run/results \\
      --config configs/cpu_quality.yaml --training '{"learning_rate": 4e-4}' --out /tmp/probe-lr
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wwmdistill.mlm_data import MaskedLMCollator, mlm_eval  # noqa: E402
from wwmdistill.settings import TeacherSettings  # noqa: E402
from wwmdistill.teacher import _max_seq_len, _scratch_model, train_mlm  # noqa: E402
from wwmdistill.tokenizer import load_tokenizer  # noqa: E402


def sinusoids(rows: int, width: int, std: float) -> torch.Tensor:
    """The Transformer's sine/cosine position table, rescaled to the given standard deviation."""
    position = torch.arange(rows).unsqueeze(1).float()
    frequency = torch.exp(torch.arange(0, width, 2).float() * (-math.log(10000.0) / width))
    table = torch.zeros(rows, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table * std / table.std()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="a run's results/ folder")
    parser.add_argument("--config", type=Path, default=Path("configs/cpu_quality.yaml"))
    parser.add_argument("--training", default="{}", help="JSON over the teacher's training block")
    parser.add_argument("--scratch", default="{}", help="JSON over the teacher's scratch block")
    parser.add_argument(
        "--train-results", type=Path, help="a run's results/ to train on (default: --results)"
    )
    parser.add_argument("--positions", choices=["learned", "sinusoidal"], default="learned")
    parser.add_argument("--position-std", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    block = yaml.safe_load(args.config.read_text())["teacher"]
    block["training"] = block.get("training", {}) | json.loads(args.training)
    block["scratch"] = block.get("scratch", {}) | json.loads(args.scratch)
    settings = TeacherSettings.from_config(block)
    shards = sorted((args.results / "masked").glob("*.arrow"))
    heldout = shards[-1]
    train = sorted(((args.train_results or args.results) / "masked").glob("*.arrow"))[:-1]
    tokenizer_dir = args.results / "tokenizer"
    pad_id = load_tokenizer(tokenizer_dir).pad_token_id
    model = _scratch_model(settings.scratch, tokenizer_dir, _max_seq_len(shards), args.seed)
    if args.positions == "sinusoidal":
        table = model.bert.embeddings.position_embeddings.weight
        with torch.no_grad():
            table.copy_(sinusoids(*table.shape, args.position_std))
    steps = settings.training.max_steps
    # The out dir is the probe's own: resuming there needs no fingerprint of the recipe.
    model, info = train_mlm(
        model, train, pad_id, settings.training, steps, args.out / "ckpt", "probe", args.seed
    )
    metrics = mlm_eval(model, [heldout], MaskedLMCollator(pad_id), 32)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "train": info, "heldout": metrics}
    (args.out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
