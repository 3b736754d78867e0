from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from scheduler import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
]
