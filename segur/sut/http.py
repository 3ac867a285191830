"""The ``http`` adapter: the vendor exposes the trigger API of segur/sut/openapi.yaml."""

from __future__ import annotations

from typing import Any

import httpx

from segur.sut.base import SutActionError, SutAdapter, SutUnreachable

API_PREFIX = "/segur/v1"


class HttpSut(SutAdapter):
    kind = "http"

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url + API_PREFIX, timeout=timeout)
        self._description: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        if self._description is None:
            try:
                response = self._client.get("/health")
                response.raise_for_status()
            except httpx.HTTPError as error:
                raise SutUnreachable(f"{self.base_url}{API_PREFIX}/health: {error}") from error
            self._description = {**response.json(), "adapter": self.kind, "url": self.base_url}
        return self._description

    def act(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(f"/actions/{action}", json=params)
        except httpx.HTTPError as error:
            raise SutUnreachable(f"{action}: {error}") from error
        data = _json(response)
        if response.status_code != 200 or "result" not in data:
            error = data.get("error") or {}
            raise SutActionError(str(error.get("code", response.status_code)), str(error.get("message", "")))
        return data["result"]

    def stop(self) -> None:
        self._client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"error": {"code": f"http_{response.status_code}", "message": response.text[:200]}}
    return data if isinstance(data, dict) else {}
