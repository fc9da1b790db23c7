# download -> corpus shards


rule download:
    output:
        manifest="results/download/{source}/manifest.json",
    params:
        source=lambda wildcards: canonical(config["sources"][wildcards.source]),
    log:
        "results/logs/download/{source}.log",
    wildcard_constraints:
        source="|".join(downloaded_sources()) or "(?!)",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(2000),
        runtime=240,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/download.py"


rule corpus:
    input:
        unpack(corpus_source_inputs),
    output:
        shards=shard_paths("corpus"),
        stats="results/corpus/stats.json",
    params:
        content=lambda wildcards: content_of(corpus_files()),
        sources=block("sources"),
        corpus=block("corpus"),
        data_root=corpus_data_root(),
    log:
        "results/logs/corpus.log",
    benchmark:
        "results/benchmarks/corpus.tsv"
    threads: 1
    resources:
        mem_mb=memory_per_attempt(4000),
        runtime=720,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/corpus.py"
