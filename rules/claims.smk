# claims: the seeds' claims replayed on the run's eval tables, with verdicts. A target of its own
# (snakemake results/claims.md), not part of `rule all`; configs/claims.yaml has its students.


rule claims:
    input:
        evals=claims_evals(),
        teachers=[model_dir(name) for name in claims_teachers()],
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
        teachers=claims_teachers(),
        # With the claims block on the page: the config the compared models came from.
        teacher=block("teacher"),
        masking=block("masking"),
        tasks={task: canonical(task_config(task)) for task in claims_block()["tasks"]},
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


# wwm_vs_char (seed 003): the teacher again, on the same rows masked a token at a time, with the
# same settings, seed and budget; scored on the teacher's own held-out whole words.
use rule mask as mask_char with:
    output:
        shard="results/claims/masked_char/{shard}.arrow",
    params:
        masking=char_masking_block(),
        seed=config["seed"],
    log:
        "results/logs/claims/mask_char/{shard}.log",
    benchmark:
        "results/benchmarks/claims/mask_char/{shard}.tsv"


use rule teacher as teacher_char with:
    input:
        masked=training_shards("claims/masked_char"),
        heldout=heldout_shards("masked"),
        tokenizer="results/tokenizer",
    output:
        model=directory(model_dir(CHAR_TEACHER)),
    params:
        teacher=block("teacher"),
        content=[],
        seed=config["seed"],
        checkpoint_dir="results/checkpoints/claims/teacher_char",
    log:
        "results/logs/claims/teacher_char.log",
    benchmark:
        "results/benchmarks/claims/teacher_char.tsv"
