"""Deploying a fine-tuned model: ONNX fp32 and int8 exports, their agreement with PyTorch, and
what serving them needs.

`export.py` (torch -> ONNX, int8 quantisation), `runtime.py` (onnxruntime sessions and batched
runs of a kind's features, torch-free), `agreement.py` (PyTorch against onnxruntime on a split),
`bundle.py` (the stage: a deploy directory with deploy.json). `wwmdistill.predict` serves one.
Nothing is imported here, so serving never pulls in torch.
"""
