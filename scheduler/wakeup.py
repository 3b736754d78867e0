"""Wake-ups for the scheduler leader: a PostgreSQL NOTIFY, or a message on the channel
layer, sent at commit.

The database holds the truth; a wake-up only makes the leader look sooner. A
lost one delays a decision until the leader's next timed tick.

With `QDASH_EAGER_LEADER` (the test suite's setting, and one-off commands), there
is no leader process to wake: the step runs at once, in this process, with a
leader loaded afresh.
"""

from __future__ import annotations

import logging
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

CHANNEL = "scheduler-wake"
NOTIFY_CHANNEL = "qdash_wake"
log = logging.getLogger(__name__)


def wake(*, at: datetime | None = None) -> None:
    """Ask the leader to step once the current transaction (if any) commits.

    On PostgreSQL a `NOTIFY`, which the database delivers at commit, to whichever
    scheduler leads (standbys listen too, and ignore it); elsewhere a message on the
    channel layer. Eager: step here and now, at `at` (the time of the change, by
    default now).
    """
    if getattr(settings, "QDASH_EAGER_LEADER", False):
        from scheduler.engine import eager

        eager.step(at=at or timezone.now())
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        return
    transaction.on_commit(send_to_channel)


def send_to_channel() -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(CHANNEL, {"type": "scheduler.wake"})
    except ChannelFull:
        pass  # wake-ups are waiting already: the leader steps once for all of them
    except Exception:  # noqa: BLE001 - the change is committed; the timed tick finds it
        log.warning("scheduler wake-up not sent", exc_info=True)
