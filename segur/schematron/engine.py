"""Compile a schema to an XSLT 3.0 executable once, run it per document with SaxonC-HE, return findings.

Why XSLT rather than evaluating each rule's XPath from Python: ISO's "first matching rule of a
pattern wins" is exactly XSLT template priority within a mode, Saxon indexes match patterns by
node name, and one transformation runs every pattern in a single pass over the document. Measured
here on 50 rules (10 patterns, ANS-style ``*[cda:templateId/@root=...]`` contexts) and a 47 KB CDA
document: compiling takes ~0.1 s (once per process, see the cache), validating ~19 ms; a Python
loop evaluating the same contexts and tests through Saxon's XPath API took ~34 ms without even
implementing first-rule-wins, and grows with rules x matched nodes boundary crossings.

Thread safety: ``CompiledSchematron.validate`` may be called from several threads. Each call
runs on its own ``clone()`` of the executable, which is what SaxonC documents for concurrent
use of a ``PyXsltExecutable``; compilation and the cache are serialised by one lock.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from saxonche import PySaxonApiError, PySaxonProcessor, PyXsltExecutable

from segur.schematron.loader import Schema, SchematronError, load_schema
from segur.schematron.xslt import Stylesheet, generate
from segur.validation import Finding, MalformedXml, UnsafeXml, parse_untrusted

_LOCK = threading.RLock()
_SAXON: list[PySaxonProcessor] = []
_WHAT = {
    "xsl:template/@match": "rule context",
    "xsl:when/@test": "assert test",
    "xsl:if/@test": "report test",
    "xsl:variable/@select": "let value",
    "xsl:value-of/@select": "value-of select",
}


def _saxon() -> PySaxonProcessor:
    """The process' one Saxon processor (SaxonC wants one per process)."""
    with _LOCK:
        if not _SAXON:
            _SAXON.append(PySaxonProcessor(license=False))
        return _SAXON[0]


class CompiledSchematron:
    """A Schematron schema compiled for one phase; reusable and thread-safe for validation.

    ``xslt`` keeps the generated stylesheet, to read when a schema does not behave as expected.
    """

    def __init__(self, schema: Schema, stylesheet: Stylesheet, executable: PyXsltExecutable) -> None:
        self.path = schema.path
        self.phase = schema.phase
        self.title = schema.title
        self.files = frozenset(schema.files)
        self.xslt = stylesheet.text
        self._assertions = stylesheet.assertions
        self._executable = executable
        self._notes = [
            Finding(
                "SCH-PHASE",
                "warning",
                f"{self.path.name}: phase {self.phase!r} activates pattern {name!r}, "
                "which the schema does not define: those checks did not run",
            )
            for name in schema.missing_active_patterns
        ]

    def validate(self, document: bytes) -> list[Finding]:
        """Findings of the schema on ``document``; a refused or malformed document is one error finding."""
        try:
            root = parse_untrusted(document)
        except (UnsafeXml, MalformedXml) as error:
            return [Finding("SCH-DOCUMENT", "error", f"document not validated against {self.path.name}: {error}")]
        return self.validate_tree(root)

    def validate_tree(self, root: etree._Element) -> list[Finding]:
        """``validate`` for an element already parsed with ``parse_untrusted``: a nested element is checked alone."""
        source = root.getroottree() if root.getparent() is None else root
        text = etree.tostring(source, encoding="unicode", with_tail=False)
        try:
            node = _saxon().new_document_builder().parse_xml(xml_text=text, encoding="utf-8")
            executable = self._executable.clone()
            executable.set_global_context_item(xdm_item=node)
            output = executable.apply_templates_returning_string(xdm_value=node)
        except PySaxonApiError as error:
            message = " ".join(str(error).split())
            return [*self._notes, Finding("SCH-EVAL", "error", f"{self.path.name}: validation aborted: {message}")]
        return [*self._notes, *self._findings(output)]

    def _findings(self, output: str) -> list[Finding]:
        findings = []
        for item in parse_untrusted(output.encode("utf-8")):
            assertion = self._assertions[int(item.get("n"))]
            location = item.get("loc", "")
            if item.tag == "e":
                message = f"could not be evaluated ({' '.join(item.text.split()) if item.text else 'no detail'})"
                findings.append(Finding(assertion.rule_id, "error", message, location))
                continue
            message = " ".join("".join(item.find("m").itertext()).split())
            if not message:
                verb = "is true" if assertion.report else "failed"
                message = f"{'report' if assertion.report else 'assertion'} {assertion.test!r} {verb}"
            details = "; ".join(" ".join("".join(d.itertext()).split()) for d in item.findall("d"))
            if details:
                message = f"{message} ({details})"
            findings.append(Finding(assertion.rule_id, assertion.severity, message, location))
        return findings


@dataclass
class _Entry:
    compiled: CompiledSchematron
    fingerprint: tuple[tuple[str, int, int], ...] | None


_CACHE: dict[tuple[Path, str | None], _Entry] = {}


def _fingerprint(files: frozenset[Path]) -> tuple[tuple[str, int, int], ...] | None:
    try:
        return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    except OSError:
        return None


def compile_schematron(path: Path, *, phase: str | None = None) -> CompiledSchematron:
    """Compile ``path`` for ``phase`` (None: its defaultPhase, else #ALL), or return the cached compilation.

    The cache is keyed by resolved path and phase and is valid while no file of the schema
    (the main file and everything it includes) has changed size or modification time.
    """
    key = (Path(path).resolve(), phase)
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is not None and entry.fingerprint == _fingerprint(entry.compiled.files):
            return entry.compiled
        schema = load_schema(key[0], phase)
        fingerprint = _fingerprint(frozenset(schema.files))
        stylesheet = generate(schema)
        try:
            executable = (
                _saxon().new_xslt30_processor().compile_stylesheet(stylesheet_text=stylesheet.text, encoding="utf-8")
            )
        except PySaxonApiError as error:
            raise _located(error, stylesheet, schema) from None
        compiled = CompiledSchematron(schema, stylesheet, executable)
        _CACHE[key] = _Entry(compiled, fingerprint)
        return compiled


def _located(error: PySaxonApiError, stylesheet: Stylesheet, schema: Schema) -> SchematronError:
    """Turn Saxon's static error on the generated stylesheet into one on the schema file and line."""
    message = " ".join(str(error).split())
    line = re.search(r"on line (\d+)", message)
    origin = stylesheet.origin_of_line(int(line.group(1))) if line else None
    message = re.sub(r"\s*on line \d+ column \d+ of \S*", "", message)
    for xslt_name, schematron_name in _WHAT.items():
        message = message.replace(xslt_name, schematron_name)
    if origin is None:
        return SchematronError(message, schema.path)
    return SchematronError(message, origin.file, origin.line)
