"""Schemathesis against the app's own OpenAPI document, with an admin key: no 5xx, no response that
breaks the documented schema (status codes, content types, bodies)."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .conftest import AUTH, ServerProcess


@pytest.fixture(scope="module")
def live(tmp_path_factory, files):
    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", uploads_per_hour=100000,
                           rate_per_minute=10_000_000).start()
    httpx.post(f"{server.base}/api/v1/uploads?wait=true", json={"url": files.url("sample.csv")}, headers=AUTH,
               timeout=60)
    yield server
    server.stop()


@pytest.fixture
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live.base}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")
# The operations that load data (a link, a file, the sample) take seconds per example: fewer of them, and
# in a test of their own, so that another worker can run them beside the rest. Their few inputs (a link
# or a file, `wait`, a tolerance) need no more; parameter checks are covered by tests/test_bad_inputs.py.
LOADS = {"method": "POST", "path_regex": r"/uploads(/sample)?$"}


def _call_and_validate(case):
    # Filters are open-ended strings in the document (any column, any operator), so a string that
    # fits the document may still be refused with a 400: that check does not apply here.
    # An upload that waits (`wait=true`) queues behind the ones before it: on a busy machine (two test
    # workers) that took longer than the default 10 s read timeout.
    case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance], timeout=120)


@schema.exclude(**LOADS).parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_no_schema_violations(case):
    _call_and_validate(case)


@schema.include(**LOADS).parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_loads_give_no_server_errors_and_no_schema_violations(case):
    _call_and_validate(case)
