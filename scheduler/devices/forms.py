"""The admin's backend form: a device profile from the shipped list, or a driver."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from scheduler import models
from scheduler.devices import DeviceUnavailable, drivers, profiles


def profile_choices() -> list[tuple[str, str]]:
    return [("", "none: an ideal simulator (all-to-all, noiseless)")] + [
        (name, profiles.summary(name)) for name in profiles.names()
    ]


class BackendForm(forms.ModelForm):
    """A backend; the number of qubits of a profile's or a driver's is the device's."""

    profile = forms.ChoiceField(
        required=False,
        choices=profile_choices,
        help_text=models.Backend._meta.get_field("profile").help_text,
    )

    class Meta:
        model = models.Backend
        fields = [
            "name",
            "num_qubits",
            "profile",
            "driver",
            "driver_args",
            "max_runtime",
            "job_overhead",
            "shot_time",
            "compile_time",
            "description",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        profile, driver = cleaned.get("profile") or "", (cleaned.get("driver") or "").strip()
        cleaned["driver"] = driver
        if profile and driver:
            self.add_error("driver", "A backend has a profile or a driver, not both.")
            return cleaned
        if profile:
            cleaned["num_qubits"] = profiles.configuration(profile)["n_qubits"]
        elif driver:
            args = cleaned.get("driver_args") or {}
            if not isinstance(args, dict):
                self.add_error(
                    "driver_args", "Give the driver's keyword arguments as a JSON object."
                )
                return cleaned
            try:
                backend = drivers.instantiate(driver, json.dumps(args, sort_keys=True))
            except DeviceUnavailable as error:
                self.add_error("driver", str(error))
                return cleaned
            cleaned["num_qubits"] = backend.target.num_qubits
        return cleaned


class BackendSelect(forms.Select):
    """The submission form's backends; a device backend's option names its device, so the
    page can offer "transpile for the device" and link its page."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        backend = getattr(option["value"], "instance", None)
        if backend is not None and (backend.profile or backend.driver):
            option["attrs"]["data-device"] = backend.profile or backend.driver
        return option


def transpile_field() -> forms.BooleanField:
    return forms.BooleanField(
        label="Transpile for the device",
        required=False,
        initial=True,
        help_text="Map the circuit to the device's gates and coupled qubits; "
        "untranspiled circuits must already match them.",
    )
