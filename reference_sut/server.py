"""The trigger API of the reference SUT (contract: segur/sut/openapi.yaml), on the stdlib HTTP server.

The reference SUT runs as its own process behind this API so that the self-test drives
it exactly as it drives a vendor's software: through the ``http`` adapter.
"""

from __future__ import annotations

import html
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from segur import __version__
from segur.reference_sut.errors import ActionError
from segur.reference_sut.software import PSC_CALLBACK, PSC_LOGGED_OUT, IdentitySoftware
from segur.sut.base import ACTIONS

API_PREFIX = "/segur/v1"
MAX_BODY = 256 * 1024


def make_server(software: IdentitySoftware, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    actions = {name: getattr(software, name) for name in ACTIONS}

    class Handler(BaseHTTPRequestHandler):
        server_version = f"segur-reference-sut/{__version__}"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the harness journals what matters."""

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == f"{API_PREFIX}/health":
                self._send(
                    200,
                    {
                        "name": f"SEGUR REFERENCE {software.profile.upper()}",
                        "version": software.version,
                        "profile": software.profile,
                        "defects": sorted(software.defects),
                        "actions": sorted(actions),
                        "storage_dirs": [str(software.data_dir)],
                    },
                )
            elif url.path == PSC_CALLBACK:
                self._psc_callback(url.query)
            elif url.path == PSC_LOGGED_OUT:
                self._page(200, "Déconnecté", "Vous êtes déconnecté de Pro Santé Connect.")
            else:
                self._send(404, {"error": {"code": "not_found", "message": self.path}})

        def _psc_callback(self, query: str) -> None:
            """The PS's browser back from PSC: a small page, never a stack trace."""
            pairs = parse_qsl(query, keep_blank_values=True)
            names = [name for name, _ in pairs]
            if len(names) != len(set(names)):
                self._page(400, "Connexion refusée", "invalid_callback : paramètre répété")
                return
            try:
                session = software.complete_psc_login(dict(pairs))
            except ActionError as error:
                self._page(400, "Connexion refusée", f"{error.code} : {error}")
                return
            except Exception as error:  # a page for the user, the details stay in the software
                software.psc_error = {"code": "internal_error", "message": type(error).__name__}
                self._page(500, "Connexion impossible", "erreur interne")
                return
            name = " ".join(part for part in (session.prenom, session.nom) if part) or session.national_id
            self._page(200, "Connecté", f"Connecté : {name}")

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
            self._write(status, "application/json", json.dumps(data, ensure_ascii=False).encode())

        def _page(self, status: int, title: str, text: str) -> None:
            body = (
                f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"</head><body><p>{html.escape(text)}</p></body></html>"
            )
            self._write(status, "text/html; charset=utf-8", body.encode())

        def _write(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    bound_host, bound_port = server.server_address[:2]
    public_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host
    software.public_url = f"http://{public_host}:{bound_port}"
    return server
