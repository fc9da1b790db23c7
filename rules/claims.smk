# claims: the seeds' claims replayed on the run's eval tables, with verdicts. A target of its own
# (snakemake results/claims.md), not part of `rule all`; configs/claims.yaml has its students.


rule claims:
    input:
        evals=claims_evals(),
    output:
        markdown="results/claims.md",
        json="results/claims.json",
        html=report(
            "results/report/claims.html",
            caption="../report/claims.rst",
            category="Claims",
        ),
    params:
        claims=claims_block(),
        students=block("students"),
        seeds=SEEDS,
    log:
        "results/logs/claims.log",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(2000),
        runtime=10,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/claims.py"
