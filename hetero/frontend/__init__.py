"""ONNX (float, QONNX, QDQ) to the IR, and onnxruntime sessions of the same model."""
