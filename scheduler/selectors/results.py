"""A completed job's results as the job page shows them and as its downloads give them.

Results are decoded with the client's own decoders for the job's program, so the page
shows what `job.result()` returns in a notebook: a sampler's bit arrays, an estimator's
expectation values, and for the `executor` program what the client's executor decoders
make of it (a Sampler's or Estimator's `PrimitiveResult`, or the program's items).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scheduler import models

log = logging.getLogger(__name__)

TOP_OUTCOMES = 16  # outcomes per register in the page's table (the chart and download have all)
CHART_OUTCOMES = 256  # most frequent outcomes per register in the chart
CHART_VALUES = 1000  # expectation values per PUB in the chart
MAX_EXPECTATIONS = 100  # expectation values in the page's table
BITSTRINGS_MAX_BYTES = 64 * 2**20  # largest bitstrings download


class ResultUnavailable(Exception):
    """A result the page or a download cannot give; `message` is one line for the user."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True, kw_only=True)
class RegisterCounts:
    """Counts of one classical register of one PUB, over all its parameter sets."""

    pub: int
    register: str
    num_bits: int
    num_shots: int
    parameter_sets: int
    outcomes: int  # distinct bitstrings
    top: list[tuple[str, int]]  # most frequent first


@dataclass(frozen=True, kw_only=True)
class Expectation:
    pub: int
    index: str  # the position in the PUB's broadcast shape, "" for one value
    observable: str
    value: float
    std: float | None


@dataclass(frozen=True, kw_only=True)
class ItemOutput:
    """One named array of a program item's result."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    summary: str


@dataclass(frozen=True, kw_only=True)
class ProgramItem:
    index: int
    outputs: list[ItemOutput]


@dataclass(kw_only=True)
class JobResults:
    """What the job page shows of a result; `error` when it could not be read."""

    kind: str = ""  # "sampler", "estimator" or "program" (an executor's own items)
    role: str = ""  # for the executor program: "Sampler" or "Estimator" when it played one
    registers: list[RegisterCounts] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    expectations_left: int = 0  # not in the table (they are in the downloads)
    items: list[ProgramItem] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    error: str = ""


def result_text(job: models.Job) -> str:
    """The stored result as the client receives it from `/jobs/{id}/results`."""
    if job.status != models.Job.Status.COMPLETED or job.result is None:
        raise ResultUnavailable(
            "no_result", f"Job {job.uid} has no result (status {job.status}).", 409
        )
    return job.result if isinstance(job.result, str) else json.dumps(job.result)


def decode(job: models.Job) -> tuple[Any, Any]:
    """The result decoded by the client's decoders for the job's program, and the
    executor program's passthrough data (None for other programs)."""
    text = result_text(job)
    try:
        return _decode(job.program_id, text)
    except Exception as error:  # decoders raise JSON, pydantic, numpy and value errors
        log.warning("job %s: result does not decode: %s", job.uid, error)
        raise ResultUnavailable(
            "unreadable_result",
            f"The result of job {job.uid} does not decode as the client decodes results of "
            f"the {job.program_id} program.",
            409,
        ) from error


def _decode(program_id: str, text: str) -> tuple[Any, Any]:
    from qiskit_ibm_runtime.decoders.defaults import DEFAULT_DECODERS
    from qiskit_ibm_runtime.decoders.result_decoder import ResultDecoder

    # As `RuntimeJobV2.result()` does: each applicable decoder takes the previous one's output.
    result: Any = text
    passthrough = None
    for decoder in DEFAULT_DECODERS.get(program_id, [ResultDecoder]):
        if decoder.is_applicable(result):
            result = decoder.decode(result)
            passthrough = getattr(result, "passthrough_data", passthrough)
    return result, passthrough


def job_results(job: models.Job) -> JobResults | None:
    """A completed job's results for its page; None while it has none."""
    if job.status != models.Job.Status.COMPLETED or job.result is None:
        return None
    try:
        result, passthrough = decode(job)
        shown = _present(result, observables=_observable_labels(job, passthrough))
    except ResultUnavailable as error:
        return JobResults(error=error.message)
    except Exception:  # a decoded result of a shape the page does not know
        log.warning("job %s: result cannot be shown", job.uid, exc_info=True)
        return JobResults(error=f"The result of job {job.uid} has a form this page cannot show.")
    if job.program_id == "executor":
        shown.role = {"sampler": "Sampler", "estimator": "Estimator"}.get(shown.kind, "")
    return shown


def _present(result: Any, *, observables: list[Any]) -> JobResults:
    from qiskit.primitives import BitArray, PrimitiveResult

    if not isinstance(result, PrimitiveResult):
        return JobResults(kind="program", items=_program_items(result))
    pubs = list(result)
    if all(hasattr(pub.data, "evs") for pub in pubs):
        return _estimator(pubs, observables)
    for pub in pubs:
        if not all(isinstance(value, BitArray) for value in pub.data.values()):
            raise TypeError("a PUB result is neither a sampler's nor an estimator's")
    return _sampler(pubs)


def _sampler(pubs: list[Any]) -> JobResults:
    registers, chart = [], []
    for index, pub in enumerate(pubs):
        for name in sorted(pub.data.keys()):
            bits = getattr(pub.data, name)
            counts = Counter(bits.get_counts())
            ranked = counts.most_common()
            registers.append(
                RegisterCounts(
                    pub=index,
                    register=name,
                    num_bits=bits.num_bits,
                    num_shots=bits.num_shots,
                    parameter_sets=int(np.prod(bits.shape, dtype=int)),
                    outcomes=len(ranked),
                    top=ranked[:TOP_OUTCOMES],
                )
            )
            keys = sorted(key for key, _ in ranked[:CHART_OUTCOMES])
            chart.append(
                {"pub": index, "register": name, "x": keys, "y": [counts[k] for k in keys]}
            )
    return JobResults(kind="sampler", registers=registers, chart={"kind": "sampler", "pubs": chart})


def _estimator(pubs: list[Any], observables: list[Any]) -> JobResults:
    rows: list[Expectation] = []
    chart, total = [], 0
    for index, pub in enumerate(pubs):
        evs = np.asarray(pub.data.evs, dtype=float)
        stds = getattr(pub.data, "stds", None)
        stds = None if stds is None else np.broadcast_to(np.asarray(stds, dtype=float), evs.shape)
        labels = _broadcast(observables[index] if index < len(observables) else None, evs.shape)
        total += evs.size
        room = max(0, MAX_EXPECTATIONS - len(rows))
        for position in itertools.islice(np.ndindex(evs.shape), room):
            rows.append(
                Expectation(
                    pub=index,
                    index=", ".join(str(i) for i in position),
                    observable="" if labels is None else str(labels[position]),
                    value=float(evs[position]),
                    std=None if stds is None else float(stds[position]),
                )
            )
        shown = evs.ravel()[:CHART_VALUES]
        errors = np.zeros_like(shown) if stds is None else stds.ravel()[:CHART_VALUES]
        chart.append({"pub": index, "evs": shown.tolist(), "stds": errors.tolist()})
    return JobResults(
        kind="estimator",
        expectations=rows,
        expectations_left=total - len(rows),
        chart={"kind": "estimator", "pubs": chart},
    )


def _broadcast(labels: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """A PUB's observable labels in the shape of its expectation values, if they fit."""
    if labels is None:
        return None
    try:
        return np.broadcast_to(np.array(labels, dtype=object), shape)
    except ValueError:  # ragged, or not the shape the values broadcast from
        return None


def _program_items(result: Any) -> list[ProgramItem]:
    items = []
    for index, item in enumerate(result):
        outputs = [_output(name, np.asarray(value)) for name, value in sorted(dict(item).items())]
        items.append(ProgramItem(index=index, outputs=outputs))
    return items


def _output(name: str, array: np.ndarray) -> ItemOutput:
    if array.dtype == bool and array.ndim >= 2 and array.shape[-1]:
        rows = array.reshape(-1, array.shape[-1])
        unique, counts = np.unique(rows, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        # Column i is classical bit i (the executor's little-endian order): print it rightmost.
        top = ", ".join(
            "".join("1" if bit else "0" for bit in unique[i][::-1]) + f" ({counts[i]})"
            for i in order[:4]
        )
        more = f" and {len(unique) - 4} more" if len(unique) > 4 else ""
        bits = f"{array.shape[-1]} bit{'s' if array.shape[-1] != 1 else ''}"
        summary = f"{len(rows)} bitstrings of {bits}; most frequent {top}{more}"
    elif array.size and np.issubdtype(array.dtype, np.number):
        values = array.astype(float)
        summary = f"mean {values.mean():.4g}, min {values.min():.4g}, max {values.max():.4g}"
    else:
        summary = f"{array.size} values"
    return ItemOutput(name=name, shape=tuple(array.shape), dtype=str(array.dtype), summary=summary)


def _observable_labels(job: models.Job, passthrough: Any) -> list[Any]:
    """Each estimator PUB's observables as text, nested as the job's inputs nest them: the
    estimator's PUBs, or what the client-side Estimator passes through the executor."""
    if job.program_id == "estimator":
        pubs = job.params.get("pubs") if isinstance(job.params, dict) else None
        observables = [
            pub[1] if isinstance(pub, list) and len(pub) > 1 else None for pub in pubs or []
        ]
    elif isinstance(passthrough, dict) and isinstance(passthrough.get("qiskit_mitigation"), list):
        # One entry per PUB with its observables; calibration items have none.
        entries = passthrough["qiskit_mitigation"]
        observables = [
            e["observables"] for e in entries if isinstance(e, dict) and "observables" in e
        ]
    else:
        return []
    labels = []
    for each in observables:
        try:
            labels.append(_labels(each))
        except (TypeError, ValueError):
            labels.append(None)
    return labels


def _labels(observables: Any) -> Any:
    """Text for each observable of the client's JSON (a Pauli string, or a dict of Pauli
    strings and coefficients), in nested lists as the observables array has them."""
    if isinstance(observables, str):
        return observables
    if isinstance(observables, dict) and "__type__" not in observables:
        return " + ".join(
            pauli if coeff == 1 else f"{float(coeff):g}·{pauli}"
            for pauli, coeff in observables.items()
        )
    if isinstance(observables, list):
        return [_labels(element) for element in observables]
    raise ValueError("not an observable")


# ------------------------------------------------------------------ downloads
def job_bitstrings(job: models.Job) -> dict[str, Any]:
    """Every shot's bitstring per PUB and register, as `BitArray.get_bitstrings()` lists
    them (parameter sets in order, then shots; bit 0 rightmost)."""
    from qiskit.primitives import BitArray, PrimitiveResult

    result, _ = decode(job)
    pubs = list(result) if isinstance(result, PrimitiveResult) else []
    arrays = [
        {name: value for name, value in pub.data.items() if isinstance(value, BitArray)}
        for pub in pubs
    ]
    if not pubs or not all(arrays):
        raise ResultUnavailable(
            "no_bitstrings", f"The result of job {job.uid} has no bitstrings.", 404
        )
    size = sum(
        bits.size * bits.num_shots * (bits.num_bits + 4)
        for registers in arrays
        for bits in registers.values()
    )
    if size > BITSTRINGS_MAX_BYTES:
        raise ResultUnavailable(
            "too_large",
            f"The bitstrings of job {job.uid} would take ~{size // 2**20} MB, more than "
            f"{BITSTRINGS_MAX_BYTES // 2**20} MB; download the result JSON instead.",
            413,
        )
    return {
        "job": job.uid,
        "pubs": [
            {
                "pub": index,
                "registers": {
                    name: {
                        "num_bits": bits.num_bits,
                        "num_shots": bits.num_shots,
                        "shape": list(bits.shape),
                        "bitstrings": bits.get_bitstrings(),
                    }
                    for name, bits in sorted(registers.items())
                },
            }
            for index, registers in enumerate(arrays)
        ],
    }
