"""A completed job's results as chart data."""

from __future__ import annotations

import json
from typing import Any

from scheduler import models


def job_result_chart(job: models.Job) -> dict[str, Any] | None:
    """Chart data of a completed job: counts per bitstring, or expectation values ± std."""
    if not job.result or job.program_id not in ("sampler", "estimator"):
        return None  # an executor program's result is the client's to post-process
    from qiskit_ibm_runtime import RuntimeDecoder

    text = job.result if isinstance(job.result, str) else json.dumps(job.result)
    result = json.loads(text, cls=RuntimeDecoder)
    if job.program_id == "estimator":
        pubs = []
        for index, pub in enumerate(result):
            evs = _flat(pub.data.evs)
            stds = _flat(getattr(pub.data, "stds", [0] * len(evs)))
            pubs.append({"pub": index, "evs": evs, "stds": stds})
        return {"kind": "estimator", "pubs": pubs}
    pubs = []
    for index, pub in enumerate(result):
        for name in sorted(pub.data.keys()):
            counts = getattr(pub.data, name).get_counts()
            keys = sorted(counts)
            pubs.append({"pub": index, "register": name, "x": keys, "y": [counts[k] for k in keys]})
    return {"kind": "sampler", "pubs": pubs}


def _flat(values: Any) -> list[float]:
    try:
        return [float(v) for v in values.ravel()]
    except AttributeError:
        return [float(values)]
