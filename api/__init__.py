"""``streamrec api``: the HTTP service apps call instead of speaking Kafka and Redis themselves
(feeds, events, catalogue items, model versions), installed as ``streamrec.api``."""
