"""The onnxruntime serving runtime (no torch): co-occurrence table."""
