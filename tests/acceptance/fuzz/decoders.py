"""The decoder part of `python -m bench --fuzz`, in its own interpreter (started by
its harness) with the settings loaded.

hypothesis feeds malformed input to what turns untrusted input into work, each
called the way the app calls it:

- OpenQASM text, as the submission form decodes it (`circuits.qasm_params` in the
  decoding sandbox, under the input limits);
- a job's `params`, as `POST /jobs` checks them (`circuits.inspect` in the sandbox);
- the raw body of `POST /jobs` (`api.jobs._job_payload`: JSON, then `JobIn`);
- the other request bodies (`SessionIn`, `SessionPatch`, `TagsIn`).

A clean refusal is `CircuitError` for circuits and params, `ApiError` (a 4xx)
for raw bodies, pydantic's `ValidationError` for the schemas; anything else is
an unexpected exception. Writes the counts as JSON to `--result`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

FAILURES_KEPT = 3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.acceptance.fuzz.decoders")
    parser.add_argument("--examples", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    result = {}
    for name, (what, strategy, call, clean) in decoders().items():
        print(f"  {name}: {args.examples} examples", flush=True)
        result[name] = {"what": what, **fuzz(strategy, call, clean, args.examples, args.seed)}
    Path(args.result).write_text(json.dumps(result))


def fuzz(
    strategy: st.SearchStrategy[Any],
    call: Callable[[Any], Any],
    clean: tuple[type[BaseException], ...],
    examples: int,
    at_seed: int,
) -> dict[str, Any]:
    """Call `call` on `examples` generated inputs; count refusals, acceptances, surprises."""
    counts: dict[str, Any] = {
        "examples": 0,
        "refused": 0,
        "accepted": 0,
        "unexpected": 0,
        "failures": [],
    }

    @given(value=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(at_seed)
    def one(value: Any) -> None:
        counts["examples"] += 1
        try:
            call(value)
        except clean:
            counts["refused"] += 1
            return
        except Exception as error:
            counts["unexpected"] += 1
            if len(counts["failures"]) < FAILURES_KEPT:
                shown = repr(value)
                shown = shown if len(shown) < 300 else shown[:297] + "..."
                counts["failures"].append(f"{type(error).__name__}: {error} on {shown}"[:600])
            return
        counts["accepted"] += 1

    one()
    return counts


# ------------------------------------------------------------------ decoders
def decoders() -> dict[str, tuple[str, st.SearchStrategy[Any], Callable[[Any], Any], tuple]]:
    import pydantic
    from django.test import RequestFactory

    from scheduler import circuits, limits
    from scheduler.api import schemas
    from scheduler.api.errors import ApiError
    from scheduler.api.jobs import _job_payload

    bounds = limits.input_limits()

    def qasm(value: tuple[str, str, int | None, str]) -> None:
        program_id, text, shots, observables = value
        limits.decode(
            circuits.qasm_params,
            program_id,
            text,
            shots=shots,
            precision=None,
            observables=observables,
            backend_qubits=127,
            limits=bounds,
            caller="fuzz",
        )

    def params(value: tuple[str, Any]) -> None:
        program_id, raw = value
        limits.decode(circuits.inspect, program_id, raw, bounds, caller="fuzz")

    factory = RequestFactory()

    def body(raw: bytes) -> None:
        request = factory.post("/api/v1/jobs", raw, content_type="application/json")
        _job_payload(request)

    def shapes(value: tuple[type[Any], Any]) -> None:
        schema, data = value
        schema.model_validate(data)

    bodies = st.sampled_from([schemas.SessionIn, schemas.SessionPatch, schemas.TagsIn])
    shaped = bodies.flatmap(lambda schema: st.tuples(st.just(schema), near(schema)))
    return {
        "qasm": (
            "OpenQASM text (`circuits.qasm_params`, sandboxed)",
            st.tuples(programs(), qasm_texts(), shots(), st.text(max_size=40)),
            qasm,
            (circuits.CircuitError,),
        ),
        "params": (
            "job `params` and PUBs (`circuits.inspect`, sandboxed)",
            st.tuples(programs(), job_params()),
            params,
            (circuits.CircuitError,),
        ),
        "job_body": (
            "raw `POST /jobs` body (`_job_payload`, `JobIn`)",
            raw_bodies(),
            body,
            (ApiError,),
        ),
        "bodies": (
            "`SessionIn`, `SessionPatch`, `TagsIn`",
            st.one_of(shaped, st.tuples(bodies, json_values())),
            shapes,
            (pydantic.ValidationError,),
        ),
    }


def near(schema: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the schema's own field names (each maybe missing) and any values."""
    fields = {name: json_values() for name in schema.model_fields}
    typical = {
        "backend": st.text(max_size=10),
        "mode": st.sampled_from(["dedicated", "batch", "exclusive", ""]),
        "accepting_jobs": st.booleans(),
        "tags": st.lists(st.text(max_size=10), max_size=5),
    }
    for name, strategy in typical.items():
        if name in fields:
            fields[name] = st.one_of(strategy, fields[name])
    return st.fixed_dictionaries({}, optional=fields)


def programs() -> st.SearchStrategy[str]:
    return st.sampled_from(["sampler", "estimator", "sampler", "estimator", "", "Sampler"])


def shots() -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.integers(-10, 10), st.integers(-(10**30), 10**30))


# ------------------------------------------------------------------ OpenQASM
NUMBERS = ["0", "1", "2", "5", "-1", "1e9", "10**30", "2**64", "99999999999999999999", "0x10"]
NUMBERS += ["1.5", "pi", "nan", "", " ", "n", "1+1", "(1)", "100000000", "1000"]
NAMES = ["q", "c", "r", "q[0]", "q[1]", "q[-1]", "q[99]", "c[0]", "$0", "qelib1", "pi", "U"]
GATES = ["h", "x", "cx", "u", "U", "rz", "p", "cp", "ccx", "swap", "measure", "reset", "barrier"]
GATES += ["gate", "opaque", "if", "for", "while", "def", "box", "include", "OPENQASM", "ctrl @"]
PUNCT = [";", ",", "(", ")", "[", "]", "{", "}", "->", "=", "==", "+", "*", "/", "**", "//", "/*"]
PUNCT += ["*/", '"', "'", "\n", " ", "\t", "\x00", "é", "𝜋", "\\", "@", "#", ":"]


def qasm_texts() -> st.SearchStrategy[str]:
    """Token soups behind a valid-looking header, mutated examples, and plain noise."""
    token = st.one_of(
        st.sampled_from(NUMBERS),
        st.sampled_from(NAMES),
        st.sampled_from(GATES),
        st.sampled_from(PUNCT),
        st.sampled_from(
            [
                "qreg q[",
                "creg c[",
                "qubit[",
                "bit[",
                "qubit q;",
                'include "qelib1.inc";',
                'include "stdgates.inc";',
                'include "/etc/passwd";',
                "measure q -> c;",
                "c = measure q;",
            ]
        ),
    )
    header = st.sampled_from(
        ["OPENQASM 2.0;\n", "OPENQASM 3.0;\n", "OPENQASM 3;\n", "OPENQASM 4.0;\n", "OPENQASM", ""]
    )
    includes = st.sampled_from(['include "qelib1.inc";\n', 'include "stdgates.inc";\n', ""])
    soup = st.builds(
        lambda h, i, tokens: h + i + " ".join(tokens),
        header,
        includes,
        st.lists(token, max_size=40),
    )
    return st.one_of(soup, declarations(), statements(), mutated_examples(), st.text(max_size=300))


QELIB = ["u3", "u2", "u1", "cx", "id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "rx", "ry"]
QELIB += ["rz", "cz", "cy", "ch", "ccx", "crz", "cu1", "cu3", "swap", "cswap", "u", "p", "cp"]
QELIB += ["sx", "sxdg", "rxx", "rzz", "crx", "cry", "cu", "rccx", "rc3x", "c3x", "c3sqrtx", "c4x"]
QELIB += ["U", "CX", "measure", "reset", "barrier", "opaque", "gate", "nosuch"]
ARGUMENTS = ["q[0]", "q[1]", "q[2]"] * 4 + ["q[3]", "q", "c[0]", "c", "r[0]", "q[-1]", "q[0][0]"]
PARAMETERS = ["0", "1", "pi", "pi/2", "-pi", "0.5"] * 2
PARAMETERS += ["1e308*10", "0/0", "1/0", "sin(1)", "ln(0)", "sqrt(-1)", "x", "2^1024", "-0"]


def statements() -> st.SearchStrategy[str]:
    """A declared 3-qubit program of gate statements with any number of parameters and
    arguments: arities and kinds the gates do not take."""
    parameters = st.lists(st.sampled_from(PARAMETERS), max_size=3).map(
        lambda values: f"({', '.join(values)})" if values else ""
    )
    arguments = st.lists(st.sampled_from(ARGUMENTS), min_size=1, max_size=3).map(", ".join)
    statement = st.builds(
        lambda gate, params, args, arrow: f"{gate}{params} {args}{arrow};",
        st.sampled_from(QELIB),
        st.one_of(st.just(""), parameters),
        arguments,
        st.sampled_from(["", "", "", " -> c[0]", " -> c"]),
    )
    conditional = st.builds(lambda body: f"if (c == 1) {body}", statement)
    header = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\n'
    return st.lists(st.one_of(statement, conditional), min_size=1, max_size=3).map(
        lambda lines: header + "\n".join(lines) + "\n"
    )


SIZES = ["0", "1", "2", "127", "128", "999", "1000", "1001", "10000", "10001", "-1", "1.5"]
SIZES += ["(10)", "2**10", "2**64", "10**30", "1000*1000", "1e3", "0x7f", "99999999999999999999"]


def declarations() -> st.SearchStrategy[str]:
    """Programs that declare registers of many sizes, literal and computed: sizes are
    checked before the circuit is built, or capped while it is."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        version = draw(st.sampled_from(["2.0", "3.0"]))
        lines = [f"OPENQASM {version};"]
        lines.append('include "qelib1.inc";' if version == "2.0" else 'include "stdgates.inc";')
        for name in draw(st.lists(st.sampled_from(["q", "r", "c", "d"]), min_size=1, max_size=3)):
            size = draw(st.sampled_from(SIZES))
            quantum = name in ("q", "r")
            if version == "2.0":
                lines.append(f"{'qreg' if quantum else 'creg'} {name}[{size}];")
            else:
                lines.append(f"{'qubit' if quantum else 'bit'}[{size}] {name};")
        body = ["h q[0];", "cx q[0], q[1];", "measure q -> c;", "c = measure q;", "x r;"]
        lines += draw(st.lists(st.sampled_from(body), max_size=3))
        return "\n".join(lines) + "\n"

    return build()


def mutated_examples() -> st.SearchStrategy[str]:
    from scheduler import circuits

    @st.composite
    def build(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(list(circuits.EXAMPLES.values())))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 8))
            insert = draw(st.one_of(st.sampled_from(NUMBERS + PUNCT + GATES), st.text(max_size=5)))
            text = text[:at] + insert + text[at + cut :]
        return text

    return build()


# ------------------------------------------------------------------ params
def json_values(leaves: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    base = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )
    if leaves is not None:
        base = st.one_of(base, leaves)
    return st.recursive(
        base,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def _valid() -> dict[str, dict[str, Any]]:
    from scheduler import circuits

    bell = circuits.parse_qasm(circuits.EXAMPLES["bell"])
    return {
        "sampler": circuits.sampler_params([bell], 100),
        "estimator": circuits.estimator_params(bell, ["ZZ", "XX"]),
    }


def _encoded(kind: str, payload: bytes) -> dict[str, Any]:
    return {"__type__": kind, "__value__": base64.b64encode(zlib.compress(payload)).decode()}


def job_params() -> st.SearchStrategy[Any]:
    """Valid params with parts replaced, typed values of the wire format with bad
    payloads, and arbitrary JSON."""
    valid = _valid()
    circuit = valid["sampler"]["pubs"][0][0]
    blobs = st.binary(max_size=200)
    wire = st.one_of(
        st.just(circuit),
        st.builds(_encoded, st.sampled_from(["QuantumCircuit", "ndarray", "Parameter"]), blobs),
        st.builds(
            lambda kind, value: {"__type__": kind, "__value__": value},
            st.sampled_from(["QuantumCircuit", "ndarray", "complex", "set", "to_json", "x"]),
            json_values(),
        ),
    )
    values = json_values(wire)
    pub = st.lists(values, max_size=4)

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        params = json.loads(json.dumps(valid[draw(st.sampled_from(["sampler", "estimator"]))]))
        part = draw(st.sampled_from(["pubs", "pub", "item", "options", "shots", "drop"]))
        if part == "pubs":
            params["pubs"] = draw(st.lists(st.one_of(pub, values), max_size=4))
        elif part == "pub":
            params["pubs"][0] = draw(pub)
        elif part == "item":
            items = params["pubs"][0]
            items[draw(st.integers(0, len(items) - 1))] = draw(values)
        elif part == "options":
            params["options"] = draw(
                st.one_of(
                    values,
                    st.dictionaries(
                        st.sampled_from(
                            ["default_shots", "default_precision", "simulator", "seed_estimator"]
                        ),
                        st.one_of(values, st.dictionaries(st.just("seed_simulator"), values)),
                    ),
                )
            )
        elif part == "shots":
            params["pubs"][0] = [*params["pubs"][0][:2], draw(values)]
        else:
            params.pop(draw(st.sampled_from(sorted(params))))
        return params

    return st.one_of(mutated(), values)


def raw_bodies() -> st.SearchStrategy[bytes]:
    valid = _valid()["sampler"]
    body = st.fixed_dictionaries(
        {"program_id": programs(), "backend": st.just("sim_a"), "params": st.just(valid)},
        optional={
            "session_id": json_values(),
            "start_session": json_values(),
            "tags": json_values(),
            "cost": json_values(),
            "max_execution_time": json_values(),
            "log_level": json_values(),
        },
    )
    as_json = st.one_of(body, json_values()).map(lambda value: json.dumps(value).encode())
    deep = st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n)
    return st.one_of(as_json, deep, st.binary(max_size=200))


if __name__ == "__main__":
    main()
