"""Websocket and channel consumers, one module per concern. Thin: they render
fragments from the database and send them; the database holds the truth.

- `dashboard`: `DashboardConsumer`, one websocket per page;
- `hub`: each process's one member of the dashboard group, fanning each change
  out to its sockets;
- `renders`: renders shared between the sockets that show the same thing;
- `pages`: which fragments each page needs after a change.

The scheduler as a channel worker (`SchedulerConsumer`) is the engine's loop
(`scheduler.engine.loop`), not a page's.
"""
