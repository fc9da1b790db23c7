"""A task model to ONNX: fp32 through torch's dynamo exporter, int8 by onnxruntime's dynamic
quantisation.

The dynamo exporter (`torch.onnx.export(..., dynamo=True)`, with onnxscript) is the one used:
the TorchScript exporter (`dynamo=False`) traces transformers 5's BERT attention-mask code into
a graph whose logits differ from PyTorch's by about 1e-2 on a tiny model, while the dynamo
export matches to about 1e-7. Every input axis (batch, sequence, and multiple choice's options)
is exported as dynamic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wwmdistill.kinds import MODEL_INPUTS, TaskKind

# 18: the lowest opset the dynamo exporter translates to without a version conversion.
OPSET = 18


def example_inputs(kind: TaskKind, config: Any) -> dict[str, Any]:
    """An example batch of the kind's input shape, its first row padded at the end so the
    attention mask is not all ones (a constant mask could be folded into the graph)."""
    import torch

    shape = kind.onnx_input_shape
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "input_ids": torch.randint(1, config.vocab_size, shape, generator=generator),
        "token_type_ids": torch.zeros(shape, dtype=torch.int64),
        "attention_mask": torch.ones(shape, dtype=torch.int64),
    }
    if getattr(config, "type_vocab_size", 1) > 1:  # a second segment where the model has one
        inputs["token_type_ids"][..., shape[-1] // 2 :] = 1
    inputs["attention_mask"][0, ..., -3:] = 0
    return {name: inputs[name] for name in MODEL_INPUTS}


def export_onnx(model: Any, kind: TaskKind, path: Path) -> dict[str, Any]:
    """Write `model` (a kind's task model) as ONNX fp32 to `path`; what was exported, for the
    record: the exporter, opset, input and output names."""
    import torch

    model.eval()
    inputs = example_inputs(kind, model.config)
    dynamic = {
        name: dict.fromkeys(range(len(kind.onnx_input_shape)), torch.export.Dim.DYNAMIC)
        for name in inputs
    }
    program = torch.onnx.export(
        model,
        (),
        kwargs=inputs,
        input_names=list(inputs),
        output_names=list(kind.output_names),
        dynamic_shapes=dynamic,
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    program.save(str(path))
    return {
        "exporter": "torch.onnx.export(dynamo=True)",
        "torch": torch.__version__,
        "opset": OPSET,
        "inputs": list(inputs),
        "outputs": list(kind.output_names),
    }


def quantize_int8(fp32: Path, int8: Path) -> dict[str, Any]:
    """Dynamic int8 quantisation (weights int8, activations quantised at run time) of `fp32`
    by onnxruntime's `quantize_dynamic`; what was done, for the record.

    Without `quant_pre_process`, which quantize_dynamic's warning recommends: its symbolic shape
    inference stops on the dynamo export ("Incomplete symbolic shape inference"), and neither
    it nor onnxruntime.transformers' BERT fusions (which do not match the dynamo graph's
    attention) made the int8 model faster when tried on the students (benchmarks/RESULTS.md).
    """
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "onnxruntime": onnxruntime.__version__,
    }
