"""Wire contracts, one module per topic or key: the ground floor every process imports.

events (``streamrec.events``), dead_letters (``streamrec.events.dlq``), items
(``streamrec.items``), training_batch (``streamrec.training``), announcement
(``streamrec.models``) and feed (the Redis feed key). These modules import nothing of streamrec
above them (docs/architecture.md; tests/unit/test_layers.py).
"""
