"""Read an ISO Schematron schema into a flat, resolved model: includes, abstract patterns and rules, phases.

Everything the XSLT generator needs is settled here, in Python, so that the generated
stylesheet is a plain list of templates and every schema error can name its file and line:

- ``sch:include`` is replaced by the root element of the included file, resolved relative to
  the including file, recursively, with cycle detection;
- ``pattern is-a`` copies the abstract pattern and substitutes its ``sch:param`` values for
  ``$name`` in attribute values (ISO 19757-3 §6.3: a textual substitution, whole names only);
- ``rule abstract="true"`` + ``sch:extends`` are inlined (searched schema-wide, as the ISO
  skeleton and ART-DECOR schemas expect), with cycle detection;
- the phase picks the active patterns; ``#ALL`` / ``#DEFAULT`` as ISO defines them.

Deliberate deviation, for compatibility with the ANS TestContenuCDA package: a pattern-level
``sch:let`` is a *global* variable (visible from every pattern), as the ISO skeleton the ANS
compiles with makes it (their compiled CI-SIS_*.xsl in ansforge/TestContenuCDA-2-41 hold
``<!--PATTERN variables--><xsl:variable name="jdv_..."/>`` at top level). Their
CI-SIS_<modèle>.sch declare the value-set paths once in a "variables" pattern and read them from
the value-set patterns. Two lets with one name and different values are therefore a schema error.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from segur.validation import MalformedXml, Severity, UnsafeXml, parse_untrusted

SCH = "http://purl.oclc.org/dsdl/schematron"
XSL = "http://www.w3.org/1999/XSL/Transform"
_ORIGIN = "{urn:segur:schematron:origin}file"
_QUERY_BINDINGS = {"", "xslt", "xslt2", "xslt3", "xpath", "xpath2", "xpath3", "xpath31"}
_VARIABLE = re.compile(r"\$([A-Za-z_][\w.\-]*)")
_SEVERITY_BY_ROLE: dict[str, Severity] = {
    "fatal": "error",
    "error": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "information": "info",
}


class SchematronError(ValueError):
    """A schema that cannot be compiled; ``file`` and ``line`` say where the problem is."""

    def __init__(self, message: str, file: Path | str = "", line: int | None = None) -> None:
        self.file = str(file)
        self.line = line
        where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
        super().__init__(f"{where}{message}")


@dataclass(frozen=True)
class Origin:
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Let:
    name: str
    value: str
    as_type: str | None
    origin: Origin


@dataclass(frozen=True)
class Assertion:
    """One ``sch:assert`` (fires when ``test`` is false) or ``sch:report`` (fires when true)."""

    report: bool
    test: str
    rule_id: str
    severity: Severity
    message: etree._Element
    diagnostics: tuple[etree._Element, ...]
    origin: Origin


@dataclass(frozen=True)
class Rule:
    context: str
    body: tuple[Let | Assertion, ...]
    origin: Origin


@dataclass(frozen=True)
class Pattern:
    id: str
    rules: tuple[Rule, ...]


@dataclass
class Schema:
    """The resolved schema: what the XSLT generator turns into templates."""

    path: Path
    title: str
    phase: str
    namespaces: dict[str, str]
    global_lets: list[Let]
    patterns: list[Pattern]
    xslt_declarations: list[etree._Element]
    files: set[Path]
    missing_active_patterns: list[str]


def load_schema(path: Path, phase: str | None = None) -> Schema:
    """Parse ``path`` and everything it includes, and resolve it for ``phase`` (None: the default phase)."""
    path = path.resolve()
    files: set[Path] = set()
    root = _parse(path, files, None)
    if root.tag != f"{{{SCH}}}schema":
        raise SchematronError(f"the root element is {root.tag}, not an ISO Schematron schema", path, root.sourceline)
    binding = (root.get("queryBinding") or "").lower()
    if binding not in _QUERY_BINDINGS:
        raise SchematronError(
            f"queryBinding {binding!r} is not supported (XPath 2+/XSLT 2+ only)", path, root.sourceline
        )
    _expand_includes(root, [path], files)
    return _Resolver(path, root, files).resolve(phase)


def _parse(path: Path, files: set[Path], include: etree._Element | None) -> etree._Element:
    """Parse one schema file with the harness' hardened parser (no DTD, no entities)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        where = _origin(include) if include is not None else None
        raise SchematronError(
            f"cannot read {path}: {error.strerror}", where.file if where else path, where.line if where else None
        ) from None
    try:
        root = parse_untrusted(data)
    except (UnsafeXml, MalformedXml) as error:
        raise SchematronError(str(error), path) from None
    files.add(path)
    root.set(_ORIGIN, str(path))
    return root


def _expand_includes(element: etree._Element, stack: list[Path], files: set[Path]) -> None:
    for include in list(element.iter(f"{{{SCH}}}include")):
        href = include.get("href")
        if not href:
            raise SchematronError("sch:include without href", *_where(include))
        target = (_origin(include).file.parent / unquote(href.split("#")[0])).resolve()
        if target in stack:
            chain = " -> ".join(p.name for p in [*stack[stack.index(target) :], target])
            raise SchematronError(f"include cycle: {chain}", *_where(include))
        included = _parse(target, files, include)
        _expand_includes(included, [*stack, target], files)
        included.tail = include.tail
        include.getparent().replace(include, included)


def _origin(element: etree._Element) -> Origin:
    owner = next(e for e in element.iterancestors() if e.get(_ORIGIN)) if element.get(_ORIGIN) is None else element
    return Origin(Path(owner.get(_ORIGIN)), element.sourceline or 0)


def _where(element: etree._Element) -> tuple[Path, int]:
    origin = _origin(element)
    return origin.file, origin.line


def _is_element(node: etree._Element) -> bool:
    """False for the comments and processing instructions lxml yields among children."""
    return isinstance(node.tag, str)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if child.tag == f"{{{SCH}}}{name}"]


def _severity(*elements: etree._Element) -> Severity:
    """ISO leaves role/flag free text; map the usual words, default to error."""
    for element in elements:
        for attribute in ("role", "flag"):
            word = (element.get(attribute) or "").strip().lower()
            if word in _SEVERITY_BY_ROLE:
                return _SEVERITY_BY_ROLE[word]
    return "error"


def _substitute(element: etree._Element, params: dict[str, str]) -> None:
    """Replace ``$param`` by its value in every attribute of ``element`` and its descendants."""

    def replace(match: re.Match[str]) -> str:
        return params.get(match.group(1), match.group(0))

    for node in element.iter(etree.Element):
        for name, value in node.attrib.items():
            if "$" in value:
                node.set(name, _VARIABLE.sub(replace, value))


class _Resolver:
    def __init__(self, path: Path, root: etree._Element, files: set[Path]) -> None:
        self.path = path
        self.root = root
        self.files = files
        self.abstract_patterns = self._index(root.iter(f"{{{SCH}}}pattern"), "abstract pattern")
        self.abstract_rules = self._index(root.iter(f"{{{SCH}}}rule"), "abstract rule")
        self.diagnostics = {
            d.get("id"): d for block in root.iter(f"{{{SCH}}}diagnostics") for d in _children(block, "diagnostic")
        }

    @staticmethod
    def _index(elements: Iterable[etree._Element], kind: str) -> dict[str, etree._Element]:
        index: dict[str, etree._Element] = {}
        for element in elements:
            if element.get("abstract") != "true":
                continue
            name = element.get("id")
            if not name:
                raise SchematronError(f"{kind} without id", *_where(element))
            if name in index:
                raise SchematronError(
                    f"duplicate {kind} id {name!r} (also at {_origin(index[name])})", *_where(element)
                )
            index[name] = element
        return index

    def resolve(self, phase: str | None) -> Schema:
        concrete = [self._instantiate(p) for p in _children(self.root, "pattern") if p.get("abstract") != "true"]
        phase_name, phase_element = self._phase(phase)
        active_ids = None if phase_element is None else [a.get("pattern") for a in _children(phase_element, "active")]
        known = {p.get("id") for p in concrete}
        lets = [self._let(e) for e in _children(self.root, "let")]
        if phase_element is not None:
            lets += [self._let(e) for e in _children(phase_element, "let")]
        for pattern in concrete:
            lets += [self._let(e) for e in _children(pattern, "let")]
        return Schema(
            path=self.path,
            title=" ".join(" ".join("".join(t.itertext()).split()) for t in _children(self.root, "title")),
            phase=phase_name,
            namespaces=self._namespaces(),
            global_lets=self._unique(lets),
            patterns=[
                self._pattern(p, n)
                for n, p in enumerate(concrete, start=1)
                if active_ids is None or p.get("id") in active_ids
            ],
            xslt_declarations=[self._xslt(e) for e in self.root if _is_element(e) and e.tag.startswith(f"{{{XSL}}}")],
            files=self.files,
            missing_active_patterns=[a for a in active_ids or () if a not in known],
        )

    def _phase(self, requested: str | None) -> tuple[str, etree._Element | None]:
        name = requested or "#DEFAULT"
        if name == "#DEFAULT":
            name = self.root.get("defaultPhase") or "#ALL"
        if name == "#ALL":
            return name, None
        for phase in _children(self.root, "phase"):
            if phase.get("id") == name:
                return name, phase
        raise SchematronError(f"no phase {name!r} in this schema", self.path, self.root.sourceline)

    def _namespaces(self) -> dict[str, str]:
        namespaces: dict[str, str] = {}
        for ns in self.root.iter(f"{{{SCH}}}ns"):
            prefix, uri = ns.get("prefix"), ns.get("uri")
            if not prefix or uri is None:
                raise SchematronError("sch:ns needs prefix and uri", *_where(ns))
            if namespaces.get(prefix, uri) != uri:
                raise SchematronError(f"prefix {prefix!r} bound to two namespaces", *_where(ns))
            namespaces[prefix] = uri
        return namespaces

    def _instantiate(self, pattern: etree._Element) -> etree._Element:
        """Return ``pattern`` itself, or for ``is-a`` a copy of the abstract pattern with its params substituted."""
        base = pattern.get("is-a")
        if base is None:
            return pattern
        abstract = self.abstract_patterns.get(base)
        if abstract is None:
            raise SchematronError(f"is-a={base!r}: no abstract pattern with that id", *_where(pattern))
        params = {p.get("name"): p.get("value", "") for p in _children(pattern, "param")}
        instance = copy.deepcopy(abstract)
        instance.attrib.pop("abstract")
        instance.set("id", pattern.get("id") or base)
        instance.set(_ORIGIN, str(_origin(abstract).file))
        _substitute(instance, params)
        return instance

    def _pattern(self, element: etree._Element, position: int) -> Pattern:
        pattern_id = element.get("id") or f"pattern-{position}"
        counter = itertools.count(1)
        rules = tuple(
            Rule(
                context=self._context(rule),
                body=tuple(self._body(rule, rule, pattern_id, counter, [])),
                origin=_origin(rule),
            )
            for rule in element.iter(f"{{{SCH}}}rule")
            if rule.get("abstract") != "true"
        )
        return Pattern(pattern_id, rules)

    @staticmethod
    def _context(rule: etree._Element) -> str:
        context = (rule.get("context") or "").strip()
        if not context:
            raise SchematronError("sch:rule without context", *_where(rule))
        return context

    def _body(
        self, rule: etree._Element, source: etree._Element, pattern_id: str, counter: Iterator[int], chain: list[str]
    ) -> list[Let | Assertion]:
        """The lets and assertions of ``source`` in document order, ``sch:extends`` inlined."""
        body: list[Let | Assertion] = []
        for child in source:
            kind = etree.QName(child).localname if _is_element(child) and child.tag.startswith(f"{{{SCH}}}") else None
            if kind == "let":
                body.append(self._let(child))
            elif kind in ("assert", "report"):
                body.append(self._assertion(child, rule, source, pattern_id, next(counter)))
            elif kind == "extends":
                name = child.get("rule")
                target = self.abstract_rules.get(name or "")
                if target is None:
                    raise SchematronError(f"extends rule={name!r}: no abstract rule with that id", *_where(child))
                if name in chain:
                    raise SchematronError(f"extends cycle: {' -> '.join([*chain, name])}", *_where(child))
                body += self._body(rule, target, pattern_id, counter, [*chain, name])
        return body

    def _assertion(
        self, element: etree._Element, rule: etree._Element, source: etree._Element, pattern_id: str, number: int
    ) -> Assertion:
        test = element.get("test")
        if not test:
            raise SchematronError(f"sch:{etree.QName(element).localname} without test", *_where(element))
        diagnostics = []
        for name in (element.get("diagnostics") or "").split():
            if name not in self.diagnostics:
                raise SchematronError(f"diagnostics={name!r}: no sch:diagnostic with that id", *_where(element))
            diagnostics.append(self.diagnostics[name])
        for value_of in (v for e in (element, *diagnostics) for v in e.iter(f"{{{SCH}}}value-of")):
            if not value_of.get("select"):
                raise SchematronError("sch:value-of without select", *_where(value_of))
        return Assertion(
            report=element.tag == f"{{{SCH}}}report",
            test=test,
            rule_id=element.get("id") or f"{pattern_id}#{number}",
            severity=_severity(element, source, rule),
            message=element,
            diagnostics=tuple(diagnostics),
            origin=_origin(element),
        )

    @staticmethod
    def _let(element: etree._Element) -> Let:
        name, value = element.get("name"), element.get("value")
        if not name or value is None:
            raise SchematronError("sch:let needs name and value", *_where(element))
        return Let(name, value, element.get("as"), _origin(element))

    @staticmethod
    def _unique(lets: list[Let]) -> list[Let]:
        seen: dict[str, Let] = {}
        for let in lets:
            first = seen.setdefault(let.name, let)
            if first.value != let.value:
                raise SchematronError(
                    f"global let ${let.name} declared twice with different values (first at {first.origin})",
                    let.origin.file,
                    let.origin.line,
                )
        return list(seen.values())

    @staticmethod
    def _xslt(element: etree._Element) -> etree._Element:
        """A top-level xsl:key / xsl:function / ... of the schema, its href made absolute."""
        declaration = copy.deepcopy(element)
        href = declaration.get("href")
        if href is not None:
            declaration.set("href", (_origin(element).file.parent / href).resolve().as_uri())
        return declaration
