"""The API and the decoders under generated input (`make bench ARGS=--fuzz`). Counts,
never asserts.

Two parts:

- **schemathesis** against a real `manage.py serve --demo` on a scratch SQLite
  database: every operation of `/api/v1/openapi.json` gets positive and negative
  generated requests from the demo researcher alice (API key, `Service-CRN`),
  with path parameters aimed now and then at her own job or session, at another
  user's, or left as generated; then schemathesis' stateful testing follows the
  schema's OpenAPI links (a created job or session to the operations taking its
  id). Each answer is checked: a 5xx is a server error; a status, content type,
  header or body the schema does not declare is a schema violation. The
  per-key request limit, the bad-key limit, queued jobs and open sessions per
  user are raised for the run, so the fuzz reaches the operations instead of
  the throttle; 429s that remain are counted by their code.
- **hypothesis** over the OpenQASM decoder and the PUB and params decoders
  (`tests.acceptance.fuzz.decoders`, in its own interpreter with the settings loaded), with
  malformed input: anything other than the project's clean refusals is an
  unexpected exception.

The target: 0 server errors, 0 schema violations, 0 unexpected exceptions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.core import ROOT
from tests.acceptance.common import free_port
from tests.acceptance.fuzz import hostile
from tests.acceptance.fuzz.api import fuzz_api
from tests.acceptance.fuzz.config import INSTANCE, FuzzConfig, FuzzResult
from tests.acceptance.fuzz.server import Server


def run(config: FuzzConfig, workdir: Path) -> FuzzResult:
    """Start the server, fuzz its API, stop it; then fuzz the decoders."""
    result = FuzzResult(port=config.port or free_port(range(8750, 8800)))
    server = Server(workdir, result.port)
    server.start()
    try:
        start = time.perf_counter()
        fuzz_api(server, config, result)
        result.api_seconds = time.perf_counter() - start
        if config.hostile_per_shape:
            result.hostile = _hostile(server, config)
        result.alive_after = server.alive()
    finally:
        server.stop()
    result.logged_server_errors = server.logged_server_errors()
    start = time.perf_counter()
    result.decoders = _fuzz_decoders(config, workdir)
    result.decoder_seconds = time.perf_counter() - start
    return result


def _hostile(server: Server, config: FuzzConfig) -> hostile.HostileResult:
    server.manage("shell", "-c", hostile.ADD_BACKEND)
    headers = {"Authorization": f"Bearer {server.api_key('alice')}", "Service-CRN": INSTANCE}
    print(f"hostile programs: {config.hostile_per_shape} per shape", flush=True)
    return hostile.run(server.base, headers, server.database, config.hostile_per_shape, config.seed)


def _fuzz_decoders(config: FuzzConfig, workdir: Path) -> dict[str, dict[str, Any]]:
    out = workdir / "decoders.json"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'decoders.sqlite3'}"}
    command = [sys.executable, "-m", "tests.acceptance.fuzz.decoders", "--examples"]
    command += [str(config.decoder_examples), "--seed", str(config.seed), "--result", str(out)]
    subprocess.run(command, cwd=ROOT, env={**env, "REDIS_URL": ""}, check=True)
    answer: dict[str, dict[str, Any]] = json.loads(out.read_text())
    return answer
