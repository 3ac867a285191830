"""The built-in reference SUT, started as its own process and driven through the http adapter."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from segur.reference_sut.defects import parse_defects
from segur.sut.base import SutUnreachable
from segur.sut.http import HttpSut

PROFILES = {"hopital": "dpi", "ville": "lgc"}


class ReferenceSut(HttpSut):
    kind = "reference"

    def __init__(self, couloir_profile: str, defects: str = "") -> None:
        self.defects = parse_defects(defects)
        self.profile = PROFILES.get(couloir_profile, couloir_profile)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> dict[str, Any]:
        command = [sys.executable, "-m", "segur.reference_sut", "--profile", self.profile]
        if self.defects:
            command += ["--defects", ",".join(self.defects)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise SutUnreachable(f"reference SUT exited with {self._process.wait()}")
        super().__init__(json.loads(line)["url"])
        return {**self.describe(), "adapter": self.kind}

    def stop(self) -> None:
        if self._process is not None:
            super().stop()
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
