"""Control API: plain JSON over HTTP on loopback, used by steps and by testers in manual sessions.

Routes (all answers are JSON):
  GET  /health                      liveness
  GET  /mocks                       endpoints of every running mock
  GET  /mocks/{name}/state          current seeded state
  POST /mocks/{name}/state          merge state (body: mock-specific JSON)
  POST /mocks/{name}/faults         fault for the next matching request
                                    (body: {"kind": "timeout|http_error|<mock's own>", "operation": "*", ...})
  GET  /journal?since=N&mock=NAME   journal records after sequence N
  POST /reset                       every mock back to its defaults (the journal is kept)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from segur.journal import Journal
from segur.mocks.runtime.faults import FaultRule
from segur.mocks.runtime.http import Handled, HttpRequest, HttpResponse
from segur.mocks.runtime.service import MockService


def json_response(status: int, data: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")


class ControlApp:
    name = "control"

    def __init__(
        self, services: dict[str, MockService], journal: Journal, endpoints: Callable[[], dict[str, Any]]
    ) -> None:
        self.services = services
        self.journal = journal
        self.endpoints = endpoints

    def handle(self, request: HttpRequest) -> Handled:
        try:
            status, data = self._route(request)
        except (ValueError, TypeError) as error:
            status, data = 400, {"error": "invalid_request", "detail": str(error)}
        return Handled(json_response(status, data), operation=f"{request.method} {request.path}")

    def reject(self, request: HttpRequest, status: int, reason: str) -> Handled:
        return Handled(json_response(status, {"error": "rejected", "detail": reason}), operation="rejected")

    def _route(self, request: HttpRequest) -> tuple[int, Any]:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if method == "GET" and parts == ["health"]:
            return 200, {"status": "ok"}
        if method == "GET" and parts == ["mocks"]:
            return 200, self.endpoints()
        if method == "GET" and parts == ["journal"]:
            query = parse_qs(request.query)
            since = int(query.get("since", ["0"])[0])
            mock = query.get("mock", [None])[0]
            return 200, {"last_seq": self.journal.last_seq, "records": self.journal.since(since, mock)}
        if method == "POST" and parts == ["reset"]:
            for service in self.services.values():
                service.reset()
            return 200, {"reset": sorted(self.services)}
        if len(parts) == 3 and parts[0] == "mocks":
            service = self.services.get(parts[1])
            if service is None:
                return 404, {"error": "unknown_mock", "detail": parts[1]}
            if parts[2] == "state" and method == "GET":
                return 200, service.snapshot()
            if parts[2] == "state" and method == "POST":
                return 200, service.seed(_json_body(request))
            if parts[2] == "faults" and method == "POST":
                service.faults.add(FaultRule.from_json(_json_body(request), service.fault_kinds))
                return 200, {"pending": service.faults.pending()}
        return 404, {"error": "not_found", "detail": f"{method} {request.path}"}


def _json_body(request: HttpRequest) -> dict[str, Any]:
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
