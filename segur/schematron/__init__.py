"""ISO Schematron (queryBinding xslt2/xpath2+) for the harness, on SaxonC-HE's XSLT 3.0 / XPath 3.1.

lxml's Schematron is XSLT 1 only, and the ANS publishes its CDA content checks (TestContenuCDA)
for XSLT 2; the usual skeleton compilers are not on any package registry. This package reads a
schema (loader.py), generates an XSLT 3.0 stylesheet from it (xslt.py) and runs it with Saxon
(engine.py), returning ``segur.validation.Finding`` objects.
"""

from segur.schematron.engine import CompiledSchematron, compile_schematron
from segur.schematron.loader import SchematronError

__all__ = ["CompiledSchematron", "SchematronError", "compile_schematron"]
