"""The onnxruntime serving runtime: artifact verification, registry, item index, providers and
the Runner. Never imports torch (tests/unit/test_layers.py): the worker loads only this."""
