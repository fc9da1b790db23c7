"""The teacher stage on real masked shards: scratch pretraining, resume after a kill, pretrained
teachers and the checks that refuse a teacher that does not fit the data."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from samples import emptied, whole_checkpoints
from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

from wwmdistill.artifacts.masked import open_masked
from wwmdistill.launch import run_training
from wwmdistill.mlm_data import MaskedLMCollator, mlm_eval
from wwmdistill.models import ModelMismatchError, check_vocab, load_masked_lm, model_fingerprint
from wwmdistill.progress import console
from wwmdistill.teacher import (
    TeacherSettings,
    build_teacher,
    run_from_arguments,
)
from wwmdistill.tokenizer import load_tokenizer
from wwmdistill.training import NoRowsError

TINY = {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 128}
STEPS = 30


def _block(**training) -> dict:
    base = {
        "max_steps": STEPS,
        "batch_size": 16,
        "learning_rate": 3.0e-3,
        "save_steps": 5,
        "logging_steps": 5,
    }
    return {"scratch": TINY, "training": {**base, **training}}


def _shards(tiny_masked) -> tuple[list[Path], Path]:
    """The training shards and the held-out one, as the workflow splits them."""
    train, heldout = tiny_masked.masked_paths
    return [train], heldout


def _build(tiny_masked, root: Path, **training) -> dict:
    return build_teacher(
        TeacherSettings.from_config(_block(**training)),
        *_shards(tiny_masked),
        tiny_masked.tokenizer_dir,
        root / "model",
        root / "checkpoints",
        seed=0,
    )


@pytest.fixture(scope="module")
def trained(tiny_masked, tmp_path_factory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("scratch")
    return _build(tiny_masked, root), root / "model"


def test_settings_accept_the_config_block_and_name_bad_keys() -> None:
    settings = TeacherSettings.from_config(
        {
            "source": "scratch",
            "revision": None,
            "adapt_steps": 0,
            "scratch": {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024},
            "training": {"max_steps": 1500, "precision": "auto", "warmup_ratio": 0.06},
        }
    )
    assert settings.scratch.hidden == 256 and settings.training.save_steps == 250
    with pytest.raises(ValueError, match=r"teacher\.training.*\['epochs'\]"):
        TeacherSettings.from_config({"training": {"epochs": 3}})
    with pytest.raises(ValueError, match=r"teacher\.training\.precision"):
        TeacherSettings.from_config({"training": {"precision": "fp8"}})
    with pytest.raises(ValueError, match="multiple of heads"):
        TeacherSettings.from_config({"scratch": {"hidden": 100, "heads": 3}})


def test_scratch_teacher_learns_and_is_saved_complete(tiny_masked, trained) -> None:
    info, out = trained
    assert info["steps"] == STEPS and info["resumed_from"] is None
    assert info["train_shards"] == [str(tiny_masked.masked_paths[0])]
    assert info["heldout_shard"] == str(tiny_masked.masked_paths[1])
    assert info["heldout_fingerprint"] == open_masked(tiny_masked.masked_paths[1]).fingerprint
    assert json.loads((out / "teacher.json").read_text()) == info
    assert info["fingerprint"] == model_fingerprint(out)
    assert (out / "vocab.txt").read_bytes() == (
        tiny_masked.tokenizer_dir / "vocab.txt"
    ).read_bytes()
    check_vocab(out, tiny_masked.tokenizer_dir)
    model = load_masked_lm(out)
    assert model.config.max_position_embeddings >= tiny_masked.settings.max_seq_len
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    # On the held-out shard (other documents) it beats the same model untrained.
    torch.manual_seed(0)
    untrained = BertForMaskedLM(BertConfig.from_pretrained(out))
    collator = MaskedLMCollator(load_tokenizer(out).pad_token_id)
    before = mlm_eval(untrained, tiny_masked.masked_paths[1:], collator, batch_size=32)
    after = info["heldout"]
    again = mlm_eval(model, tiny_masked.masked_paths[1:], collator, batch_size=32)
    assert after["accuracy"] == again["accuracy"]
    assert after["perplexity"] == pytest.approx(again["perplexity"], rel=1e-5)
    assert after["tokens"] == before["tokens"]
    assert after["perplexity"] < 0.95 * before["perplexity"]
    assert after["accuracy"] > 0.03 > before["accuracy"]
    assert info["final_train_loss"] < 0.85 * math.log(before["perplexity"])


def test_two_processes_train_the_teacher_as_one(tiny_masked, trained, tmp_path) -> None:
    """torchrun (gloo, CPU) with per-device batch 8 x 2 against the 1-process batch of 16.

    Both runs see the same examples at each step; dropout differs per rank, so the losses agree
    to about 1%. The loss of a rank is its masked positions' sum over all ranks' count times the
    rank count: a run that left out that count would log half the loss. Rank 0 alone beats,
    through the launcher, on the console of the job (here a buffer, a line every step).
    """
    info, _ = trained
    arguments = {
        "settings": _block(batch_size=8),
        "masked_paths": [str(tiny_masked.masked_paths[0])],
        "heldout_masked": str(tiny_masked.masked_paths[1]),
        "tokenizer_dir": str(tiny_masked.tokenizer_dir),
        "out_dir": str(tmp_path / "model"),
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "seed": 0,
    }
    terminal = io.StringIO()
    with console(terminal, "teacher", 0):
        run_training(
            run_from_arguments,
            arguments,
            gpus=0,
            processes=2,
            nodes=1,
            threads=1,
            arguments_file=tmp_path / "args.json",
            where="teacher.training",
        )
    steps = [line for line in terminal.getvalue().splitlines() if " step " in line]
    done = [int(line.split()[2].split("/")[0]) for line in steps]
    assert steps[-1].startswith(f"[teacher] step {STEPS}/{STEPS} (100%), ")
    assert done == sorted(set(done)), "one line per step: rank 0 only"
    two = json.loads((tmp_path / "model" / "teacher.json").read_text())
    assert info["processes"] == 1 and two["processes"] == 2
    assert two["steps"] == info["steps"] == STEPS
    assert two["final_train_loss"] == pytest.approx(info["final_train_loss"], rel=0.05)
    assert two["heldout"]["perplexity"] == pytest.approx(info["heldout"]["perplexity"], rel=0.05)
    assert two["fingerprint"] == model_fingerprint(tmp_path / "model")


def test_a_changed_max_steps_trains_afresh_like_a_new_run(tiny_masked, tmp_path) -> None:
    short = {"batch_size": 8, "save_steps": 6, "logging_steps": 3}
    first = _build(tiny_masked, tmp_path / "run", max_steps=6, **short)
    assert first["steps"] == 6
    # Longer and shorter: never another length's checkpoint, whose schedule (or step count) is
    # not this run's; the weights are a fresh run's byte for byte.
    for steps in (12, 3):
        changed = _build(tiny_masked, tmp_path / "run", max_steps=steps, **short)
        fresh = _build(tiny_masked, tmp_path / f"fresh{steps}", max_steps=steps, **short)
        assert changed["resumed_from"] is None and changed["steps"] == fresh["steps"] == steps
        assert changed["fingerprint"] == fresh["fingerprint"]
        weights = [tmp_path / run / "model/model.safetensors" for run in ("run", f"fresh{steps}")]
        assert weights[0].read_bytes() == weights[1].read_bytes()
    # Killed after its last checkpoint: rerunning loads it and takes no extra step.
    again = _build(tiny_masked, tmp_path / "run", max_steps=3, **short)
    assert again["resumed_from"] == str(tmp_path / "run/checkpoints/checkpoint-3")
    assert again["steps"] == 3 and again["fingerprint"] == changed["fingerprint"]
    # How often checkpoints are written is the one setting that may change and still resume.
    resumed = _build(tiny_masked, tmp_path / "run", max_steps=3, **short | {"save_steps": 2})
    assert resumed["resumed_from"] == str(tmp_path / "run/checkpoints/checkpoint-3")


KILL_SCRIPT = """
import sys
from pathlib import Path
from wwmdistill.teacher import TeacherSettings, build_teacher
import json
import math
block, masked, heldout, tokenizer, root = json.loads(sys.argv[1])
build_teacher(TeacherSettings.from_config(block), [Path(p) for p in masked], Path(heldout),
              Path(tokenizer), Path(root) / "model", Path(root) / "checkpoints", seed=0)
"""


def test_sigkilled_run_resumes_exactly(tiny_masked, trained, tmp_path) -> None:
    train, heldout = _shards(tiny_masked)
    args = [_block(), [str(p) for p in train], str(heldout), str(tiny_masked.tokenizer_dir)]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps([*args, str(tmp_path)])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not whole_checkpoints(tmp_path / "checkpoints"):
        assert proc.poll() is None, "the run ended before it saved a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (tmp_path / "model").exists()
    info = _build(tiny_masked, tmp_path)
    resumed_step = int(Path(info["resumed_from"]).name.split("-")[1])
    assert 5 <= resumed_step < STEPS
    assert info["steps"] == STEPS
    load_masked_lm(tmp_path / "model")
    # The resumed run saw the same batches as the uninterrupted one: the same weights.
    assert info["fingerprint"] == trained[0]["fingerprint"]


def test_local_pretrained_teacher_with_adaptation(tiny_masked, tiny_teacher, tmp_path) -> None:
    block = {"source": str(tiny_teacher), "adapt_steps": 4, **_block(save_steps=2)}
    info = build_teacher(
        TeacherSettings.from_config(block),
        *_shards(tiny_masked),
        tiny_masked.tokenizer_dir,
        tmp_path / "model",
        tmp_path / "checkpoints",
        seed=0,
    )
    assert info["source"] == str(tiny_teacher) and info["steps"] == 4
    adapted, original = load_masked_lm(tmp_path / "model"), load_masked_lm(tiny_teacher)
    assert adapted.config.hidden_size == original.config.hidden_size == 64
    assert not torch.equal(
        adapted.bert.encoder.layer[0].attention.self.query.weight,
        original.bert.encoder.layer[0].attention.self.query.weight,
    )
    assert info["heldout"]["tokens"] > 0


def test_local_teacher_without_adaptation_needs_no_shards(
    tiny_masked, tiny_teacher, tmp_path
) -> None:
    # As the rule calls it: no adaptation, so no masked shards (masking reruns do not refetch).
    block = {"source": str(tiny_teacher), "adapt_steps": 0}
    info = build_teacher(
        TeacherSettings.from_config(block),
        [],
        None,
        tiny_masked.tokenizer_dir,
        tmp_path / "model",
        tmp_path / "checkpoints",
        seed=0,
    )
    assert info["steps"] == 0 and info["heldout"] is None
    assert info["fingerprint"] == model_fingerprint(tiny_teacher)


def _save_with_tokenizer(model, out: Path, tiny_masked) -> Path:
    model.save_pretrained(str(out))
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        (out / name).write_bytes((tiny_masked.tokenizer_dir / name).read_bytes())
    return out


def _config(vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )


def _build_from(source: Path, tiny_masked, tmp_path: Path) -> dict:
    return build_teacher(
        TeacherSettings.from_config({"source": str(source)}),
        *_shards(tiny_masked),
        tiny_masked.tokenizer_dir,
        tmp_path / "out",
        tmp_path / "checkpoints",
        seed=0,
    )


def test_teachers_that_do_not_fit_are_refused(tiny_masked, tmp_path) -> None:
    n = len(load_tokenizer(tiny_masked.tokenizer_dir))
    bigger = _save_with_tokenizer(
        BertForMaskedLM(_config(n + 10)), tmp_path / "bigger", tiny_masked
    )
    with pytest.raises(ModelMismatchError) as err:
        _build_from(bigger, tiny_masked, tmp_path)
    assert str(bigger) in str(err.value) and str(tiny_masked.tokenizer_dir) in str(err.value)

    other_vocab = _save_with_tokenizer(BertForMaskedLM(_config(n)), tmp_path / "other", tiny_masked)
    lines = (other_vocab / "vocab.txt").read_text(encoding="utf-8").splitlines()
    lines[-1], lines[-2] = lines[-2], lines[-1]
    (other_vocab / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ModelMismatchError) as err:
        _build_from(other_vocab, tiny_masked, tmp_path)
    assert str(other_vocab) in str(err.value) and str(tiny_masked.tokenizer_dir) in str(err.value)

    encoder = _save_with_tokenizer(BertModel(_config(n)), tmp_path / "encoder", tiny_masked)
    with pytest.raises(ModelMismatchError, match="no masked-LM head"):
        _build_from(encoder, tiny_masked, tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_teacher_shipping_its_own_code_is_refused_unless_trusted(tiny_masked, tmp_path) -> None:
    n = len(load_tokenizer(tiny_masked.tokenizer_dir))
    source = _save_with_tokenizer(BertForMaskedLM(_config(n)), tmp_path / "custom", tiny_masked)
    ran = tmp_path / "code_ran"
    (source / "custom_bert.py").write_text(
        f"from pathlib import Path\nPath({str(ran)!r}).touch()\n", encoding="utf-8"
    )
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoConfig": "custom_bert.Config", "AutoModel": "custom_bert.Model"}
    (source / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelMismatchError, match="teacher.trust_remote_code is false") as err:
        _build_from(source, tiny_masked, tmp_path)
    assert "custom_bert.Config" in str(err.value)
    assert not ran.exists() and not (tmp_path / "out").exists()


def test_no_rows_to_train_or_evaluate_on_stop_the_teacher(tiny_masked, tmp_path) -> None:
    train, heldout = tiny_masked.masked_paths
    empty = emptied(train, tmp_path / "empty.arrow", "masked")
    for shards, purpose in (([empty, heldout], "pretraining"), ([train, empty], "held-out")):
        with pytest.raises(
            NoRowsError, match=rf"teacher: {purpose}.*: no rows in {empty}; lower corpus.shards"
        ):
            build_teacher(
                TeacherSettings.from_config(_block()),
                shards[:1],
                shards[1],
                tiny_masked.tokenizer_dir,
                tmp_path / "model",
                tmp_path / "checkpoints",
                seed=0,
            )
    assert not (tmp_path / "model").exists()


def test_a_scratch_model_takes_its_dropout_from_the_settings(tmp_path: Path) -> None:
    from wwmdistill.settings import ModelSize
    from wwmdistill.teacher import _scratch_model

    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    (tokenizer / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "中"])
    )
    BertTokenizer(str(tokenizer / "vocab.txt")).save_pretrained(str(tokenizer))
    size = ModelSize(layers=1, hidden=16, heads=2, intermediate=32, dropout=0.0)
    config = _scratch_model(size, tokenizer, 32, seed=0).config
    assert config.hidden_dropout_prob == config.attention_probs_dropout_prob == 0.0
    default = _scratch_model(
        ModelSize(layers=1, hidden=16, heads=2, intermediate=32), tokenizer, 32, 0
    )
    assert default.config.hidden_dropout_prob == 0.1
