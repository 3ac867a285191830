"""The user's own copy of the ANS CI-SIS material: CDA schema, value sets, official Schematron checks.

The harness never ships ANS files; the user points it at a folder holding either
- an ANS CI-SIS export: ``infrastructure/cda/CDA_extended.xsd``, ``jeuxDeValeurs/``, ``ExemplesCDA/``; or
- a checkout of the ANS TestContenuCDA package (github.com/ansforge/TestContenuCDA-3-0), which adds
  ``schematrons/``: ``CI-SIS_<modèle>_<version>.sch`` per document model, ``profils/`` for the
  checks common to every CDA document, ``include/`` and ``abstract/`` for their parts.

Which schematrons apply to a document (researched, then modelled where the ANS is silent):
- the ANS CI (TestContenuCDA-3-0 .github/workflows/validate.yml, which runs M-Priour/validateCDA)
  runs four profiles on every document (``PROFILES`` below) and one model schematron,
  ``schematrons/CI-SIS_<modèle>.sch``, found in a ``mapping.properties`` file whose keys are
  ``<ClinicalDocument/templateId/@root>.<@extension>`` and values the model name;
- the package itself carries no such mapping. When no ``mapping.properties`` is found (package
  root or ``schematrons/``), the mapping is *modelled*: each ``CI-SIS_*.sch`` is read (not
  compiled) and its model templateIds are those under the ANS document-model arc
  1.2.250.1.213.1.1.1 (minus .1, the minimal structuring every document carries) that its rules
  on ``ClinicalDocument`` require as ``templateId/@root`` (VSM 2023.01), or that a rule context
  selects by (``*[cda:templateId/@root="…1.1.29"]``, LDL-SES 2022.01). A document matches a model when it
  carries all of them; among versions of one model, the one whose version is the templateId's
  @extension wins, else the most recent. A schematron that cannot be read is left out of that
  modelled index.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import glob
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from segur.cda import CdaChecks
from segur.cda.valuesets import value_set_layer
from segur.schematron import SchematronError, compile_schematron
from segur.schematron.loader import Assertion, load_schema
from segur.validation import Finding

CDA_XSD = Path("infrastructure/cda/CDA_extended.xsd")
PROFILES = (
    "profils/structurationMinimale/ASIP-STRUCT-MIN-StrucMin.sch",
    "profils/CI-SIS_Modeles_ANS.sch",
    "profils/CI-SIS_ModelesDeContenusCDA.sch",
    "profils/IHE.sch",
)
_HL7 = "urn:hl7-org:v3"
_MODEL_ARC = "1.2.250.1.213.1.1.1."
_MINIMAL_STRUCTURING = "1.2.250.1.213.1.1.1.1"
_REQUIRED_ROOT = re.compile(r"templateId\s*\[\s*@root\s*=\s*['\"]([0-9.]+)['\"]\s*\]")
_CONTEXT_ROOT = re.compile(r"templateId/@root\s*=\s*['\"]([0-9.]+)['\"]")
_MODEL_FILE = re.compile(r"^CI-SIS_(?P<model>.+?)(?:_(?P<version>\d{4}\.\d{2}))?$")

SchematronLayer = Callable[[bytes, etree._Element], list[Finding]]


@dataclass(frozen=True)
class _Model:
    path: Path
    family: str
    version: str
    roots: frozenset[str]


class CisisPackage:
    """The user's own copy of the ANS CI-SIS material (never shipped with the harness)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        if not (self.directory / CDA_XSD).is_file():
            raise ValueError(
                f"{directory} is not a CI-SIS package: {CDA_XSD} is missing "
                "(expected an ANS CI-SIS export or a TestContenuCDA checkout)"
            )
        self.schematrons = self.directory / "schematrons"

    def cda_schema(self) -> etree.XMLSchema:
        """The CDA schema with the ANS extensions (lxml), loaded once per package folder."""
        return _load_xsd(self.directory / CDA_XSD)

    def value_set(self, name: str) -> Path | None:
        """``jeuxDeValeurs/JDV_<name>.xml``, else the first ``JDV_<name>*.xml``; None when absent."""
        stem = name.removeprefix("JDV_")
        if not stem or Path(stem).name != stem:
            return None
        folder = self.directory / "jeuxDeValeurs"
        exact = folder / f"JDV_{stem}.xml"
        if exact.is_file():
            return exact
        matches = sorted(folder.glob(f"JDV_{glob.escape(stem)}*.xml"))
        return matches[0] if matches else None

    def cda_checks(self) -> CdaChecks:
        """What the package adds to the CDA engine: its schema as layer (a), its Schematrons and value sets."""
        return self.cda_schema(), [self.schematron_layer(), value_set_layer(self.directory / "jeuxDeValeurs")]

    def version(self) -> str:
        """What a report names as the schematron package: the folder, its git commit when it is a checkout, and a
        digest of every ``.sch`` file, so that two runs can tell whether they applied the same rules."""
        digest = hashlib.sha256()
        files = sorted(self.schematrons.rglob("*.sch")) if self.schematrons.is_dir() else []
        for path in files:
            digest.update(str(path.relative_to(self.schematrons)).encode() + b"\0" + path.read_bytes() + b"\0")
        commit = _git_commit(self.directory)
        where = f"{self.directory.name}" + (f" (git {commit[:12]})" if commit else "")
        return f"{where}: {len(files)} schematron(s), sha256 {digest.hexdigest()[:12]}"

    def schematron_layer(self) -> SchematronLayer:
        """A validator running the official schematrons that apply to a CDA document."""
        if not self.schematrons.is_dir():
            missing = Finding(
                "CISIS-NO-SCHEMATRON",
                "warning",
                f"{self.directory} has no schematrons/ folder (ANS TestContenuCDA): "
                "the official CDA content checks did not run",
            )
            return lambda _document, _root: [missing]
        return self._check

    def _check(self, _document: bytes, root: etree._Element) -> list[Finding]:
        cda = (
            root if root.tag == f"{{{_HL7}}}ClinicalDocument" else next(root.iter(f"{{{_HL7}}}ClinicalDocument"), None)
        )
        if cda is None:
            return [Finding("CISIS-NOT-CDA", "error", "no ClinicalDocument element: not a CDA document")]
        if cda is not root:
            cda = copy.deepcopy(cda)
        findings: list[Finding] = []
        models = self._models_for(cda)
        if not models:
            # An N1 document (a PDF in nonXMLBody) has no content model: the profiles are all that applies. A
            # structured one with no model may declare a wrong templateId, a doubt about the document itself.
            unstructured = cda.find(f"{{{_HL7}}}component/{{{_HL7}}}nonXMLBody") is not None
            findings.append(
                Finding(
                    "CISIS-NO-MODEL",
                    "info" if unstructured else "warning",
                    "no CI-SIS model schematron matches this document's templateIds: only the profiles ran"
                    + (" (an N1 document: none is expected)" if unstructured else ""),
                    "/cda:ClinicalDocument",
                )
            )
        paths = self._profiles() + models
        names = ", ".join(str(p.relative_to(self.schematrons)) for p in paths)
        findings.append(Finding("CISIS-SCHEMATRONS", "info", f"official schematrons run: {names or 'none'}"))
        for path in paths:
            try:
                findings += compile_schematron(path).validate_tree(cda)
            except SchematronError as error:
                findings.append(Finding("CISIS-SCHEMATRON-BROKEN", "warning", f"not run: {error}"))
        return findings

    def compile_profiles(self) -> None:
        """Compile now the profiles every document runs (cached for the process), so that the first document a
        run's DMP mock receives is not kept waiting by Saxon (the ANS structuration minimale: 12-20 s) while the
        software under test waits for its answer. A broken profile is left to be reported with the document."""
        for path in self._profiles():
            with contextlib.suppress(SchematronError):
                compile_schematron(path)

    def _profiles(self) -> list[Path]:
        return [path for path in (self.schematrons / profile for profile in PROFILES) if path.is_file()]

    def _models_for(self, cda: etree._Element) -> list[Path]:
        template_ids = [(t.get("root", ""), t.get("extension", "")) for t in cda.findall(f"{{{_HL7}}}templateId")]
        mapping = self._mapping_file()
        if mapping is not None:
            models = {
                mapping[f"{root}.{extension}"] for root, extension in template_ids if f"{root}.{extension}" in mapping
            }
            return sorted(self.schematrons / f"CI-SIS_{model}.sch" for model in models)
        roots = {root for root, _ in template_ids}
        extensions = {extension for _, extension in template_ids}
        chosen: dict[str, _Model] = {}
        for model in self._model_index:
            if not model.roots <= roots:
                continue
            best = chosen.get(model.family)
            rank = (model.version in extensions, model.version)
            if best is None or rank > (best.version in extensions, best.version):
                chosen[model.family] = model
        return sorted(model.path for model in chosen.values())

    def _mapping_file(self) -> dict[str, str] | None:
        """The ANS CI's ``mapping.properties`` (``root.extension=model``), if the user put one in the package."""
        for candidate in (self.directory / "mapping.properties", self.schematrons / "mapping.properties"):
            if candidate.is_file():
                lines = candidate.read_text(encoding="utf-8").splitlines()
                pairs = (line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))
                return {key.strip(): value.strip() for key, value in pairs}
        return None

    @functools.cached_property
    def _model_index(self) -> list[_Model]:
        models = []
        for path in sorted(self.schematrons.glob("CI-SIS_*.sch")):
            match = _MODEL_FILE.match(path.stem)
            try:
                schema = load_schema(path)
            except SchematronError:
                continue
            rules = [rule for pattern in schema.patterns for rule in pattern.rules]
            asserted = {
                oid
                for rule in rules
                if rule.context.rstrip().endswith("ClinicalDocument")
                for item in rule.body
                if isinstance(item, Assertion)
                for oid in _REQUIRED_ROOT.findall(item.test)
            }
            in_context = {oid for rule in rules for oid in _CONTEXT_ROOT.findall(rule.context)}
            roots = {oid for oid in asserted | in_context if oid.startswith(_MODEL_ARC) and oid != _MINIMAL_STRUCTURING}
            if roots and match:
                models.append(_Model(path, match["model"], match["version"] or "", frozenset(roots)))
        return models


@functools.lru_cache(maxsize=4)
def package_checks(directory: str) -> CdaChecks:
    """``CisisPackage(directory).cda_checks()``, built once per process: the DMP mock's workers get the folder's
    name, not the compiled checks, which do not cross a process boundary."""
    return CisisPackage(Path(directory)).cda_checks()


def _git_commit(directory: Path) -> str | None:
    """HEAD of a git checkout at ``directory``, read from ``.git`` without running git (a detached or branch HEAD)."""
    git = directory / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="ascii").strip()
        if head.startswith("ref: "):
            ref = head[5:]
            loose = git / ref
            if loose.is_file():
                return loose.read_text(encoding="ascii").strip()
            packed = (git / "packed-refs").read_text(encoding="ascii").splitlines()
            return next((line.split()[0] for line in packed if line.endswith(f" {ref}")), None)
        return head or None
    except (OSError, UnicodeDecodeError):
        return None


@functools.lru_cache(maxsize=8)
def _load_xsd(path: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))
