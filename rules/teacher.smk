# tokenizer (the teacher's own, or WordPiece trained on the corpus for a scratch teacher)


rule tokenizer:
    input:
        shards=shard_paths("corpus") if config["tokenizer"]["source"] == "train" else [],
    output:
        dir=directory("results/tokenizer"),
    params:
        tokenizer=block("tokenizer"),
    log:
        "results/logs/tokenizer.log",
    benchmark:
        "results/benchmarks/tokenizer.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/wwmdistill.yaml"
    script:
        "../workflow_scripts/tokenizer.py"
