"""ASGI entry point: Django for HTTP, Channels for websockets and the scheduler worker."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
# Set up Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from qdash.origin import SameOriginValidator  # noqa: E402
from qdash.proxy import TrustedProxies  # noqa: E402
from qdash.routing import websocket_urlpatterns  # noqa: E402
from scheduler import wakeup  # noqa: E402
from scheduler.engine.loop import SchedulerConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": TrustedProxies(django_asgi_app),
        "websocket": TrustedProxies(
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
        # `manage.py runworker scheduler-wake`: the scheduler as a channel worker.
        "channel": ChannelNameRouter({wakeup.CHANNEL: SchedulerConsumer.as_asgi()}),
    }
)

if os.environ.get("QDASH_ROLE") == "web":  # a web process of a cluster (make cluster)
    from scheduler import limits
    from scheduler.cluster import web_heartbeat
    from scheduler.heap import freeze_startup_heap

    freeze_startup_heap("scheduler.circuits")  # submissions parse circuits
    # The decoding workers start now, before the first submission: started by it, they
    # held it and every submission behind it for one to two seconds.
    limits.sandbox().start()
    web_heartbeat()
