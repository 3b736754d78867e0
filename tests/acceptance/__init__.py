"""Acceptance tiers: the whole system under long runs, apart from the unit and
integration tests.

- `chaos`: the cluster of `make cluster` under faults (leader kills, executor
  kills, Redis and PostgreSQL interruptions, web restarts) while researchers
  submit through the API; nothing may be lost, started or executed twice.
- `fuzz`: the API and the circuit and params decoders under generated input;
  no server error, no schema violation, no unexpected exception.

`make bench ARGS=--chaos` and `make bench ARGS=--fuzz` run them at full size and
write their reports (artifacts/bench-chaos.md, artifacts/bench-fuzz.md); their
tests here run them briefly as part of `make test`.
"""
