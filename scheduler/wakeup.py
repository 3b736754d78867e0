"""Wake-ups for the scheduler: a message on the channel layer, sent after commit.

The database holds the truth; a wake-up only makes the scheduler look sooner.
A lost one delays a decision until the scheduler's next timed tick.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

CHANNEL = "scheduler-wake"


def wake() -> None:
    """Ask the scheduler to tick once the current transaction (if any) commits."""
    transaction.on_commit(_send)


def _send() -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.send)(CHANNEL, {"type": "scheduler.wake"})
