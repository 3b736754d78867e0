import pytest
from django.test import Client


def test_it_reports_ok(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_refuses_post(client: Client) -> None:
    response = client.post("/healthz")

    assert response.status_code == 405


@pytest.mark.django_db
def test_admin_login_page_renders(client: Client) -> None:
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert b"Log in" in response.content
