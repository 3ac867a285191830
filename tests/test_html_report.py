"""rapport.html: what a certification reviewer sees, checked as text and in a real browser.

The pure-Python tests pin the content and the escaping; the browser test opens the file as a
reviewer does (file://, offline) and uses the filters, the expansion and the print layout.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from browser import chromium, open_page
from report_samples import sample_report, write_rem_workbook, write_sample_run

from segur.rem import apply_overlay, read_rem
from segur.reports.html import BODY_CAP, pretty_evidence, render_html

HOSTILE = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "reports" / "out" / "test-screenshots"
OFFICIEL = {
    "enonce": "Le DPI vérifie l'empreinte du document avant de l'alimenter.",
    "section": "DMP",
    "bloc": "Alimentation",
    "fonction": "Alimenter le DMP",
    "conditionnelle": False,
    "profil": None,
    "scenarios": [{"numero": "1", "texte": "Alimenter un document", "preuves": [
        {"numero": "1", "texte": "Capture de l'acquittement du DMP"}]}],
}  # fmt: skip


def _entry(report: dict[str, Any], identifier: str) -> dict[str, Any]:
    return next(e for e in report["exigences"] if e["id"] == identifier)


def _hostile_report() -> dict[str, Any]:
    """The sample with attacker-controlled text in every kind of field the page shows."""
    report = sample_report()
    report["sut"]["name"] = HOSTILE
    entry = _entry(report, "DMP/PROV.03")
    entry["titre"] = HOSTILE
    entry["messages"].append(HOSTILE)
    entry["officiel"] = {**OFFICIEL, "enonce": HOSTILE}
    scenario = entry["scenarios"][0]
    scenario["nom"] = HOSTILE
    scenario["parametres"] = {HOSTILE: HOSTILE}
    scenario["etapes"][1]["text"] = HOSTILE
    scenario["constats"].append({"rule": HOSTILE, "severity": "error", "message": HOSTILE, "location": HOSTILE,
                                 "requirement": "DMP/PROV.03", "origine": HOSTILE})  # fmt: skip
    scenario["echanges"][0]["outcome"] = HOSTILE
    entry["nature"] = "PRECONISATION"
    report["rem_inconnues"] = [HOSTILE]
    return report


def _row(page: str, anchor: str) -> str:
    """One requirement's markup: its main row and its detail row, up to the next requirement or table end."""
    start = page.index(f"id='exigence-{anchor}'")
    return re.split(r"<tbody class='exigence|</table></section>", page[start:])[0]


def _sample_run(tmp_path: Path, report: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    report = report or sample_report()
    run_dir = write_sample_run(tmp_path / "run", report)
    return report, run_dir


def test_top_of_report_has_verdict_versions_and_counts(tmp_path: Path) -> None:
    report, run_dir = _sample_run(tmp_path)
    page = render_html(report, run_dir)
    assert "Verdict : ✘ NON CONFORME" in page
    for text in ("LOGICIEL TEST 1.0", "reference", "Hôpital (DPI)", "Bac à sable", "2026.11.5", "projet 2026.11",
                 "aucun paquet CI-SIS", "Ségur vague 2 (test)", "30 s"):  # fmt: skip
        assert text in page, text
    assert "Surcouche REM" not in page, "no REM overlay in this run"
    for statut in ("conforme", "non_conforme", "non_teste", "non_applicable", "preuve_manuelle", "externe"):
        assert re.search(rf"data-statut='{statut}' aria-pressed='false'[^>]*>[^<]+<b>1</b>", page), statut


def test_requirement_detail_has_steps_proofs_findings_and_pretty_exchanges(tmp_path: Path) -> None:
    report, run_dir = _sample_run(tmp_path)
    page = render_html(report, run_dir)
    row = _row(page, "DMP_PROV.03")
    assert "CRITIQUE" in row and "✘ Non conforme" in row and "hash différent" in row
    assert "✘ échec</span> <b>Alors</b> le DMP accepte le document" in row
    assert "<td>01.01</td><td><code>DMP/PROV.03.01.01</code>" in row, "proof numbered scenario.proof"
    for text in ("XDSNonIdenticalHash", "Erreur", "/rim:ExtrinsicObject[1]/rim:Slot[@name=&#x27;hash&#x27;]",
                 "hash du document différent de celui des métadonnées", "échange #2"):  # fmt: skip
        assert text in row, text
    # The SOAP request indented, the JSON response indented, each with its raw file one click away.
    assert "&lt;s:Envelope xmlns:s=&quot;http://www.w3.org/2003/05/soap-envelope&quot;&gt;\n  &lt;s:Body&gt;" in row
    assert "{\n  &quot;active&quot;: true,\n  &quot;access_token&quot;" in row
    assert "href='evidence/DMP_PROV.03.01/0002-dmp-iti-41-request.http'" in row
    assert "<a href='#echange-DMP_PROV.03.01-2'>#2</a>" in row, "proof links to its exchange"
    conforme = _row(page, "INS_va1.02")
    assert "<th scope='col'>document</th>" in conforme and "<td>LDL-SES</td>" in conforme, "outline example"


def test_page_is_self_contained(tmp_path: Path) -> None:
    report, run_dir = _sample_run(tmp_path)
    page = render_html(report, run_dir)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*['"]?(?:https?:|//)""", page)


def test_raw_links_resolve_to_the_evidence_files(tmp_path: Path) -> None:
    report, run_dir = _sample_run(tmp_path)
    hrefs = re.findall(r"<a class='raw' href='([^']+)'>fichier brut</a>", render_html(report, run_dir))
    assert len(hrefs) == 4 and all((run_dir / unquote(href)).is_file() for href in hrefs)


def test_without_run_dir_exchanges_are_links_only() -> None:
    page = render_html(sample_report())
    assert "href='evidence/DMP_PROV.03.01/0002-dmp-iti-41-request.http'" in page
    assert "<pre>" not in page


def test_old_report_without_versions_mode_or_findings_renders() -> None:
    report = sample_report()
    for key in ("versions", "mode"):
        del report[key]
    for entry in report["exigences"]:
        for scenario in entry["scenarios"]:
            del scenario["constats"]
    page = render_html(report)
    assert "2026.11.5" in page and "Mode</th><td>non précisé" in page


def test_official_rem_texts_and_proof_numbers() -> None:
    report = sample_report()
    _entry(report, "DMP/PROV.03")["officiel"] = OFFICIEL
    report["versions"]["rem"] = "REM DPI v2 (surcouche test)"
    page = render_html(report)
    assert "Surcouche REM</th><td>REM DPI v2 (surcouche test)" in page
    assert "Le DPI vérifie l&#x27;empreinte du document avant de l&#x27;alimenter." in page
    assert "<b>Scénario N° 1</b> : Alimenter un document" in page
    assert "<th scope='col'>N° preuve</th><th scope='col'>Preuve attendue</th>" in page
    assert "REM : Capture de l&#x27;acquittement du DMP" in page, "harness proof 01.01 shows REM proof N° 1"


def test_overlay_from_a_workbook_matches_full_proof_ids_and_lists_uncovered_requirements(tmp_path: Path) -> None:
    """A real import numbers proofs in full ("INS/va1.02.01.01"): they still reach the harness proofs they name."""
    report = apply_overlay(sample_report(), read_rem(write_rem_workbook(tmp_path / "REM.xlsx")))
    page = render_html(report)
    assert "REM : Preuve A" in _row(page, "INS_va1.02"), "INS/va1.02.01.01 names harness proof 01.01"
    dmp = _row(page, "DMP_PROV.03")
    assert "REM : Hash" in dmp and "REM : Dix" not in dmp, "official proof 10 names no harness proof"
    uncovered = page[page.index("id='rem-inconnues'") : page.index("</section>", page.index("id='rem-inconnues'"))]
    assert "Exigences du REM non couvertes (1)" in uncovered and "<li><code>SC.INS/CONF.01</code></li>" in uncovered
    assert "Absentes du catalogue du harnais" in uncovered
    assert page.index("id='rem-inconnues'") < page.index("class='socle'"), "shown before the requirement tables"


def test_rem_proof_numbers_plain_padded_or_full_and_nothing_else() -> None:
    names = {"1": True, "01": True, " 1 ": True, "DMP/PROV.03.01.01": True, "DMP/PROV.03 .01.1": True,
             "2": False, "DMP/PROV.03.02.01": False, "DMP/PROV.04.01.01": False, "INS/va1.02.01.01": False}  # fmt: skip
    for numero, expected in names.items():
        report = sample_report()
        officiel = {**OFFICIEL, "scenarios": [{**OFFICIEL["scenarios"][0], "preuves": [
            {"numero": numero, "texte": "Capture de l'acquittement du DMP"}]}]}  # fmt: skip
        _entry(report, "DMP/PROV.03")["officiel"] = officiel
        assert ("REM : Capture" in render_html(report)) is expected, numero


def test_no_uncovered_section_without_unknown_requirements() -> None:
    report = sample_report()
    report["rem_inconnues"] = []
    assert "rem-inconnues" not in render_html(report)


def test_preconisation_row_is_marked_and_the_verdict_rule_says_it_does_not_decide() -> None:
    report = sample_report()
    _entry(report, "DMP/PROV.03")["nature"] = "PRECONISATION"
    page = render_html(report)
    rule = re.search(r"<p class='note' id='regle-verdict'>([^<]+)</p>", page)[1]
    assert "seulement si chaque EXIGENCE automatique applicable est conforme" in rule
    assert "Les préconisations sont jugées et affichées mais ne décident pas du verdict" in rule
    assert "homologation" not in rule, "the homologation rule is said only for an homologation run"
    preco = _row(page, "DMP_PROV.03")
    assert "data-nature='PRECONISATION'" in preco and "✘ Non conforme" in preco
    assert "<td class='preco'>PRECONISATION <small>préconisation : ne décide pas du verdict</small></td>" in preco
    assert "<td>EXIGENCE</td>" in _row(page, "INS_va1.02") and "préconisation :" not in _row(page, "INS_va1.02")
    report["mode"] = "homologation"
    assert "CRITIQUE est aussi non conforme sur un avertissement" in render_html(report)


def test_hostile_values_are_escaped(tmp_path: Path) -> None:
    report, run_dir = _sample_run(tmp_path, _hostile_report())
    evidence = run_dir / _entry(report, "DMP/PROV.03")["scenarios"][0]["echanges"][0]["response"]
    evidence.write_bytes(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n</pre>" + HOSTILE.encode())
    page = render_html(report, run_dir)
    assert page.count("<script") == 1 and "<img" not in page
    assert "alert(1)</script>" not in page
    assert page.count("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;") >= 10


def test_evidence_paths_cannot_leave_the_run_directory(tmp_path: Path) -> None:
    report, run_dir = _sample_run(tmp_path)
    (tmp_path / "secret.txt").write_text("SECRET-OUTSIDE-RUN")
    exchange = _entry(report, "DMP/PROV.03")["scenarios"][0]["echanges"][0]
    exchange["request"], exchange["response"] = "../secret.txt", "javascript:alert(1)"
    page = render_html(report, run_dir)
    assert "SECRET-OUTSIDE-RUN" not in page
    assert "href='../secret.txt'" not in page and "href='javascript:" not in page
    assert page.count("chemin de preuve refusé") == 2


def test_csp_admits_only_the_page_own_script_and_style(tmp_path: Path) -> None:
    page = render_html(sample_report())
    csp = re.search(r'http-equiv=\'Content-Security-Policy\' content="([^"]+)"', page)[1]
    for tag in ("script", "style"):
        source = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S)[1]
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp


def test_pretty_evidence_indents_xml_and_json() -> None:
    soap = b"POST /x HTTP/1.1\r\nContent-Type: application/soap+xml\r\n\r\n<a><b><c>1</c></b></a>"
    assert pretty_evidence(soap, ".http") == (
        "POST /x HTTP/1.1\nContent-Type: application/soap+xml\n\n<a>\n  <b>\n    <c>1</c>\n  </b>\n</a>"
    )
    token = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a":[1,{"b":"\xc3\xa9"}]}'
    assert pretty_evidence(token, ".http").endswith('{\n  "a": [\n    1,\n    {\n      "b": "é"\n    }\n  ]\n}')


def test_pretty_evidence_refuses_doctype_and_shows_raw_text() -> None:
    bomb = b'HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<!DOCTYPE a [<!ENTITY x "BOOM">]><a>&x;</a>'
    text = pretty_evidence(bomb, ".http")
    assert "[XML non analysé : DOCTYPE and entity declarations are not accepted]" in text
    assert "<a>&x;</a>" in text and "<a>BOOM</a>" not in text


def test_pretty_evidence_mime_parts_and_base64() -> None:
    zipped = base64.encodebytes(b"PK\x03\x04" + bytes(300)).decode()
    eml = (
        "From: a@test.mssante.fr\r\nSubject: test\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "n=C3=A9(e) le 31/12/1975\r\n"
        "--B\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{zipped}\r\n--B--\r\n"
    ).encode()
    text = pretty_evidence(eml, ".eml")
    assert text.startswith("From: a@test.mssante.fr\nSubject: test")
    assert "── partie 1/2 ──\nContent-Type: text/plain; charset=utf-8" in text and "né(e) le 31/12/1975" in text
    assert "── partie 2/2 ──" in text and "[304 octets base64]" in text and zipped[:40] not in text


def test_pretty_evidence_keeps_transcripts_and_summarises_embedded_base64() -> None:
    transcript = b"* OK IMAP4rev1\r\nA1 AUTHENTICATE XOAUTH2\r\n<redacted>\r\n"
    assert pretty_evidence(transcript, ".txt") == transcript.decode()
    document = base64.b64encode(bytes(6000)).decode()
    xml = f"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<r><Document>{document}</Document></r>".encode()
    assert "<Document>[6000 octets base64]</Document>" in pretty_evidence(xml, ".http")


def test_pretty_evidence_caps_each_part() -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * (BODY_CAP + 500)
    text = pretty_evidence(big, ".http")
    assert text.endswith("x\n… tronqué, voir le fichier brut") and len(text) < BODY_CAP + 200


def test_report_in_chromium(tmp_path: Path) -> None:
    """Loads offline without errors, filters and expands, prints; hostile text never runs."""
    report, run_dir = _sample_run(tmp_path, _hostile_report())
    html = run_dir / "rapport.html"
    html.write_text(render_html(report, run_dir), encoding="utf-8")
    with chromium() as browser:
        page, problems = open_page(browser, html.as_uri())
        assert page.locator("#verdict").is_visible()
        assert page.locator("#verdict").inner_text() == "Verdict : ✘ NON CONFORME"
        counts = page.locator("button.count")
        assert counts.count() == 6 and all(counts.nth(i).is_visible() for i in range(6))
        assert page.locator("button.count[data-statut=non_conforme]").inner_text() == "✘ Non conforme : 1"
        dmp, ins = page.locator("#exigence-DMP_PROV\\.03 tr.main"), page.locator("#exigence-INS_va1\\.02 tr.main")
        assert dmp.is_visible() and "DMP/PROV.03" in dmp.inner_text() and "CRITIQUE" in dmp.inner_text()
        assert HOSTILE in dmp.inner_text(), "hostile title shown as text"

        finding = page.locator("#exigence-DMP_PROV\\.03 table.constats").get_by_text("XDSNonIdenticalHash")
        assert not finding.is_visible(), "details start collapsed"
        dmp.get_by_role("button").click()
        assert finding.is_visible()
        exchange = page.locator("#echange-DMP_PROV\\.03\\.01-2")
        exchange.locator("summary").click()
        request = exchange.locator("pre").first
        assert request.is_visible() and "<s:Envelope" in request.inner_text()
        assert "\n  <s:Body>" in request.inner_text()

        page.get_by_label("Conforme", exact=True).uncheck()
        assert not ins.is_visible() and dmp.is_visible()
        page.get_by_label("Conforme", exact=True).check()
        page.locator("button.count[data-statut=non_conforme]").click()
        assert dmp.is_visible() and not ins.is_visible() and not page.locator("section[data-socle=INS]").is_visible()
        page.locator("button.count[data-statut=non_conforme]").click()
        assert ins.is_visible()
        page.get_by_label("DMP", exact=True).uncheck()
        assert not dmp.is_visible() and ins.is_visible()
        page.get_by_label("DMP", exact=True).check()
        page.get_by_label("Recherche").fill("va1.02")
        assert ins.is_visible() and not dmp.is_visible()
        page.get_by_label("Recherche").fill("")
        assert dmp.is_visible() and page.locator("#affichees").inner_text() == "6 exigence(s) affichée(s) sur 6"

        page.screenshot(path=tmp_path / "rapport.png", full_page=True)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "rapport.png", SCREENSHOTS / "rapport.png")

        page.locator("#tout-replier").click()
        page.emulate_media(media="print")
        assert not page.locator(".filters").is_visible()
        assert finding.is_visible() and page.locator("#exigence-INS_va1\\.02 .scenario").is_visible()
        assert request.is_visible(), "a failing requirement's exchanges print expanded"
        assert page.pdf()[:5] == b"%PDF-"
        assert problems.errors == [] and problems.dialogs == []

        # Escaping alone must hold: the same page with its Content-Security-Policy switched off.
        unguarded, problems = open_page(browser, html.as_uri(), bypass_csp=True)
        assert unguarded.locator(".filters").is_visible() and HOSTILE in unguarded.locator("h1").inner_text()
        assert problems.errors == [] and problems.dialogs == []

        # Without JavaScript nothing is hidden: every detail shows, the useless filters do not.
        static, problems = open_page(browser, html.as_uri(), java_script_enabled=False)
        assert static.locator("#exigence-DMP_PROV\\.03").get_by_text("XDSNonIdenticalHash").is_visible()
        assert not static.locator(".filters").is_visible()
        assert problems.errors == []
