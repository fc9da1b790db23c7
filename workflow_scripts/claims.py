"""Snakemake adapter for rule claims: the seeds' claims replayed on the run's eval tables."""

import json
from pathlib import Path

from wwmdistill.claims import replay_claims
from wwmdistill.claims_report import write_claims
from wwmdistill.job import job
from wwmdistill.report.inputs import load_evals
from wwmdistill.settings import ClaimsSettings

with job(snakemake.log[0], snakemake.threads):
    teachers = {
        name: json.loads((Path(path) / "teacher.json").read_text(encoding="utf-8"))
        for name, path in zip(snakemake.params.teachers, snakemake.input.teachers, strict=True)
    }
    result = replay_claims(
        load_evals(snakemake.input.evals),
        ClaimsSettings.from_config(snakemake.params.claims),
        dict(snakemake.params.students),
        list(snakemake.params.seeds),
        teachers,
        {
            "teacher": dict(snakemake.params.teacher),
            "masking": dict(snakemake.params.masking),
            "students": dict(snakemake.params.students),
            "tasks": dict(snakemake.params.tasks),
        },
    )
    write_claims(
        result,
        Path(snakemake.output.json),
        Path(snakemake.output.markdown),
        Path(snakemake.output.html),
    )
