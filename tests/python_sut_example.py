"""A SUT for the ``python:`` adapter: the reference software, constructed without arguments."""

from segur.reference_sut.software import IdentitySoftware


class ReferenceInProcess(IdentitySoftware):
    def __init__(self) -> None:
        super().__init__("dpi", (), "0.0-python")

    def describe(self) -> dict[str, str]:
        return {"name": "reference in-process", "version": self.version}
