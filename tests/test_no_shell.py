"""No config value reaches a shell: rules run scripts, and commands are argument lists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELL_CALLS = {("os", "system"), ("os", "popen")}
SUBPROCESS = {"run", "Popen", "call", "check_call", "check_output"}


def shell_uses(path: Path) -> list[str]:
    """`file:line` of every os.system/popen, shell=True, or subprocess call given a string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        name = node.func.attr
        shell = any(
            k.arg == "shell" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in node.keywords
        )
        command_is_string = bool(node.args) and isinstance(
            node.args[0], ast.Constant | ast.JoinedStr
        )
        if (owner, name) in SHELL_CALLS or (
            owner == "subprocess" and name in SUBPROCESS and (shell or command_is_string)
        ):
            found.append(f"{path}:{node.lineno}")
    return found


def test_python_never_builds_a_shell_command() -> None:
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "workflow_scripts").glob("*.py")]
    assert len(sources) > 30
    assert [use for path in sources for use in shell_uses(path)] == []


def test_the_checker_sees_a_shell_string(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('import subprocess\nsubprocess.run(f"ls {x}", shell=True)\nos.system("x")\n')
    assert shell_uses(bad) == [f"{bad}:2", f"{bad}:3"]


def test_rules_run_scripts_not_shell_strings() -> None:
    rules = [REPO / "Snakefile", *(REPO / "rules").glob("*.smk")]
    for path in rules:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s+(shell|run):", text, re.M), f"{path.name} has a shell/run block"
    scripts = sum(path.read_text(encoding="utf-8").count("script:") for path in rules)
    assert scripts >= 20
