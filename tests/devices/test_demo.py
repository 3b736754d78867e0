"""The demo's devices: two real profiles and an ideal backend; its traffic sends ISA circuits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler import demo, models
from scheduler.policy import model as m

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_ecr_and_a_cz_device_and_an_ideal_five_qubit_backend() -> None:
    demo.demo_load()
    backends = {b.name: b for b in models.Backend.objects.all()}
    assert (backends["sim_kyiv"].profile, backends["sim_kyiv"].num_qubits) == ("kyiv", 127)
    assert (backends["sim_fez"].profile, backends["sim_fez"].num_qubits) == ("fez", 156)
    smallest = min(backends.values(), key=lambda b: b.num_qubits)
    assert (smallest.name, smallest.num_qubits, smallest.profile, smallest.driver) == (
        "sim_lima",
        5,
        "",
        "",
    )


def test_the_demos_first_reservation_is_still_to_come_at_any_minute() -> None:
    late = datetime(2026, 3, 4, 10, 55, 30, tzinfo=UTC)  # the old windows were at hh:30-hh:50
    demo.demo_load(now=late)
    first = models.Reservation.objects.order_by("start").first()
    assert first is not None and first.start > late
    assert first.start - late <= timedelta(minutes=15)


def test_the_traffic_on_the_devices_passes_their_isa_check() -> None:
    demo.demo_load()
    traffic = demo.Traffic(seed=11)
    for _ in range(30):
        traffic.step(plain=True)
    # A refused job would be missing (a refusal stores nothing): all 30 are there.
    assert models.Job.objects.count() == 30
    assert models.Job.objects.filter(backend__profile__gt="").count() >= 10
    assert not models.Job.objects.filter(status=m.FAILED).exists()
