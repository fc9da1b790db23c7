"""Snakemake adapter for rule report: results/report.md, its HTML tables and the plots."""

from pathlib import Path

import markdown

from wwmdistill.arrow_io import atomic_path
from wwmdistill.job import job
from wwmdistill.report.plots import plot_loss_curves, plot_score_vs_speed
from wwmdistill.report.tables import build_report

with job(snakemake.log[0], snakemake.threads):
    evals = [Path(p) for p in snakemake.input.evals]
    text = build_report(
        evals,
        [Path(p) for p in snakemake.input.bench],
        dict(snakemake.params.config),
        Path(snakemake.output.markdown),
    )
    # The same tables for Snakemake's --report, which shows HTML but not markdown.
    with atomic_path(snakemake.output.tables) as tmp:
        tmp.write_text(markdown.markdown(text, extensions=["tables", "fenced_code"]), "utf-8")
    curves = {"teacher": Path(snakemake.input.teacher) / "teacher.json"}
    curves |= {Path(p).name: Path(p) / "metrics.json" for p in snakemake.input.students}
    plot_loss_curves(curves, Path(snakemake.output.losses))
    plot_score_vs_speed(evals, Path(snakemake.output.score_speed))
