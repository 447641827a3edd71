"""Test harnesses: the ONNX node-test conformance runner."""
