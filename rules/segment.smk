# LTP CWS model (trained offline or fetched) -> segmented shards, and the segmenter's score


if config["segmentation"]["ltp"]["model"] == "train":

    rule train_segmenter:
        input:
            shards=shard_paths("corpus"),
        output:
            model=directory("results/segmenter/model"),
        params:
            segmentation=block("segmentation"),
            seed=config["seed"],
        log:
            "results/logs/train_segmenter.log",
        benchmark:
            "results/benchmarks/train_segmenter.tsv"
        threads: 2
        resources:
            mem_mb=memory_per_attempt(8000),
            runtime=240,
        conda:
            "../envs/cpu.yaml"
        script:
            "../workflow_scripts/train_segmenter.py"

else:

    rule fetch_segmenter:
        output:
            model=directory("results/segmenter/model"),
        params:
            segmentation=block("segmentation"),
        log:
            "results/logs/fetch_segmenter.log",
        threads: 1
        resources:
            mem_mb=memory_per_attempt(2000),
            runtime=60,
        conda:
            "../envs/cpu.yaml"
        script:
            "../workflow_scripts/fetch_segmenter.py"


rule segment:
    input:
        shard="results/corpus/{shard}.arrow",
        model=segmenter_model(),
    output:
        shard="results/segmented/{shard}.arrow",
    params:
        segmentation=block("segmentation"),
        content=content_of(segmentation_files()),
    log:
        "results/logs/segment/{shard}.log",
    benchmark:
        "results/benchmarks/segment/{shard}.tsv"
    threads: 1
    resources:
        mem_mb=memory_per_attempt(4000),
        runtime=240,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/segment.py"


rule evaluate_segmenter:
    input:
        shards=shard_paths("corpus"),
        model=segmenter_model(),
    output:
        json="results/segmenter/eval.json",
    params:
        segmentation=block("segmentation"),
        content=content_of(segmentation_files()),
    log:
        "results/logs/evaluate_segmenter.log",
    threads: 1
    resources:
        mem_mb=memory_per_attempt(4000),
        runtime=60,
    conda:
        "../envs/cpu.yaml"
    script:
        "../workflow_scripts/evaluate_segmenter.py"
