"""Websocket URL routes; consumers register here."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
