"""The scheduler leader's engine: the rules' state kept in memory, the database kept
the truth (docs/rules.md, "The live system").

- `step`: `Leader.step`, the inputs web processes committed turned into the
  policy's actions and applied in order, then everything due up to now;
- `load`: the policy built from the rows that can still change;
- `save`: the changes written back in one transaction, each write conditional on
  what the leader last wrote (the column lists);
- `rows`: stored rows as the policy's objects, and the record of what was written;
- `lock`: exactly one leader at a time, and one step at a time;
- `loop`: the live scheduler, `Scheduler.run()` stepping while this process
  leads, and its channel-worker consumer;
- `executions`: the started jobs this process executes (or hands to executor
  workers), each reported at the end of its modeled QPU time;
- `eager`: one step in the caller's process (`QDASH_EAGER_LEADER`).

Only the scheduler's side imports it (the commands that run the loop, the
simulator, the what-if's snapshot): web processes store inputs and wake the
leader (`scheduler.inputs`, `scheduler.wakeup`), and the pages read what it
wrote.
"""
