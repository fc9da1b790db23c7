"""results/claims.md from wwmdistill.claims.replay_claims: the verdict table, the per-seed numbers
behind each comparison and the config that produced them; with the result as JSON and as the
HTML page Snakemake's report shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import markdown
import yaml

from wwmdistill.arrow_io import atomic_path, write_json
from wwmdistill.report.formatting import MISSING, markdown_table

HEADER = ("claim", "seed", "tasks", "compared", "mean ± std per side")
CHECKS = {
    "parameters": "parameters / teacher's",
    "throughput": "PyTorch b16 throughput / teacher's",
}


def mean_std(side: Mapping[str, Any]) -> str:
    if side["std"] is None:
        return f"{side['mean']:.2f}"
    return f"{side['mean']:.2f} ± {side['std']:.2f}"


def difference(interval: Mapping[str, Any]) -> str:
    if interval["low"] is None:
        return f"{interval['mean']:+.2f} (one seed)"
    return f"{interval['mean']:+.2f} [{interval['low']:+.2f}, {interval['high']:+.2f}]"


def comparison_row(name: str, seed: str, item: Mapping[str, Any]) -> list[str]:
    left, right = item["left"], item["right"]
    test = item["test"] + (f", margin {item['margin']:g}" if item["margin"] else "")
    return [
        name,
        seed,
        item["task"],
        f"{left['label']} vs {right['label']} ({item['metric']}; {test})",
        f"{mean_std(left)} vs {mean_std(right)}",
        difference(item["interval"]),
        f"{item['verdict']}: {item['reason']}",
    ]


def check_row(name: str, seed: str, task: str, check: Mapping[str, Any]) -> list[str]:
    value = MISSING if check["value"] is None else f"{check['value']:.3g}"
    compared = f"{CHECKS.get(check['check'], check['check'])} {check['sign']} {check['bound']:g}"
    return [name, seed, task, compared, MISSING, value, f"{check['verdict']}: {check['reason']}"]


def claim_rows(claim: Mapping[str, Any]) -> list[list[str]]:
    """The claim's own row (its verdict), then one row per comparison and check, and a task's
    verdict where it combines several."""
    name, seed = claim["claim"], claim["seed"]
    count = f"{len(claim['tasks'])} tasks" if claim["tasks"] else MISSING
    verdict = f"**{claim['verdict']}**: {claim['reason']}"
    rows = [[f"**{name}**", seed, count, claim["test"], MISSING, MISSING, verdict]]
    for task in claim["tasks"]:
        if "reason" in task:  # not replayed on this task
            reason = f"{task['verdict']}: {task['reason']}"
            rows.append([name, seed, task["task"], MISSING, MISSING, MISSING, reason])
            continue
        rows += [comparison_row(name, seed, item) for item in task["comparisons"]]
        rows += [check_row(name, seed, task["task"], check) for check in task["checks"]]
        if len(task["comparisons"]) + len(task["checks"]) > 1:
            rows.append(
                [name, seed, task["task"], "all of the above", MISSING, MISSING, task["verdict"]]
            )
    return rows


def seeds_of(result: Mapping[str, Any]) -> list[str]:
    return [str(seed) for seed in result["seeds"]]


def per_seed_rows(claim: Mapping[str, Any], seeds: Sequence[str]) -> list[list[str]]:
    """Each comparison's two sides and their difference, seed by seed."""
    rows = []
    for task in claim["tasks"]:
        for item in task["comparisons"]:
            sides = [(item["left"]["label"], item["left"]["scores"])]
            sides += [(item["right"]["label"], item["right"]["scores"])]
            label = f"{item['left']['label']} - {item['right']['label']}"
            sides += [(label, item["differences"])]
            for row, scores in sides:
                cells = [f"{scores[s]:.2f}" if s in scores else MISSING for s in seeds]
                rows.append([claim["claim"], task["task"], row, *cells])
    return rows


def heldout_lines(result: Mapping[str, Any]) -> list[str]:
    """Each compared teacher's masked-LM accuracy on the same held-out words (wwm_vs_char)."""
    rows = [
        [claim["claim"], name, f"{100 * m['accuracy']:.2f}", f"{m['perplexity']:.1f}", m["shard"]]
        for claim in result["claims"]
        for name, m in claim.get("heldout", {}).items()
        if "accuracy" in m
    ]
    if not rows:
        return []
    header = ["claim", "teacher", "accuracy %", "perplexity", "held-out shard"]
    return [
        "## Held-out masked-LM accuracy",
        "",
        "Both teachers on the same whole-word-masked held-out rows (never trained on).",
        "",
        markdown_table(header, rows, left=2),
        "",
    ]


def render_claims(result: Mapping[str, Any]) -> str:
    """The markdown of results/claims.md."""
    seeds = seeds_of(result)
    confidence = f"{result['confidence']:.0%}"
    verdicts = [row for claim in result["claims"] for row in claim_rows(claim)]
    numbers = [row for claim in result["claims"] for row in per_seed_rows(claim, seeds)]
    lines = [
        "# The seeds' claims, replayed",
        "",
        f"Tasks {', '.join(result['tasks'])}; fine-tuning seeds {', '.join(seeds)}; each "
        f"comparison pairs two rows of a task's eval table seed by seed, and the {confidence} "
        "paired t interval of the mean difference decides: superiority is reproduced when its "
        "lower bound > 0 and not reproduced when its upper bound < 0; non-inferiority within a "
        "margin m when the lower bound > -m, not when the upper bound < -m; inconclusive "
        "otherwise, with one seed, and when both rows predict one class on every seed. "
        "Thresholds decide by their value (an unsteady timing: by its range over the timings' "
        "quartiles, inconclusive when the range holds the bound). A claim is not "
        "replayed when the run lacks what it needs.",
        "",
        markdown_table([*HEADER, f"difference [{confidence} CI]", "verdict"], verdicts, left=4),
        "",
        "## Per-seed numbers",
        "",
        "Primary metric of each row per fine-tuning seed (a scaled row is the threshold the "
        "claim sets, e.g. 0.95 × teacher).",
        "",
        markdown_table(
            ["claim", "task", "row", *[f"seed {seed}" for seed in seeds]], numbers, left=3
        ),
        "",
        *heldout_lines(result),
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(
            {
                **result.get("run", {}),
                "evaluation": {"seeds": result["seeds"]},
                "claims": result["config"],
            },
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=None,
        ).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_claims(
    result: Mapping[str, Any],
    json_path: Path,
    markdown_path: Path,
    html_path: Path | None = None,
) -> str:
    """Write the result as JSON, as markdown and (for Snakemake's report) as HTML."""
    text = render_claims(result)
    write_json(json_path, result)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    if html_path is not None:
        with atomic_path(html_path) as tmp:
            html = markdown.markdown(text, extensions=["tables", "fenced_code"])
            tmp.write_text(html, encoding="utf-8")
    return text
