"""The conda environments of the rules stay in step with pyproject.toml (no drift)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
ENVS = ("cpu", "gpu")
# conda-forge names of PyPI distributions that differ; torch has one build per env.
CONDA_NAMES = {
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "matplotlib-base": "matplotlib",
    "snakemake-minimal": "snakemake",
}
# What an env needs beyond the project's own dependencies.
TOOLING = {"python", "pip", "cuda-version"}
# Rules that train or run a model go to the GPU env, the others to the CPU one.
GPU_RULES = {"teacher", "logits", "general", "finetune", "augment", "task_logits", "bench"}
GPU_RULES |= {"task_distill_stage1", "task_distill_stage2"}


def project_requirements() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = [Requirement(line) for line in pyproject["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def env_pins(name: str) -> dict[str, str]:
    """Distribution name -> the exact version an env pins (conda `name=ver`, pip `name==ver`)."""
    spec = yaml.safe_load((REPO / "envs" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert spec["channels"][0] == "conda-forge"
    pins = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            for line in entry["pip"]:
                if line.startswith("-e "):
                    continue
                match = re.fullmatch(r"([\w.-]+)==([\w.]+)", line)
                assert match, f"envs/{name}.yaml: pip entry {line!r} is not pinned with =="
                pins[canonicalize_name(match[1])] = match[2]
            continue
        match = re.fullmatch(r"([\w.-]+)==?([\w.]+)", entry)
        assert match, f"envs/{name}.yaml: {entry!r} is not pinned to one version"
        conda_name = match[1]
        if conda_name in TOOLING:
            continue
        pins[canonicalize_name(CONDA_NAMES.get(conda_name, conda_name))] = match[2]
    return pins


@pytest.mark.parametrize("env", ENVS)
def test_env_pins_every_dependency_within_pyproject(env: str) -> None:
    requirements = project_requirements()
    pins = env_pins(env)
    assert sorted(pins) == sorted(requirements), f"envs/{env}.yaml and pyproject.toml differ"
    for name, version in pins.items():
        assert requirements[name].specifier.contains(Version(version)), (
            f"envs/{env}.yaml pins {name} {version}, outside pyproject's {requirements[name]}"
        )


def test_torch_is_one_whose_torch_load_unpickles_only_weights() -> None:
    # Below 2.6 torch.load unpickles code unless told not to, and weights_only=True is escapable.
    torch = project_requirements()["torch"].specifier
    assert not torch.contains("2.5.1") and torch.contains("2.6.0")


def test_cpu_and_gpu_envs_differ_only_in_the_torch_build() -> None:
    cpu = (REPO / "envs" / "cpu.yaml").read_text(encoding="utf-8")
    gpu = (REPO / "envs" / "gpu.yaml").read_text(encoding="utf-8")
    assert env_pins("cpu") == env_pins("gpu")
    assert "pytorch-cpu=" in cpu and "pytorch-gpu=" in gpu and "cuda-version=" in gpu


def test_every_rule_with_a_script_names_the_env_of_its_group() -> None:
    envs = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        for chunk in re.split(r"^\s*rule ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
            rule = chunk.split(":", 1)[0]
            env = re.search(r"conda:\n\s+\"([^\"]+)\"", chunk)
            if "script:" not in chunk:
                continue
            assert env, f"{path.name}: rule {rule} runs a script without a conda env"
            assert (path.parent / env[1]).resolve().is_file(), f"{path.name}: {rule}: no {env[1]}"
            envs[rule] = Path(env[1]).stem
    assert {rule for rule, env in envs.items() if env == "gpu"} == GPU_RULES
    assert len(envs) > len(GPU_RULES) and set(envs.values()) == {"cpu", "gpu"}
