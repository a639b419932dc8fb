"""One module per DynamoDB table: its item models, its key builders and the only code that reads or writes it.

Each store has a DynamoDB implementation and an in-memory fake; ``tests/unit/test_store_contracts.py`` runs the
same contract against both, so code that is unit-tested over a fake behaves the same against DynamoDB.

| table     | module                                  | a row is                                                      |
| --------- | --------------------------------------- | ------------------------------------------------------------- |
| messages  | ``workflows.adapters.stores.messages``  | a delivery's decision; Message-ID -> thread; send-once claims |
| threads   | ``workflows.adapters.stores.threads``   | a thread's project, branch and user (one thread -> project)   |
| projects  | ``workflows.adapters.stores.projects``  | a project's configuration                                     |
| ownership | ``workflows.adapters.stores.ownership`` | which worker owns a project+user pair, under a lease          |
| events    | ``workflows.adapters.eventlog``         | the append-only event log                                     |
"""
