"""Student settings and initialisation against a real (tiny, random) BERT teacher."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from wwmdistill.distill.student import StudentSettings, init_student
from wwmdistill.models import ModelMismatchError

VOCAB = 300


@pytest.fixture(scope="module")
def teacher() -> BertForMaskedLM:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=48,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=96,
        max_position_embeddings=40,
        type_vocab_size=3,
        pad_token_id=1,
    )
    return BertForMaskedLM(config).eval()


def _inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (3, 17), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    ids[1, 11:] = 1
    return {"input_ids": ids, "attention_mask": mask}


def test_settings_from_config_nests_blocks_and_names_bad_keys() -> None:
    settings = StudentSettings.from_config(
        {
            "init": "teacher_layers",
            "teacher_layers": [0, 2, 4],
            "scratch": {"layers": 3, "hidden": 64, "heads": 4, "intermediate": 128},
            "weights": {"kd": 1.0, "mlm": 0.5},
            "layer_map": {"mean": 2},
            "training": {"max_steps": 10, "processes": 2},
        },
        where="students.rbt",
    )
    assert settings.teacher_layers == (0, 2, 4)
    assert settings.scratch.hidden == 64
    assert (settings.weights.kd, settings.weights.mlm, settings.weights.cos) == (1.0, 0.5, 1.0)
    assert settings.training.max_steps == 10 and settings.training.batch_size == 32
    assert settings.training.processes == 2
    with pytest.raises(ValueError, match=r"students\.rbt\.weights: unknown key\(s\) \['kdd'\]"):
        StudentSettings.from_config({"weights": {"kdd": 1.0}}, where="students.rbt")
    with pytest.raises(ValueError, match=r"students\.x\.weights\.attention: must be 0"):
        StudentSettings.from_config({"weights": {"attention": 1.0}}, where="students.x")
    with pytest.raises(ValueError, match=r"students\.x\.first_n: required"):
        StudentSettings.from_config({"init": "first_n"}, where="students.x")
    with pytest.raises(ValueError, match=r"students\.x\.scratch\.hidden: 50 is not a multiple"):
        StudentSettings.from_config({"scratch": {"hidden": 50, "heads": 4}}, where="students.x")
    with pytest.raises(ValueError, match=r"students\.x\.training\.precision"):
        StudentSettings.from_config({"training": {"precision": "int8"}}, where="students.x")


def test_teacher_layers_copies_exactly_the_chosen_layers(teacher: BertForMaskedLM) -> None:
    layers = [0, 2, 5]
    student = init_student(StudentSettings(init="teacher_layers", teacher_layers=layers), teacher)
    assert student.config.num_hidden_layers == 3
    assert student.config.hidden_size == 48
    t_state, s_state = teacher.state_dict(), student.state_dict()
    expected = {}
    for key in t_state:
        parts = key.split(".")
        if parts[:3] == ["bert", "encoder", "layer"]:
            if int(parts[3]) not in layers:
                continue
            parts[3] = str(layers.index(int(parts[3])))
        expected[".".join(parts)] = t_state[key]
    assert s_state.keys() == expected.keys()
    for key, value in s_state.items():
        assert torch.equal(value, expected[key]), key
    # The decoder stays tied to the (copied) word embeddings, as in the teacher.
    assert student.cls.predictions.decoder.weight is student.bert.embeddings.word_embeddings.weight


def test_all_layers_reproduce_the_teacher(teacher: BertForMaskedLM) -> None:
    everything = StudentSettings(init="teacher_layers", teacher_layers=tuple(range(6)))
    student = init_student(everything, teacher).eval()
    with torch.no_grad():
        expected = teacher(**_inputs()).logits
        got = student(**_inputs()).logits
    assert torch.equal(got, expected)


def test_first_n_is_the_bottom_of_the_teacher(teacher: BertForMaskedLM) -> None:
    student = init_student(StudentSettings(init="first_n", first_n=2), teacher).eval()
    # The student's last hidden state is the teacher's hidden state after layer 2.
    with torch.no_grad():
        want = teacher.bert(**_inputs(), output_hidden_states=True).hidden_states[2]
        got = student.bert(**_inputs()).last_hidden_state
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match=r"students\.s\.first_n: 7 > the teacher's 6 layers"):
        init_student(StudentSettings(init="first_n", first_n=7), teacher, "students.s")


def test_bad_teacher_layers_name_the_key(teacher: BertForMaskedLM) -> None:
    with pytest.raises(ValueError, match=r"students\.s\.teacher_layers: \[6\] out of range"):
        init_student(
            StudentSettings(init="teacher_layers", teacher_layers=(0, 6)), teacher, "students.s"
        )
    with pytest.raises(ValueError, match=r"students\.s\.teacher_layers: \[0, 0\] repeats"):
        init_student(
            StudentSettings(init="teacher_layers", teacher_layers=(0, 0)), teacher, "students.s"
        )


def test_scratch_student_takes_the_teachers_vocabulary_and_positions(
    teacher: BertForMaskedLM,
) -> None:
    settings = StudentSettings.from_config(
        {"scratch": {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}}
    )
    student = init_student(settings, teacher)
    config = student.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert config.intermediate_size == 64
    assert (config.vocab_size, config.max_position_embeddings) == (VOCAB, 40)
    assert (config.type_vocab_size, config.pad_token_id) == (3, 1)
    assert student.bert.embeddings.word_embeddings.weight.shape == (VOCAB, 32)


def test_path_student_loads_safetensors_and_checks_the_vocab(
    teacher: BertForMaskedLM, tmp_path
) -> None:
    saved = init_student(StudentSettings(init="first_n", first_n=1), teacher)
    saved.save_pretrained(tmp_path / "ok")
    student = init_student(StudentSettings(init="path", path=str(tmp_path / "ok")), teacher)
    assert torch.equal(
        student.bert.embeddings.word_embeddings.weight, saved.bert.embeddings.word_embeddings.weight
    )
    assert isinstance(AutoModelForMaskedLM.from_pretrained(tmp_path / "ok"), BertForMaskedLM)

    other = BertForMaskedLM(
        BertConfig(
            vocab_size=VOCAB + 1,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ModelMismatchError, match=r"students\.s\.path: .*vocab_size 301"):
        init_student(
            StudentSettings(init="path", path=str(tmp_path / "other")), teacher, "students.s"
        )
