"""The ISO Schematron engine (segur.schematron) on our own schemas in tests/data/schematron/.

main.sch describes a fictitious referral letter and exercises each supported ISO feature; the
failure modes use small schemas written into tmp_path. Every document here is synthetic.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from segur.schematron import CompiledSchematron, SchematronError, compile_schematron
from segur.validation import Finding, parse_untrusted

DATA = Path(__file__).parent / "data" / "schematron"
MAIN = DATA / "main.sch"
SCH = 'xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2"'
PATIENT = '<patient family="{family}" ins="{ins}"{vip}/>'


def letter(
    status: str = "final",
    created: str = "2024-05-01T10:00:00+02:00",
    sent: str = "2024-05-01T09:00:00+00:00",
    code: str = "A",
    author: str = '<author rpps="899910000019" role="referrer"/>',
    patients: tuple[tuple[str, str, bool], ...] = (
        ("Durand", "285057512345623", True),
        ("Martin", "185057512345673", False),
    ),
    extra: str = "",
) -> bytes:
    people = "".join(PATIENT.format(family=f, ins=i, vip=' vip="true"' if v else "") for f, i, v in patients)
    return (
        f'<letter xmlns="urn:example:referral" status="{status}"><created>{created}</created><sent>{sent}</sent>'
        f'<code code="{code}"/>{author}<patients>{people}</patients>{extra}</letter>'
    ).encode()


def by_rule(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.rule, []).append(finding)
    return grouped


@pytest.fixture(scope="module")
def core() -> CompiledSchematron:
    return compile_schematron(MAIN)


def test_a_conforming_letter_gives_only_the_informative_reports(core: CompiledSchematron) -> None:
    findings = core.validate(letter())
    assert [(f.rule, f.severity, f.location) for f in findings] == [
        ("HDR-NAME", "info", "/ex:letter"),
        ("PAT-NAMES", "info", "/ex:letter/ex:patients[1]"),
        ("FIRST-VIP", "info", "/ex:letter/ex:patients[1]/ex:patient[1]"),
        ("FIRST-ANY", "info", "/ex:letter/ex:patients[1]/ex:patient[2]"),
    ]
    assert core.title == "Fictitious referral letter"
    assert core.phase == "core"


def test_value_of_and_name_are_evaluated_in_the_rule_context(core: CompiledSchematron) -> None:
    findings = by_rule(core.validate(letter()))
    assert findings["HDR-NAME"][0].message == "root element is letter, first child is created"
    assert findings["PAT-NAMES"][0].message == "patients: DURAND, MARTIN"  # for ... return


def test_xpath2_matches_and_every_satisfies(core: CompiledSchematron) -> None:
    findings = by_rule(core.validate(letter(status="sent", patients=(("Petit", "28505751234", False),))))
    assert findings["HDR-STATUS"][0].message == "status sent is neither draft nor final"
    assert findings["HDR-STATUS"][0].severity == "error"
    assert findings["PAT-INS"][0].message == "every INS has 15 digits"


def test_xs_datetime_comparison_is_time_zone_aware() -> None:
    dates = compile_schematron(MAIN, phase="dates")
    # 09:00Z is after 10:00+02:00 (08:00Z), although "09:00" sorts before "10:00" as a string.
    assert dates.validate(letter()) == []
    late = dates.validate(letter(sent="2024-05-01T07:59:59Z"))
    assert [(f.rule, f.location) for f in late] == [("CHR-ORDER", "/ex:letter")]


def test_lets_at_schema_phase_pattern_and_rule_level(core: CompiledSchematron) -> None:
    three = (("A", "285057512345623", False), ("B", "285057512345623", False), ("C", "285057512345623", False))
    findings = by_rule(core.validate(letter(status="draft", sent="2024-05-01T07:00:00Z", patients=three)))
    assert findings["PAT-COUNT"][0].message == "at most 2 patients, found 3"  # schema-level let
    assert findings["HDR-FINAL"][0].message.startswith("the letter must be final")  # phase-level let
    assert "HDR-STATUS" not in findings  # pattern-level let $statusPattern accepts draft
    assert findings["HDR-SENT"][0].message == (  # rule-level let $created, an xs:dateTime
        "sent 2024-05-01T07:00:00Z before created 2024-05-01T10:00:00+02:00"
    )


def test_diagnostics_are_appended_to_the_message(core: CompiledSchematron) -> None:
    finding = by_rule(core.validate(letter(status="draft")))["HDR-FINAL"][0]
    assert finding.message == "the letter must be final (found status draft)"


def test_abstract_pattern_params_replace_whole_variable_names_only(core: CompiledSchematron) -> None:
    finding = by_rule(core.validate(letter(code="C")))["codes#1"][0]
    # $element became the rule context, $allowed and $label were substituted, $allowedCount (a let) was not.
    assert finding.message == "the letter code C is not one of the 2 codes A, B"
    assert finding.location == "/ex:letter/ex:code[1]"


def test_abstract_rules_are_inlined_through_nested_extends(core: CompiledSchematron) -> None:
    findings = by_rule(core.validate(letter(author='<author rpps=""/>')))
    assert findings["ID-PRESENT"][0].message == "the author has no RPPS"  # non-empty, extended by identified
    assert findings["ID-RPPS"][0].message == "identifier is not an RPPS"  # identified, from lib/identified.sch
    assert findings["AUT-ROLE"][0].location == "/ex:letter/ex:author[1]"


def test_the_first_matching_rule_of_a_pattern_wins(core: CompiledSchematron) -> None:
    findings = core.validate(letter())
    per_patient = {f.location: f.rule for f in findings if f.rule.startswith("FIRST-")}
    assert per_patient == {
        "/ex:letter/ex:patients[1]/ex:patient[1]": "FIRST-VIP",
        "/ex:letter/ex:patients[1]/ex:patient[2]": "FIRST-ANY",
    }


@pytest.mark.parametrize(
    ("level", "expected"),
    [("fatal", "error"), ("warn", "warning"), ("information", "info")],
)
def test_roles_and_flags_map_to_severities(core: CompiledSchematron, level: str, expected: str) -> None:
    findings = by_rule(core.validate(letter(extra=f'<note level="{level}"/>')))
    assert findings["SEV-RULE-ROLE"][0].severity == "warning"  # role on the rule
    (chosen,) = [f for rule, fs in findings.items() if rule in {"SEV-FATAL", "SEV-WARN", "SEV-INFO"} for f in fs]
    assert chosen.severity == expected


def test_without_id_nor_role_an_assert_is_an_error_named_after_its_pattern(core: CompiledSchematron) -> None:
    (finding,) = by_rule(core.validate(letter(extra="<signature/>")))["severities#5"]
    assert finding == Finding("severities#5", "error", "assertion '@date' failed", "/ex:letter/ex:signature[1]")


def test_phases_select_the_active_patterns(tmp_path: Path) -> None:
    default = {f.rule for f in compile_schematron(MAIN, phase="#DEFAULT").validate(letter(sent="2024-05-01T07:00Z"))}
    assert "HDR-SENT" in default
    assert "CHR-ORDER" not in default
    assert compile_schematron(MAIN, phase="#DEFAULT").phase == "core"
    schema = write(
        tmp_path,
        {
            "phases.sch": f"""<schema {SCH}><ns prefix="ex" uri="urn:example:referral"/>
              <phase id="one"><active pattern="p1"/></phase>
              <pattern id="p1"><rule context="ex:letter"><report id="R1" test="true()">one</report></rule></pattern>
              <pattern id="p2"><rule context="ex:letter"><report id="R2" test="true()">two</report></rule></pattern>
            </schema>"""
        },
    )
    assert [f.rule for f in compile_schematron(schema).validate(letter())] == ["R1", "R2"]  # no defaultPhase: #ALL
    assert [f.rule for f in compile_schematron(schema, phase="#ALL").validate(letter())] == ["R1", "R2"]
    assert [f.rule for f in compile_schematron(schema, phase="one").validate(letter())] == ["R1"]


def test_a_phase_let_exists_only_in_its_phase() -> None:
    with pytest.raises(SchematronError, match=r"\$requiredStatus has not been declared") as raised:
        compile_schematron(MAIN, phase="#ALL")
    assert raised.value.line == 37


def test_a_phase_naming_an_unknown_pattern_warns_on_every_validation() -> None:
    findings = compile_schematron(MAIN, phase="ghost").validate(letter())
    assert findings[0].rule == "SCH-PHASE"
    assert findings[0].severity == "warning"
    assert "'no-such-pattern'" in findings[0].message
    assert {f.rule for f in findings[1:]} == {"FIRST-VIP", "FIRST-ANY"}


def test_an_unknown_phase_is_a_schema_error() -> None:
    with pytest.raises(SchematronError, match="no phase 'nope'"):
        compile_schematron(MAIN, phase="nope")


def test_includes_resolve_relative_to_the_including_file(core: CompiledSchematron) -> None:
    assert {p.relative_to(DATA).as_posix() for p in core.files} == {
        "main.sch",
        "lib/abstract.sch",
        "lib/identified.sch",
        "lib/chronology.sch",
        "lib/parts/chronology-rule.sch",
    }


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder / next(iter(files))


def test_attribute_text_and_document_nodes_are_rule_contexts(tmp_path: Path) -> None:
    schema = write(
        tmp_path,
        {
            "nodes.sch": f"""<schema {SCH}><ns prefix="ex" uri="urn:example:referral"/>
              <pattern><rule context="/"><report id="DOC" test="ex:letter">document</report></rule></pattern>
              <pattern><rule context="ex:patient/@ins"><assert id="INS" test="string-length(.) = 15">INS</assert></rule>
              </pattern>
              <pattern><rule context="ex:created/text()"><report id="TXT" test="true()">text</report></rule></pattern>
            </schema>"""
        },
    )
    findings = compile_schematron(schema).validate(letter(patients=(("Petit", "123", False),)))
    assert [(f.rule, f.location) for f in findings] == [
        ("DOC", "/"),
        ("TXT", "/ex:letter/ex:created[1]/text()[1]"),
        ("INS", "/ex:letter/ex:patients[1]/ex:patient[1]/@ins"),
    ]


def test_an_undeclared_namespace_is_located_with_an_eqname(tmp_path: Path) -> None:
    schema = write(
        tmp_path,
        {
            "q.sch": f'<schema {SCH}><pattern><rule context="*:code"><report test="1">x</report>'
            "</rule></pattern></schema>"
        },
    )
    (finding,) = compile_schematron(schema).validate(letter())
    assert finding.location == "/Q{urn:example:referral}letter/Q{urn:example:referral}code[1]"


def test_xslt_functions_and_keys_declared_in_the_schema_are_available(tmp_path: Path) -> None:
    schema = write(
        tmp_path,
        {
            "x.sch": f"""<schema {SCH} xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                  xmlns:local="urn:example:local">
              <ns prefix="ex" uri="urn:example:referral"/><ns prefix="local" uri="urn:example:local"/>
              <xsl:key name="by-family" match="ex:patient" use="@family"/>
              <xsl:function name="local:shout">
                <xsl:param name="s"/><xsl:sequence select="upper-case($s)"/>
              </xsl:function>
              <pattern><rule context="ex:letter">
                <report id="FN" test="true()"><value-of select="local:shout(@status)"/></report>
                <assert id="KEY" test="empty(key('by-family', 'Durand'))">Durand is known</assert>
              </rule></pattern>
            </schema>"""
        },
    )
    findings = compile_schematron(schema).validate(letter())
    assert [(f.rule, f.message) for f in findings] == [("FN", "FINAL"), ("KEY", "Durand is known")]


def test_a_dynamic_error_is_one_finding_and_the_other_checks_still_run(tmp_path: Path) -> None:
    schema = write(
        tmp_path,
        {
            "dyn.sch": f"""<schema {SCH}><ns prefix="ex" uri="urn:example:referral"/>
              <pattern id="dyn"><rule context="ex:letter">
                <assert id="BAD-DATE" test="xs:dateTime(@status) lt current-dateTime()">unreachable</assert>
                <assert id="NO-FILE" test="doc('missing-value-set.xml')//code">unreachable</assert>
                <assert id="STILL-RUNS" test="false()">still evaluated</assert>
              </rule></pattern>
            </schema>"""
        },
    )
    findings = by_rule(compile_schematron(schema).validate(letter()))
    assert "FORG0001" in findings["BAD-DATE"][0].message
    assert findings["BAD-DATE"][0].message.startswith("could not be evaluated")
    assert "FODC0002" in findings["NO-FILE"][0].message
    assert findings["STILL-RUNS"][0].message == "still evaluated"


def test_document_paths_in_the_schema_resolve_against_the_schema_file(tmp_path: Path) -> None:
    schema = write(
        tmp_path,
        {
            "schemas/vs.sch": f"""<schema {SCH}><ns prefix="ex" uri="urn:example:referral"/>
              <let name="codes" value="'../values/codes.xml'"/>
              <pattern><rule context="ex:code">
                <assert id="VS" test="@code = doc($codes)//value/@code">code <value-of select="@code"/> unknown</assert>
              </rule></pattern>
            </schema>""",
            "values/codes.xml": '<values><value code="A"/><value code="B"/></values>',
        },
    )
    compiled = compile_schematron(schema)
    assert compiled.validate(letter(code="B")) == []
    assert [f.message for f in compiled.validate(letter(code="Z"))] == ["code Z unknown"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'<!DOCTYPE l [<!ENTITY x "y">]><letter>&x;</letter>', "DOCTYPE"),
        (b"<letter><unclosed></letter>", "malformed"),
    ],
)
def test_hostile_or_malformed_documents_give_one_error_finding(
    core: CompiledSchematron, document: bytes, reason: str
) -> None:
    (finding,) = core.validate(document)
    assert finding.rule == "SCH-DOCUMENT"
    assert finding.severity == "error"
    assert reason in finding.message


def test_a_nested_element_is_validated_as_its_own_document(core: CompiledSchematron) -> None:
    wrapper = parse_untrusted(b"<wrapper>" + letter(status="draft") + b"</wrapper>")
    rules = {f.rule for f in core.validate_tree(wrapper[0])}
    assert "HDR-FINAL" in rules  # /ex:letter matched: the letter is the document root


@pytest.mark.parametrize(
    ("files", "message", "where"),
    [
        (
            {
                "a.sch": f'<schema {SCH}><include href="b.sch"/></schema>',
                "b.sch": "<pattern xmlns="
                '"http://purl.oclc.org/dsdl/schematron" id="b">\n<include href="a.sch"/></pattern>',
            },
            "include cycle: a.sch -> b.sch -> a.sch",
            ("b.sch", 2),
        ),
        (
            {"a.sch": f'<schema {SCH}>\n<pattern id="p" is-a="nowhere"/></schema>'},
            "is-a='nowhere': no abstract pattern",
            ("a.sch", 2),
        ),
        (
            {
                "a.sch": f'<schema {SCH}><include href="parts/p.sch"/></schema>',
                "parts/p.sch": (
                    '<pattern xmlns="http://purl.oclc.org/dsdl/schematron">\n<rule context="x">\n\n'
                    '<assert test="count(y) = ">broken</assert></rule></pattern>'
                ),
            },
            "XPST0003",
            ("parts/p.sch", 4),
        ),
        (
            {
                "a.sch": f'<schema {SCH}><pattern>\n<rule context="x[[">\n<assert test="1">x</assert></rule></pattern>'
                "</schema>"
            },
            "rule context",
            ("a.sch", 2),
        ),
        (
            {
                "a.sch": f'<schema {SCH}><pattern><rule context="x">\n<report test="$undeclared">x</report></rule>'
                "</pattern></schema>"
            },
            "XPST0008",
            ("a.sch", 2),
        ),
        (
            {
                "a.sch": f'<schema {SCH}><pattern><rule context="x">\n<extends rule="nowhere"/></rule></pattern>'
                "</schema>"
            },
            "extends rule='nowhere'",
            ("a.sch", 2),
        ),
        (
            {"a.sch": f'<schema {SCH}>\n<include href="missing.sch"/></schema>'},
            "cannot read",
            ("a.sch", 2),
        ),
        (
            {
                "a.sch": f'<schema {SCH}><let name="v" value="1"/><pattern>\n<let name="v" value="2"/></pattern>'
                "</schema>"
            },
            "$v declared twice",
            ("a.sch", 2),
        ),
        (
            {"a.sch": '<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="stx"/>'},
            "queryBinding 'stx' is not supported",
            ("a.sch", 1),
        ),
        (
            {"a.sch": "<schema/>"},
            "not an ISO Schematron schema",
            ("a.sch", 1),
        ),
    ],
    ids=[
        "include-cycle",
        "unknown-is-a",
        "invalid-xpath",
        "invalid-context",
        "undeclared-variable",
        "unknown-extends",
        "missing-include",
        "conflicting-lets",
        "query-binding",
        "not-schematron",
    ],
)
def test_schema_errors_name_the_file_and_line(
    tmp_path: Path, files: dict[str, str], message: str, where: tuple[str, int]
) -> None:
    main = write(tmp_path, files)
    with pytest.raises(SchematronError) as raised:
        compile_schematron(main)
    assert message in str(raised.value)
    assert (Path(raised.value.file), raised.value.line) == ((tmp_path / where[0]).resolve(), where[1])


def test_the_cache_returns_the_same_compilation_until_a_file_of_the_schema_changes(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(DATA, copy)
    first = compile_schematron(copy / "main.sch")
    assert compile_schematron(copy / "lib" / ".." / "main.sch") is first
    assert compile_schematron(copy / "main.sch", phase="dates") is not first
    included = copy / "lib" / "parts" / "chronology-rule.sch"
    stat = included.stat()
    os.utime(included, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert compile_schematron(copy / "main.sch") is not first


def test_validation_is_thread_safe(core: CompiledSchematron) -> None:
    documents = [letter(status=s, code=c) for s in ("final", "draft", "sent") for c in ("A", "Q")]
    expected = [core.validate(d) for d in documents]
    results: dict[int, list[list[Finding]]] = {}

    def run(worker: int) -> None:
        results[worker] = [core.validate(d) for d in documents]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[n] == expected for n in range(4))


def test_fifty_rules_on_a_50_kb_cda_document(tmp_path: Path) -> None:
    """The shape measured in engine.py's docstring: 10 patterns x 5 rules, ANS-style contexts, ~47 KB."""
    rules = "".join(
        f"""<pattern id="P{p}">{
            "".join(
                f'''<rule context="*[cda:templateId/@root='1.2.3.{p * 5 + r}']"><let name="c" value="count(cda:code)"/>
            <assert test="$c = 1">one code</assert>
            <assert test="matches(cda:code/@code, '^[0-9A-Z]+$')">code <value-of select="cda:code/@code"/></assert>
            <report test="cda:value[@nullFlavor]">null value</report></rule>'''
                for r in range(5)
            )
        }</pattern>"""
        for p in range(10)
    )
    schema = write(tmp_path, {"fifty.sch": f'<schema {SCH}><ns prefix="cda" uri="urn:hl7-org:v3"/>{rules}</schema>'})
    entries = "".join(
        f'<entry><observation classCode="OBS" moodCode="EVN"><templateId root="1.2.3.{i % 50}"/>'
        f'<id root="1.2.250.1.213.1.1.9" extension="{i}"/><code code="{"x" if i % 7 == 0 else "X"}{i}" '
        f'codeSystem="2.16.840.1.113883.6.1" displayName="Observation {i}"/><statusCode code="completed"/>'
        f'<effectiveTime value="20240501103000+0200"/><value xsi:type="PQ" value="{i}.5" unit="mg"/></observation>'
        "</entry>"
        for i in range(140)
    )
    document = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<component><structuredBody><component><section>{entries}</section></component></structuredBody>"
        "</component></ClinicalDocument>"
    ).encode()
    assert 45_000 < len(document) < 55_000
    findings = compile_schematron(schema).validate(document)
    lower_case = range(0, 140, 7)
    # the second assertion (number 3r+2 in its pattern) of rule r of pattern p checks templateId 1.2.3.(5p+r)
    assert sorted(f.rule for f in findings) == sorted(f"P{i % 50 // 5}#{i % 50 % 5 * 3 + 2}" for i in lower_case)
