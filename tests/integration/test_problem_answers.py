"""Every answer documented, on the real platform (issue 15): every route of every running service,
walked from the OpenAPI document it serves, is sent what a caller gets wrong (no token, a forged
one, a role or mission not admitted, a body that is not JSON or too large, a parameter of the wrong
kind or missing) and, as admitted, ids nobody has; every answer's status must be one the route's
document lists, every error a problem valid against the ``Problem`` schema. Nothing here changes
the platform: every id is new, every day has not begun."""

from __future__ import annotations

from collections import Counter

import httpx

from corridor.settings import ServiceSettings
from devkit.devstack import Stack
from tests.conftest import report_figure
from tests.problemcheck import probes, undocumented

# The files a route takes have their own, larger limit: a body that size is not sent 60 times.
OWN_LIMITS = {"/imports"}


async def test_every_answer_of_every_running_route_is_one_its_document_lists(stack: Stack) -> None:
    limit = ServiceSettings.model_fields["http_body_limit_bytes"].default
    wrong: list[str] = []
    met: Counter[int] = Counter()
    operations = 0
    async with httpx.AsyncClient(timeout=30.0) as client:
        for name, spec in stack.specs.items():
            document = (await client.get(spec.url + "/openapi.json")).raise_for_status().json()
            for path, item in document["paths"].items():
                for method, operation in item.items():
                    operations += 1
                    own = None if path in OWN_LIMITS else limit
                    for what, request in probes(
                        document, path, method, operation, stack.issuer, body_limit=own
                    ):
                        sent = {k: v for k, v in request.items() if k != "url"}
                        response = await client.request(method.upper(), spec.url + request["url"], **sent)
                        met[response.status_code] += 1
                        try:
                            why = undocumented(document, method.upper(), response.url.path, response)
                        except AssertionError as exc:
                            why = f"{method.upper()} {path} answered {response.status_code}, not a problem: {exc}"
                        if why is not None:
                            wrong.append(f"{name}, {what}: {why}")
    answers = ", ".join(f"{status}: {n}" for status, n in sorted(met.items()))
    report_figure("Every answer documented", f"{operations} operations, answers by status: {answers}")
    assert not wrong, f"{len(wrong)} answers not documented:\n" + "\n".join(wrong)
    assert operations >= 60
    # What the walk means to provoke, it met (else it proves little): 404s from the use cases, on
    # the real databases, among them.
    assert {400, 401, 403, 404, 413, 422} <= set(met), met
