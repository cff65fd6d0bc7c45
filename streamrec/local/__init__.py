"""The local stack: embedded services (Tansu, redis-server), the child-process supervisor, the
worker + trainer stack and the demo run. Sits above the processes it starts."""
