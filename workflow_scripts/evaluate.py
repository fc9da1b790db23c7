"""Snakemake adapter for rule evaluate: the comparison table of one task."""

from pathlib import Path

from wwmdistill.evaluation import EvalRow, build_eval
from wwmdistill.finetune import load_task
from wwmdistill.job import job

task_spec = snakemake.params.task
evaluation = snakemake.params.evaluation
seeds = evaluation["seeds"]
with job(snakemake.log[0], snakemake.threads):
    task = load_task(Path(snakemake.input.task))
    # The inputs come row by row, seed by seed (rules/common.smk eval_predictions).
    directories = iter(snakemake.input.predictions)
    rows = [
        EvalRow(model, stage, base, {seed: Path(next(directories)) for seed in seeds})
        for model, stage, base in snakemake.params.rows
    ]
    build_eval(
        task,
        rows,
        task_spec["finetune"]["max_seq_len"],
        Path(snakemake.output.eval),
        config={"task": task_spec, "evaluation": evaluation},
        deployed={
            row: Path(path)
            for (row, _, _), path in zip(
                snakemake.params.rows, snakemake.input.deployed, strict=True
            )
        },
        speed_path=Path(snakemake.input.speed),
        bench={Path(path).stem: Path(path) for path in snakemake.input.bench},
    )
