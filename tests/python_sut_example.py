"""A SUT for the ``python:`` adapter: the reference software, constructed without arguments.

In-process software has no HTTP server for PSC to redirect the browser to: like a native
application, it declares custom-scheme redirect URIs and asks for them to be delivered
through the ``receive_redirect`` action.
"""

from typing import Any

from segur.reference_sut.software import IdentitySoftware


class ReferenceInProcess(IdentitySoftware):
    def __init__(self) -> None:
        super().__init__("dpi", (), "0.0-python")
        self.public_url = "segur-reference://app"

    def describe(self) -> dict[str, str]:
        return {"name": "reference in-process", "version": self.version, "storage_dirs": [str(self.data_dir)]}

    def configure(self, params: dict[str, Any]) -> dict[str, Any]:
        configured = super().configure(params)
        configured["psc"]["redirect_delivery"] = "action"
        return configured
