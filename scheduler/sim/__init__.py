"""`simulate` and `replay`: the rules on a virtual clock, and the live run checked
against them (docs/simulate.md, docs/rules.md "Replaying a live run").

- `scenario`: the scenario file's schema and checks, into policy actions;
- `run`: the virtual clock driving an engine through a scenario;
- `memory`: the pure policy as an engine (`--engine memory`);
- `db`: the live leader on a scratch database as an engine (`--engine db`);
- `trace`: the trace writer, shared by every engine and the replay;
- `replay`: a scenario rebuilt from the live run's event log, and its live trace;
- `compare`: two traces compared event by event.
"""
