"""Tiny LTP neural model directories built offline (random weights), honest or hostile."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

HOSTILE = ("pickle", "config")


def neural_ltp_dir(path: Path) -> Path:
    """A model directory in LTP/small's layout: config.json, pytorch_model.bin, vocab.txt."""
    from ltp.nerual import LTP as NeuralLTP  # sic: LTP's own module name

    path.mkdir(parents=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"你好世界中国人民"]
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    backbone = {"model_type": "bert", "vocab_size": len(tokens), "hidden_size": 8}
    backbone |= {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}
    config = {
        "nerual": True,  # sic: LTP's own key
        "model": {
            "_ltp_target_": "ltp_core.models.ltp_model.LTPModule",
            "backbone": {
                "_ltp_target_": "ltp_core.models.utils.load_transformers",
                "config": backbone,
            },
            "processor": {"cws": {"_ltp_target_": "ltp_core.models.processor.TokenOnly"}},
            "heads": {
                "cws": {
                    "_ltp_target_": "ltp_core.models.components.token.MLPTokenClassifier",
                    "input_size": 8,
                    "num_labels": 2,
                }
            },
        },
        "vocabs": {"cws": ["B-W", "I-W"]},
    }
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.save(NeuralLTP(config=config).model.state_dict(), path / "pytorch_model.bin")
    return path


class _Mkdir:
    """Unpickles into a call of os.mkdir: any code could stand in its place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def make_hostile(model_dir: Path, how: str, marker: Path) -> Path:
    """Make loading `model_dir` create `marker`: through its pickled weights or its config.

    Returns the file that carries the code.
    """
    if how == "pickle":
        weights = model_dir / "pytorch_model.bin"
        torch.save({"payload": _Mkdir(marker)}, weights)
        return weights
    config_file = model_dir / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["model"]["heads"]["cws"] = {"_ltp_target_": "os.mkdir", "path": str(marker)}
    config_file.write_text(json.dumps(config), encoding="utf-8")
    return config_file
