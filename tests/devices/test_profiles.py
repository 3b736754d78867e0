"""Device profiles come from the installed client's fake provider."""

from __future__ import annotations

import pytest

from scheduler.devices import profiles


def test_the_shipped_devices_are_listed_from_the_installed_package() -> None:
    names = profiles.names()
    assert {"sherbrooke", "kyiv", "torino", "fez"} <= set(names)
    assert len(names) >= 60 and list(names) == sorted(names)


def test_a_profile_reads_the_devices_configuration_without_its_pulse_fields() -> None:
    conf = profiles.configuration("sherbrooke")
    assert conf["n_qubits"] == 127 and conf["basis_gates"] == ["ecr", "id", "rz", "sx", "x"]
    assert len(conf["coupling_map"]) == 144 and "if_else" in conf["supported_instructions"]
    assert "hamiltonian" not in conf and "channels" not in conf
    conf["n_qubits"] = 0  # a copy: the next reader gets the device again
    assert profiles.configuration("sherbrooke")["n_qubits"] == 127


def test_a_profile_summary_names_its_qubits_processor_and_two_qubit_gate() -> None:
    assert profiles.summary("torino") == "torino: 133 qubits, Heron 1, cz"


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(profiles.UnknownProfile, match="'brisbane2' is not a device"):
        profiles.configuration("brisbane2")
