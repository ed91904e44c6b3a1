"""The OpenAPI document is the contract: Schemathesis checks it against the real Worker.

Schemathesis (PyPI) takes the document (tracker/openapi.py, the same one the
Worker serves at /api/openapi.json and routes by: checked first) and sends
generated requests to the session's wrangler dev to every operation: valid ones and, from the coverage
phase, invalid values at the edges (bad integers, out-of-range limits, wrong
types). Every check Schemathesis has runs on every answer (as `schemathesis run
--checks all`): a documented status (so the 400s each route really returns, the
404 of a well-formed but unknown symbol, /ws's 403 and 426, must be in the
document), the documented content type and headers, matching its schema, never a
5xx, valid data accepted and invalid data refused.

Deterministic: hypothesis derandomised (a fixed seed) and a bounded number of
examples per operation. The control routes are called without the admin token
(401, documented): the contract test never starts or stops tracking.
"""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, Phase, settings

from tracker.openapi import DOCUMENT

EXAMPLES_PER_OPERATION = 25


# Loaded at import, one test per operation. (Schemathesis' lazy `from_fixture`
# loader relies on a pytest private attribute that pytest 9 no longer has.)
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_worker_serves_this_document(worker):
    assert worker.get_json("/api/openapi.json") == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case, worker):
    # No `checks`: every check Schemathesis has (`schemathesis run --checks all`), positive
    # data acceptance included: a request the document calls valid must not be refused
    # with a status it does not expect (a 400 for a well-formed but unknown symbol, say).
    case.call_and_validate(base_url=worker.url, timeout=30)
