"""Generate the XSLT 3.0 stylesheet that runs a resolved schema (see loader.py) in one pass over a document.

Shape of the stylesheet:

- one mode per active pattern; a rule is a template of that mode whose priority falls with the
  rule's position, so the first matching rule of a pattern wins for each node (ISO §6.5);
- the ``/`` template visits every node once (document node, elements, their attributes, text,
  comments, processing instructions) and applies each pattern's mode to it;
- each assertion runs inside ``xsl:try``: one check raising a dynamic error (a missing value-set
  file, a type error) becomes one finding instead of aborting the whole validation;
- the output is a small report, ``<report><f n= loc=><m/><d/>*</f><e n= loc=/></report>``, where
  ``n`` indexes the assertion table kept in Python (rule id, severity never travel through XSLT).

Internal names are EQNames in our own namespace, so no schema prefix can clash with them; only
the ``xsl`` prefix is reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from segur.schematron.loader import SCH, XSL, Assertion, Let, Origin, Schema, SchematronError

XS = "http://www.w3.org/2001/XMLSchema"
_INTERNAL = "Q{urn:segur:schematron}"
_ERR = "Q{http://www.w3.org/2005/xqt-errors}"
_STRING = f"Q{{{XS}}}string"

_PATH_FUNCTIONS = f"""
<xsl:stylesheet xmlns:xsl="{XSL}" version="3.0">
  <xsl:function name="{_INTERNAL}path" as="{_STRING}">
    <xsl:param name="node" as="node()"/>
    <xsl:sequence select="if ($node instance of document-node()) then '/' else string-join(
      for $n in $node/ancestor-or-self::node()[not(. instance of document-node())] return {_INTERNAL}step($n), '')"/>
  </xsl:function>
  <xsl:function name="{_INTERNAL}step" as="{_STRING}">
    <xsl:param name="n" as="node()"/>
    <xsl:sequence select="'/' || (
      if ($n instance of element()) then {_INTERNAL}qname($n) || (if ($n/parent::element())
        then '[' || count($n/preceding-sibling::*[node-name() eq node-name($n)]) + 1 || ']' else '')
      else if ($n instance of attribute()) then '@' || {_INTERNAL}qname($n)
      else if ($n instance of text()) then 'text()[' || count($n/preceding-sibling::text()) + 1 || ']'
      else if ($n instance of comment()) then 'comment()[' || count($n/preceding-sibling::comment()) + 1 || ']'
      else 'processing-instruction()[' || count($n/preceding-sibling::processing-instruction()) + 1 || ']')"/>
  </xsl:function>
  <xsl:function name="{_INTERNAL}qname" as="{_STRING}">
    <xsl:param name="n" as="node()"/>
    <xsl:sequence select="let $uri := namespace-uri($n), $prefix := ${_INTERNAL}prefixes($uri) return
      if ($uri eq '') then local-name($n)
      else if (exists($prefix)) then $prefix || ':' || local-name($n)
      else 'Q{{' || $uri || '}}' || local-name($n)"/>
  </xsl:function>
</xsl:stylesheet>
"""


@dataclass
class Stylesheet:
    """The generated XSLT text, its assertion table, and where each generated element came from."""

    text: str
    assertions: list[Assertion]
    tree: etree._Element
    origins: dict[etree._Element, Origin]

    def origin_of_line(self, line: int) -> Origin | None:
        """The schema location of the generated element at (or last before) ``line`` of ``text``."""
        reparsed = etree.fromstring(self.text.encode())
        best: Origin | None = None
        for generated, element in zip(self.tree.iter(), reparsed.iter(), strict=True):
            if element.sourceline is not None and element.sourceline > line:
                break
            best = self.origins.get(generated, best)
        return best


def generate(schema: Schema) -> Stylesheet:
    if "xsl" in schema.namespaces and schema.namespaces["xsl"] != XSL:
        raise SchematronError("the prefix 'xsl' is reserved for XSLT", schema.path)
    return _Generator(schema).build()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _Generator:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.assertions: list[Assertion] = []
        self.origins: dict[etree._Element, Origin] = {}
        nsmap = {"xs": XS, **schema.namespaces, "xsl": XSL}
        self.root = etree.Element(f"{{{XSL}}}stylesheet", nsmap=nsmap)
        self.root.set("version", "3.0")
        self.root.set("exclude-result-prefixes", "#all")
        self.root.set("{http://www.w3.org/XML/1998/namespace}base", schema.path.as_uri())

    def xsl(self, parent: etree._Element, tag: str, origin: Origin | None = None, **attributes: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{XSL}}}{tag}")
        for key, value in attributes.items():
            element.set(key.replace("_", "-"), value)
        if origin is not None:
            self.origins[element] = origin
        return element

    def build(self) -> Stylesheet:
        self.xsl(self.root, "output", method="xml", encoding="UTF-8")
        for declaration in self.schema.xslt_declarations:
            declaration.tail = None
            self.root.append(declaration)
        prefixes = {}
        for prefix, uri in self.schema.namespaces.items():
            prefixes.setdefault(uri, prefix)
        entries = ", ".join(f"{_literal(uri)}: {_literal(prefix)}" for uri, prefix in prefixes.items())
        self.xsl(self.root, "variable", name=f"{_INTERNAL}prefixes", select=f"map{{{entries}}}")
        for function in etree.fromstring(_PATH_FUNCTIONS, etree.XMLParser(remove_blank_text=True)):
            self.root.append(function)
        for let in self.schema.global_lets:
            self.let(self.root, let)
        self.visitor()
        for index, pattern in enumerate(self.schema.patterns):
            mode = f"{_INTERNAL}p{index}"
            self.xsl(self.root, "mode", name=mode, on_no_match="deep-skip")
            # deep-skip still descends from a document node: stop it, or the root element is matched twice.
            self.xsl(self.root, "template", match="/", mode=mode, priority="0")
            for position, rule in enumerate(pattern.rules):
                template = self.xsl(
                    self.root,
                    "template",
                    rule.origin,
                    match=rule.context,
                    mode=mode,
                    priority=str(len(pattern.rules) - position),
                )
                for item in rule.body:
                    if isinstance(item, Let):
                        self.let(template, item)
                    else:
                        self.assertion(template, item)
        text = etree.tostring(self.root, pretty_print=True, encoding="unicode")
        return Stylesheet(text, self.assertions, self.root, self.origins)

    def visitor(self) -> None:
        """The ``/`` template: every node once, each active pattern applied to it."""
        visit = self.xsl(self.root, "template", name=f"{_INTERNAL}visit")
        for index in range(len(self.schema.patterns)):
            self.xsl(visit, "apply-templates", select=".", mode=f"{_INTERNAL}p{index}")
        main = self.xsl(self.root, "template", match="/")
        report = etree.SubElement(main, "report")
        nodes = self.xsl(report, "for-each", select="descendant-or-self::node()")
        self.xsl(nodes, "call-template", name=f"{_INTERNAL}visit")
        attributes = self.xsl(nodes, "for-each", select="@*")
        self.xsl(attributes, "call-template", name=f"{_INTERNAL}visit")

    def let(self, parent: etree._Element, let: Let) -> None:
        variable = self.xsl(parent, "variable", let.origin, name=let.name, select=let.value)
        if let.as_type:
            variable.set("as", let.as_type)

    def assertion(self, template: etree._Element, assertion: Assertion) -> None:
        number = str(len(self.assertions))
        self.assertions.append(assertion)
        attempt = self.xsl(template, "try", assertion.origin)
        if assertion.report:
            fires = self.xsl(attempt, "if", assertion.origin, test=assertion.test)
        else:
            choose = self.xsl(attempt, "choose")
            self.xsl(choose, "when", assertion.origin, test=assertion.test)
            fires = self.xsl(choose, "otherwise")
        finding = etree.SubElement(fires, "f", n=number)
        self.xsl(finding, "attribute", name="loc", select=f"{_INTERNAL}path(.)")
        self.message(etree.SubElement(finding, "m"), assertion.message)
        for diagnostic in assertion.diagnostics:
            self.message(etree.SubElement(finding, "d"), diagnostic)
        catch = self.xsl(attempt, "catch")
        error = etree.SubElement(catch, "e", n=number)
        self.xsl(error, "attribute", name="loc", select=f"{_INTERNAL}path(.)")
        self.xsl(error, "value-of", select=f"${_ERR}code, ${_ERR}description")

    def message(self, target: etree._Element, source: etree._Element) -> None:
        """Text of an assert/report/diagnostic, with ``value-of`` and ``name`` evaluated in the rule context."""
        if source.text:
            self.xsl(target, "text").text = source.text
        for child in source:
            if isinstance(child.tag, str):
                if child.tag == f"{{{SCH}}}value-of":
                    self.xsl(target, "value-of", select=child.get("select", ""))
                elif child.tag == f"{{{SCH}}}name":
                    self.xsl(target, "value-of", select=f"name({child.get('path') or '.'})")
                else:
                    self.message(target, child)
            if child.tail:
                self.xsl(target, "text").text = child.tail
