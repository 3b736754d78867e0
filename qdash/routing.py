"""Websocket URL routes; consumers register here."""

from django.urls import URLPattern, path

from scheduler.consumers.dashboard import DashboardConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/live", DashboardConsumer.as_asgi(), name="ws-live"),
]
