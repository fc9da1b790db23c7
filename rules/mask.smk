# static whole-word masking, one job per shard


rule mask:
    input:
        shard="results/segmented/{shard}.arrow",
        tokenizer="results/tokenizer",
    output:
        shard="results/masked/{shard}.arrow",
    params:
        masking=block("masking"),
        seed=config["seed"],
    log:
        "results/logs/mask/{shard}.log",
    benchmark:
        "results/benchmarks/mask/{shard}.tsv"
    threads: 1
    resources:
        mem_mb=memory_per_attempt(4000),
        runtime=240,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/mask.py"
