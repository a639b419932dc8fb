"""What talks to AWS: clients, the stores (one module per table, each with an in-memory fake), the event log, task
tokens, reply sending, the preview fallback. The domain (workflows/*.py, workflows/mail/) never imports these:
tests/unit/test_layers.py."""
