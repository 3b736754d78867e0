"""Circuit input for the browser and the API: OpenQASM text, primitive params, PUBs.

Pure functions, no Django; one module per concern:

- `qasm`: OpenQASM 2 and 3 text, the form's examples, and the form's one-PUB job;
- `params`: `params` in the Qiskit Runtime wire format, and the defaults they imply;
- `pubs`: a job's PUBs decoded from its `params`, inspected, their executions counted;
- `limits`: the largest input a job may have, and the checks that refuse larger input;
- `errors`: `CircuitError`, bad input as the form and the API show it.

Callers import from here (`from scheduler import circuits`). The sandboxes' forkservers
preload the modules whose functions their workers run (`scheduler.limits`,
`scheduler.caps`).
"""

from scheduler.circuits.errors import CircuitError, one_line
from scheduler.circuits.limits import (
    Cost,
    Limits,
    check_declarations,
    check_observable_terms,
    check_size,
    run_cost,
)
from scheduler.circuits.params import (
    DEFAULT_PRECISION,
    DEFAULT_SHOTS,
    ESTIMATOR,
    EXECUTOR,
    PROGRAMS,
    SAMPLER,
    RunDefaults,
    estimator_params,
    pubs_params,
    run_defaults,
    sampler_params,
)
from scheduler.circuits.pubs import (
    Inspection,
    Pub,
    check_fits,
    check_width,
    count_executions,
    decode_pubs,
    inspect,
    precision_shots,
)
from scheduler.circuits.qasm import (
    EXAMPLES,
    ghz,
    parse_observables,
    parse_qasm,
    primitive_params,
    qasm_params,
)

__all__ = [
    "DEFAULT_PRECISION",
    "DEFAULT_SHOTS",
    "ESTIMATOR",
    "EXAMPLES",
    "EXECUTOR",
    "PROGRAMS",
    "SAMPLER",
    "CircuitError",
    "Cost",
    "Inspection",
    "Limits",
    "Pub",
    "RunDefaults",
    "check_declarations",
    "check_fits",
    "check_observable_terms",
    "check_size",
    "check_width",
    "count_executions",
    "decode_pubs",
    "estimator_params",
    "ghz",
    "inspect",
    "one_line",
    "parse_observables",
    "parse_qasm",
    "precision_shots",
    "primitive_params",
    "qasm_params",
    "run_cost",
    "run_defaults",
    "pubs_params",
    "sampler_params",
]
