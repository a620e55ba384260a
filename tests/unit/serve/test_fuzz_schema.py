"""A schema-driven fuzzer (issue 16): schemathesis generates requests, valid and invalid, from the
app's own OpenAPI schema and sends them in-process (ASGI, no network) to the app on the fake LLM.
No response may be a server error (5xx other than 503 + Retry-After, the documented "busy"), and
every response must match what the schema documents for its status.

Budget: ``FUZZ_EXAMPLES`` valid and as many invalid examples per operation (default 10: about 40 s on 2 busy cores).
``FUZZ_RESULTS=benchmarks/results/fuzz.json`` also writes the requests sent and statuses seen.
"""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from chatrec.config import ServeSettings
from chatrec.serve.app import create_app

ADMIN = "fuzz-admin-token"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SEEN: collections.Counter[tuple[str, str, int]] = collections.Counter()
STARTED = time.monotonic()


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, kb, shared_index):
    from chatrec.chatbot import Chatbot
    from chatrec.llm.fake import FakeLLM
    from tests_support import fake_settings

    bot = Chatbot(fake_settings(tmp_path_factory.mktemp("fuzz")), llm=FakeLLM(), kb=kb, index=shared_index)
    settings = ServeSettings(
        ui="off", docs="on", admin_token=ADMIN, rate_per_minute_ip=0, rate_per_minute_key=0, rate_per_minute_ip_all=0
    )
    app = create_app(bot, settings)
    yield app
    record()


def fuzz_operation(operation, mode: GenerationMode, failures: list[str]) -> None:
    """``EXAMPLES`` generated requests of ``mode`` against one operation; failures are collected."""
    admin = {"Authorization": f"Bearer {ADMIN}"} if operation.path.startswith("/v1/admin") else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call(headers=admin, timeout=120)
        SEEN[(case.method.upper(), case.path, response.status_code)] += 1
        if response.status_code == 503 and "retry-after" in {k.lower() for k in response.headers}:
            return  # the documented "busy / a dependency is down" answer
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
            )
        except BaseExceptionGroup as exc:  # schemathesis raises a FailureGroup of the failed checks
            failures.append(f"{case.method} {case.path} ({mode.value}): {str(exc)[:600]}")

    try:
        run()
    except Unsatisfiable:  # nothing invalid to send: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE


def test_fuzz_schema_no_server_error_and_no_schema_violation(fuzz_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 8
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, failures)
    assert sum(SEEN.values()) >= len(operations) * 2
    assert not failures, "\n\n".join(failures[:10])


def record() -> None:
    """Requests sent and statuses seen, per operation, to ``FUZZ_RESULTS`` (if set)."""
    out = os.environ.get("FUZZ_RESULTS")
    if not out or not SEEN:
        return
    ops: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (method, path, status), n in sorted(SEEN.items()):
        ops[f"{method} {path}"][str(status)] = n
    statuses: collections.Counter[str] = collections.Counter()
    for (_, _, status), n in SEEN.items():
        statuses[str(status)] += n
    summary = {
        "tool": f"schemathesis {schemathesis.SCHEMATHESIS_VERSION} (in-process ASGI, fake LLM backend)",
        "examples_per_operation": EXAMPLES,
        "requests": sum(SEEN.values()),
        "server_errors": sum(n for (_, _, s), n in SEEN.items() if s >= 500 and s != 503),
        "statuses": dict(sorted(statuses.items())),
        "operations": ops,
        "seconds_including_setup": round(time.monotonic() - STARTED, 1),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(summary, indent=2) + "\n")
