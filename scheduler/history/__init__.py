"""History at scale: daily rollups of usage (`rollups`), the usage report (`report`,
`views`), pruning with an archive (`prune`) and the leader's idle housekeeping
(`housekeeping`). docs/history.md describes them. Nothing here imports the engine.
"""
