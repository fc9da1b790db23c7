"""Snakemake adapter for rule model_card: a student's release directory with its README.md."""

import json
import shutil
from pathlib import Path

from wwmdistill.arrow_io import atomic_dir
from wwmdistill.job import job
from wwmdistill.model_card import write_model_card

student = Path(snakemake.input.student)
teacher_dir = Path(snakemake.input.teacher)
with job(snakemake.log[0], snakemake.threads), atomic_dir(snakemake.output.model) as tmp:
    shutil.copytree(student, tmp, dirs_exist_ok=True)
    teacher_config = json.loads((teacher_dir / "config.json").read_text(encoding="utf-8"))
    write_model_card(
        snakemake.wildcards.student,
        student,
        tmp / "README.md",
        student_settings=dict(snakemake.params.student),
        teacher=dict(snakemake.params.teacher) | {"config": teacher_config},
        corpus=dict(snakemake.params.corpus),
        eval_paths=[Path(p) for p in snakemake.input.evals],
        bench_path=Path(snakemake.input.bench),
        teacher_bench_path=Path(snakemake.input.teacher_bench),
        repo_id=str(snakemake.output.model),
    )
