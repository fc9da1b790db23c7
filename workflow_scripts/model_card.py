"""Snakemake adapter for rule model_card: a student's release directory with its README.md."""

import shutil
from pathlib import Path

from wwmdistill.arrow_io import atomic_dir
from wwmdistill.job import job
from wwmdistill.model_card import write_model_card

student = Path(snakemake.input.student)
with job(snakemake.log[0], snakemake.threads), atomic_dir(snakemake.output.model) as tmp:
    shutil.copytree(student, tmp, dirs_exist_ok=True)
    write_model_card(
        snakemake.wildcards.student,
        student,
        tmp / "README.md",
        student_settings=dict(snakemake.params.student),
        teacher=dict(snakemake.params.teacher),
        teacher_dir=Path(snakemake.input.teacher),
        tokenizer=dict(snakemake.params.tokenizer),
        corpus=dict(snakemake.params.corpus),
        eval_paths=[Path(p) for p in snakemake.input.evals],
        bench_path=Path(snakemake.input.bench),
        teacher_bench_path=Path(snakemake.input.teacher_bench),
        repo_id=str(snakemake.output.model),
    )
