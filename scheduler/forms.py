"""Browser forms. They check input and build the job request; the writes are `submission`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import forms

from scheduler import circuits, limits, models, selectors
from scheduler.devices import DeviceUnavailable, transpile
from scheduler.devices.device import device_of
from scheduler.devices.forms import BackendSelect, transpile_field
from scheduler.selectors import User

NO_SESSION = ""
NEW_SESSION = "new"
# Where each refusal of `jobs_submit` is shown on the form.
REFUSAL_FIELDS = {
    "invalid_circuit": "circuit",
    "backend_offline": "backend",
    "unknown_program": "primitive",
    "unknown_backend": "backend",
    "unknown_session": "session",
    "backend_mismatch": "session",
    "instance_mismatch": "session",
    "session_closed": "session",
    "allocation_exhausted": "instance",
}


class BackendChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: models.Backend) -> str:
        paused = "" if obj.status == models.Backend.Status.ONLINE else f", {obj.status}"
        return f"{obj.name} ({obj.num_qubits} qubits{paused})"


class SessionSelect(forms.Select):
    """Options carry their session's backend, so the page can offer only matching ones."""

    backends: dict[str, str]

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(*args, **kwargs)
        backend = getattr(self, "backends", {}).get(str(option["value"]))
        if backend:
            option["attrs"]["data-backend"] = backend
        return option


@dataclass(frozen=True)
class JobRequest:
    """What `jobs_submit` needs, from a valid form."""

    backend: models.Backend
    instance: models.Instance
    program_id: str
    params: dict[str, Any]
    session_id: str | None
    start_session: bool
    max_execution_time: timedelta | None


class SubmitForm(forms.Form):
    """A one-PUB Sampler or Estimator job from OpenQASM text, maybe in a session."""

    backend = BackendChoiceField(
        queryset=models.Backend.objects.all(),
        to_field_name="name",
        empty_label=None,
        widget=BackendSelect,
    )
    instance = forms.ModelChoiceField(
        queryset=models.Instance.objects.none(), to_field_name="path", empty_label=None
    )
    primitive = forms.ChoiceField(
        choices=[(circuits.SAMPLER, "Sampler"), (circuits.ESTIMATOR, "Estimator")]
    )
    shots = forms.IntegerField(min_value=1, required=False, initial=circuits.DEFAULT_SHOTS)
    precision = forms.FloatField(
        min_value=0.001,
        max_value=1,
        required=False,
        initial=circuits.DEFAULT_PRECISION,
        help_text="Target standard error of each expectation value.",
    )
    observables = forms.CharField(
        required=False,
        max_length=2000,
        help_text='Comma-separated Pauli strings as wide as the circuit, such as "ZZ, XX".',
    )
    circuit = forms.CharField(
        label="Circuit (OpenQASM 2 or 3)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "cols": 60, "spellcheck": "false"}),
    )
    transpile = transpile_field()
    session = forms.CharField(required=False, widget=SessionSelect)
    max_execution_time = forms.IntegerField(
        label="Max execution time (s)",
        min_value=1,
        max_value=86_400,
        required=False,
        help_text="Optional; the job fails when it runs longer.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.notes: list[str] = []  # what the page tells after submitting (the transpilation)
        instance_field = self.fields["instance"]
        assert isinstance(instance_field, forms.ModelChoiceField)
        instance_field.queryset = selectors.instances_of(user=user)
        sessions = list(selectors.sessions_joinable(user=user))
        widget = self.fields["session"].widget
        assert isinstance(widget, SessionSelect)
        widget.choices = [
            (NO_SESSION, "none"),
            (NEW_SESSION, "start a new session"),
            *[
                (s.uid, f"join {s.uid} on {s.backend.name} ({s.instance.path}, {s.state})")
                for s in sessions
            ],
        ]
        widget.backends = {s.uid: s.backend.name for s in sessions}

    def clean_session(self) -> str:
        value: str = self.cleaned_data["session"]
        if value in (NO_SESSION, NEW_SESSION):
            return value
        # Closed sessions are refused by the scheduler itself, with their own message.
        if not models.Session.objects.filter(uid=value, owner_id=self.user.pk).exists():
            raise forms.ValidationError("Unknown session.", code="unknown_session")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        program, text, backend = data.get("primitive"), data.get("circuit"), data.get("backend")
        if program is None or text is None or backend is None:
            return data
        device = device_of(backend) if data.get("transpile") else None
        try:
            if device is not None:  # scheduler.devices.transpile
                transpiled = limits.decode(
                    transpile.qasm_params,
                    program,
                    text,
                    shots=data.get("shots"),
                    precision=data.get("precision"),
                    observables=data.get("observables") or "",
                    limits=limits.input_limits(),
                    device=device,
                    caller=f"user:{self.user.pk}",
                )
                data["params"] = transpiled.params
                self.notes.append(transpiled.summary(backend.name))
                return data
            data["params"] = limits.decode(
                circuits.qasm_params,
                program,
                text,
                shots=data.get("shots"),
                precision=data.get("precision"),
                observables=data.get("observables") or "",
                backend_qubits=backend.num_qubits,
                limits=limits.input_limits(),
                caller=f"user:{self.user.pk}",
            )
        except circuits.CircuitError as error:
            self.add_error(error.field, str(error))
        except limits.DecodeBusy as busy:
            self.add_error(None, busy.message)
        except DeviceUnavailable as error:
            self.add_error("backend", f"{backend.name} is offline: {error}")
        return data

    def job_request(self) -> JobRequest:
        """The valid form as the arguments of `jobs_submit`."""
        data = self.cleaned_data
        seconds = data.get("max_execution_time")
        session = data.get("session") or NO_SESSION
        return JobRequest(
            backend=data["backend"],
            instance=data["instance"],
            program_id=data["primitive"],
            params=data["params"],
            session_id=session if session not in (NO_SESSION, NEW_SESSION) else None,
            start_session=session == NEW_SESSION,
            max_execution_time=timedelta(seconds=seconds) if seconds else None,
        )

    def add_refusal(self, code: str, message: str) -> None:
        """Show a refusal of the scheduler next to the field it concerns."""
        self.add_error(REFUSAL_FIELDS.get(code), message)
