from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from scheduler import account, metrics, views
from scheduler.api import api, experimental_api, identity_api
from scheduler.devices import views as devices
from scheduler.history import views as history
from scheduler.whatif import views as whatif

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("submit", views.submit, name="submit"),
    path("jobs/<str:uid>", views.job_detail, name="job"),
    path("jobs/<str:uid>/result.json", views.job_result, name="job_result"),
    path("jobs/<str:uid>/bitstrings.json", views.job_bitstrings, name="job_bitstrings"),
    path("sessions/<str:uid>", views.session_detail, name="session"),
    path(
        "sessions/<str:uid>/close", views.session_action, {"action": "close"}, name="session_close"
    ),
    path(
        "sessions/<str:uid>/cancel",
        views.session_action,
        {"action": "cancel"},
        name="session_cancel",
    ),
    path("backends/<str:name>", devices.backend_detail, name="backend"),
    path("fair-share", views.fair_share, name="fair_share"),
    path("usage", history.usage, name="usage"),
    path("usage.csv", history.usage_csv, name="usage_csv"),
    path("what-if", whatif.what_if, name="what_if"),
    path("what-if/run", whatif.what_if_run, name="what_if_run"),
    path("what-if/apply", whatif.what_if_apply, name="what_if_apply"),
    path("what-if/preview", whatif.what_if_preview, name="what_if_preview"),
    path("cluster", views.cluster, name="cluster"),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", metrics.scrape, name="metrics"),
    path("account", account.account, name="account"),
    path("account/tokens", account.token_create, name="token_create"),
    path("account/tokens/<int:pk>/revoke", account.token_revoke, name="token_revoke"),
    path("api/v1/", api.urls),
    path("experimental/api/v1/", experimental_api.urls),
    path("identity/", identity_api.urls),
]

handler404 = "scheduler.views.not_found"
handler500 = "scheduler.views.server_error"
