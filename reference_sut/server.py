"""The trigger API of the reference SUT (contract: segur/sut/openapi.yaml), on the stdlib HTTP server.

The reference SUT runs as its own process behind this API so that the self-test drives
it exactly as it drives a vendor's software: through the ``http`` adapter.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from segur import __version__
from segur.reference_sut.software import ActionError, IdentitySoftware

API_PREFIX = "/segur/v1"
MAX_BODY = 256 * 1024


def make_server(software: IdentitySoftware, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    actions = {
        name: getattr(software, name)
        for name in (
            "configure",
            "reset",
            "register_patient",
            "fetch_ins",
            "verify_ins",
            "qualify_identity",
            "get_patient",
            "export_identity",
        )
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = f"segur-reference-sut/{__version__}"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the harness journals what matters."""

        def do_GET(self) -> None:
            if self.path == f"{API_PREFIX}/health":
                self._send(
                    200,
                    {
                        "name": f"SEGUR REFERENCE {software.profile.upper()}",
                        "version": software.version,
                        "profile": software.profile,
                        "defects": sorted(software.defects),
                        "actions": sorted(actions),
                    },
                )
            else:
                self._send(404, {"error": {"code": "not_found", "message": self.path}})

        def do_POST(self) -> None:
            prefix = f"{API_PREFIX}/actions/"
            name = self.path.removeprefix(prefix) if self.path.startswith(prefix) else ""
            action = actions.get(name)
            if action is None:
                self._send(404, {"error": {"code": "unknown_action", "message": name or self.path}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": {"code": "too_large", "message": f"over {MAX_BODY} bytes"}})
                return
            try:
                params = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(params, dict):
                    raise ValueError("parameters must be a JSON object")
                self._send(200, {"result": action(params)})
            except ActionError as error:
                self._send(error.status, {"error": {"code": error.code, "message": str(error)}})
            except (ValueError, KeyError, TypeError) as error:
                self._send(400, {"error": {"code": "invalid_parameters", "message": repr(error)}})

        def _send(self, status: int, data: dict[str, Any]) -> None:
            body = json.dumps(data, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
