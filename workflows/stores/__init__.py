"""One module per DynamoDB table: its item models, its key builders and the only code that reads or writes it.

Each store has a DynamoDB implementation and an in-memory fake; ``tests/unit/test_store_contracts.py`` runs the
same contract against both, so code that is unit-tested over a fake behaves the same against DynamoDB.

| table    | module                        | a row is                                                        |
| -------- | ----------------------------- | --------------------------------------------------------------- |
| messages | ``workflows.stores.messages`` | a delivery's decision; Message-ID -> thread; send-once claims   |
| threads  | ``workflows.stores.threads``  | a thread's project, branch and user (the one thread -> project) |
| projects | ``workflows.stores.projects`` | a project's configuration                                       |
| ownership| ``workflows.stores.ownership``| which worker owns a project+user pair, under a lease            |
| events   | ``workflows.eventlog``        | the append-only event log                                       |
"""
