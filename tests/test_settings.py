"""The settings models are the one definition of every config option.

The schema Snakemake validates with is generated from them, so a default or a range cannot
differ between what Snakemake fills in and what the code uses; errors name the key path.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import get_args

import pytest
import yaml
from snakemake.utils import validate
from tiny_workflow import REPO, merged_config, tiny_config

from wwmdistill.settings import (
    AugmentSettings,
    Config,
    ConfigError,
    FinetuneSettings,
    MaskingSettings,
    SourceSettings,
    StudentSettings,
    TeacherSettings,
    check_config,
    config_schema,
    schema_text,
)

SCHEMA = REPO / "schemas" / "config.schema.yaml"


def _configs(tmp_path: Path) -> dict[str, dict]:
    base = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    configs = {"config.yaml": base, "tiny": tiny_config(tmp_path)}
    for path in sorted((REPO / "configs").glob("*.yaml")):
        over = yaml.safe_load(path.read_text(encoding="utf-8"))
        configs[path.name] = merged_config(copy.deepcopy(base), over)
    return configs


def test_the_committed_schema_is_generated_from_the_models() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "schemas/config.schema.yaml differs from the settings models: run `make schema`"
    )


def test_snakemake_fills_the_defaults_the_models_hold(tmp_path: Path) -> None:
    # Validated as written and after Snakemake filled the schema's defaults, every config gives
    # the same settings, integers and floats alike (3 and 3.0 differ in a fingerprint).
    for name, config in _configs(tmp_path).items():
        as_written = check_config(copy.deepcopy(config))
        validate(config, str(SCHEMA))
        filled = check_config(config)
        dumps = [json.dumps(c.model_dump(mode="json")) for c in (as_written, filled)]
        assert dumps[0] == dumps[1], name


def test_keys_added_later_have_no_schema_default() -> None:
    # A default Snakemake fills in is a new param of every job that reads the block: these keys
    # came after the first results, so their defaults live in the code only.
    schema = config_schema()["$defs"]
    for block in ("SourceSettings", "TaskBlock"):
        for key in ("max_extract_bytes", "max_extract_members"):
            assert "default" not in schema[block]["properties"][key]
    assert "default" not in config_schema()["properties"]["finetune"]
    config = tiny_config(Path("data"))
    validate(config, str(SCHEMA))
    assert "finetune" not in config
    assert "max_extract_bytes" not in config["tasks"]["snownlp_sentiment"]


def test_one_error_format_names_every_bad_key(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    config["corpus"]["shards"] = 2.0
    config["students"]["tiny"]["training"]["max_steps"] = 20.0
    config["masking"] = {"max_seq_len": 4}
    config["tasks"]["snownlp_sentiment"]["finetune"]["epoch"] = 1
    with pytest.raises(ConfigError) as error:
        check_config(config)
    assert str(error.value).splitlines() == [
        "config corpus.shards: input should be a valid integer, got 2.0",
        "config masking.max_seq_len: input should be greater than or equal to 8, got 4",
        "config students.tiny.training.max_steps: input should be a valid integer, got 20.0",
        "config tasks.snownlp_sentiment.finetune: unknown key(s) ['epoch']; expected some of "
        f"{sorted(FinetuneSettings.model_fields)}",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sources": {}}, "config sources: dictionary should have at least 1 item"),
        ({"seed": True}, "config seed: input should be a valid integer, got True"),
        ({"students": {"teacher": {}}}, "config students.teacher: `teacher` names a teacher's"),
        (
            {"students": {"teacher_char": {}}},
            "config students.teacher_char: `teacher_char` names a teacher's rows",
        ),
        ({"students": {"s": {"init": "first_n"}}}, "config students.s.first_n: required by"),
        ({"teacher": {"scratch": {"hidden": 50}}}, "config teacher.scratch.hidden: 50 is not a"),
        ({"evaluation": {"seeds": [1, 1]}}, "config evaluation.seeds: [1, 1] repeats a seed"),
        ({"tasks": {"afqmc": {"augment": {"p": 0}}}}, "config tasks.afqmc.augment.p: input"),
        ({"tasks": {"afqmc": {"splits": {"val": "x"}}}}, "config tasks.afqmc.splits.val: input"),
        ({"sources": {"w": {"type": "url"}}}, "config sources.w.url: required by type: url"),
        ({"logits": {"precision": "int8"}}, "config logits.precision: input should be 'auto'"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, change: dict, message: str) -> None:
    config = tiny_config(tmp_path)
    config.update(change)
    with pytest.raises(ConfigError) as error:
        check_config(config)
    assert str(error.value).startswith(message)


def test_library_settings_are_the_config_blocks() -> None:
    # A block read by a job validates as the whole config does, naming where it sits.
    with pytest.raises(ConfigError, match=r"^config tasks\.t\.augment\.p: input should be"):
        AugmentSettings.from_config({"p": 1.5}, "tasks.t.augment")
    with pytest.raises(ConfigError, match=r"^config masking\.dupe_factor: input should be"):
        MaskingSettings.from_config({"dupe_factor": 128})
    assert MaskingSettings.from_config(None) == MaskingSettings()
    # Keyword construction validates too, and a number written as an integer stays one.
    with pytest.raises(ValueError, match="max_seq_len"):
        MaskingSettings(max_seq_len=4)
    assert FinetuneSettings(epochs=2).as_dict()["epochs"] == 2
    assert isinstance(FinetuneSettings(epochs=2).as_dict()["epochs"], int)
    # A block's schema default is what its default instance sets: the order Snakemake fills.
    assert config_schema()["$defs"]["TeacherSettings"]["properties"]["training"]["default"] == {
        "max_steps": 1500,
        "learning_rate": 5.0e-4,
    }
    assert TeacherSettings().training.max_steps == 1500
    assert StudentSettings.from_config({"layer_map": [0, 2]}).layer_map == (0, 2)


def test_source_formats_are_the_readers() -> None:
    from wwmdistill.corpus_readers import FORMATS

    assert get_args(SourceSettings.model_fields["format"].annotation) == FORMATS


def test_the_settings_package_stays_light() -> None:
    # The Snakefile imports it at every DAG build.
    import subprocess
    import sys

    code = "import sys, wwmdistill.settings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert Config.model_fields["sources"].is_required()
