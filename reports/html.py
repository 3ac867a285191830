"""rapport.html: the one file an ANS reviewer opens, offline, to judge a run and print it to PDF.

Everything is inline (CSS, one script, no fonts or images) so the file can be mailed or
attached to a référencement dossier on its own; the evidence files it links to sit next to
it in the run directory. Every value comes from the run, which is driven by the software under
test, so every value is hostile: all text is escaped, links are relative paths that are
percent-encoded, and a Content-Security-Policy admits only this module's own script and style
(by hash) as a second wall. Without JavaScript the page shows everything expanded; the script
only adds the filters and the collapsing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lxml import etree

from segur.validation import MalformedXml, UnsafeXml, parse_untrusted

STATUSES = ("conforme", "non_conforme", "non_teste", "non_applicable", "preuve_manuelle", "externe")
LABELS = {
    "conforme": "Conforme",
    "non_conforme": "Non conforme",
    "non_teste": "Non testé",
    "non_applicable": "Non applicable",
    "preuve_manuelle": "Preuve manuelle",
    "externe": "Preuve externe",
}
# A mark beside every label: the status must read in black and white and for colour-blind reviewers.
MARKS = {
    "conforme": "✔",
    "non_conforme": "✘",
    "non_teste": "?",
    "non_applicable": "–",
    "preuve_manuelle": "✎",
    "externe": "↗",
}
STEP_MARKS = {"passe": "✔ passé", "echec": "✘ échec", "non_execute": "– non exécuté"}
SEVERITIES = {"error": "Erreur", "warning": "Avertissement", "info": "Information"}
SOCLES = {
    "INS": "INS — identité nationale de santé",
    "PSC": "Pro Santé Connect",
    "DMP": "DMP — dossier médical partagé",
    "MSS": "MSSanté — messageries sécurisées de santé",
    "MSSANTE": "MSSanté — messageries sécurisées de santé",
}
MODES = {"bac-a-sable": "Bac à sable", "homologation": "Homologation"}
COULOIRS = {"hopital": "Hôpital (DPI)", "ville": "Ville (LGC)"}
BODY_CAP = 40_000
"""Characters kept inline per header block or body part; the raw file is one click away.

Per part rather than per file: a pretty-printed ITI-41 SOAP envelope alone is about 30 000
characters, and its XDS metadata (hash, size) at the end is what a DMP finding is about.
"""
SIDE_CAP = 4 * BODY_CAP
"""Characters kept inline for all the parts of one message; bigger bodies are not even pretty-printed."""
_BASE64_TEXT = 2_000
"""XML text nodes longer than this that are base64 (embedded documents) are summarised, not dumped."""

STYLE = """
:root{--ink:#1d2733;--muted:#526070;--line:#dde3ea;--ok:#1f7a3f;--ko:#b42318}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:1200px;color:var(--ink);
padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{margin:2rem 0 .5rem;border-bottom:2px solid var(--line);font-size:1.2rem}
h4{margin:.8rem 0 .3rem;font-size:1rem}h5{margin:.6rem 0 .2rem;font-size:.92rem}
.verdict{display:inline-block;padding:.4rem 1rem;border-radius:6px;font-weight:700;font-size:1.25rem;color:#fff;
margin:.3rem 0}
.v-conforme{background:var(--ok)}.v-non_conforme{background:var(--ko)}
.top{display:flex;flex-wrap:wrap;gap:2rem}.top table{border-collapse:collapse}
.top th,.top td{text-align:left;padding:.1rem .8rem .1rem 0;vertical-align:top}
.top th{color:var(--muted);font-weight:600}
.top caption{text-align:left;font-weight:700;padding-bottom:.2rem}
.note{color:var(--muted);font-size:.9em}
.counts{display:flex;flex-wrap:wrap;gap:.4rem;margin:1rem 0;padding:0;list-style:none}
.count{font:inherit;border:1px solid #c5ced8;border-radius:14px;padding:.25rem .8rem;cursor:pointer;color:var(--ink)}
.count[aria-pressed=true]{outline:3px solid var(--ink)}
.badge{padding:.1rem .5rem;border-radius:10px;font-size:.85em;white-space:nowrap;border:1px solid #c5ced8}
.badge.s-conforme,.count.s-conforme{background:#d1f2dc}.badge.s-non_conforme,.count.s-non_conforme{background:#fbd5d1}
.badge.s-non_teste,.count.s-non_teste{background:#fdebc8}.badge.s-preuve_manuelle,.count.s-preuve_manuelle,
.badge.s-externe,.count.s-externe{background:#dbe7fb}.badge.s-non_applicable,.count.s-non_applicable,.s-autre{background:#eceff3}
tbody.s-non_conforme>tr>*:first-child{border-left:4px solid var(--ko)}
tbody.s-non_teste>tr>*:first-child{border-left:4px solid #d08a00}
.filters{display:none;border:1px solid var(--line);border-radius:6px;padding:.5rem .8rem;margin:1rem 0}
.js .filters{display:block}.filters fieldset{border:0;display:inline-block;margin:0 1.5rem .3rem 0;padding:0}
.filters legend{font-weight:600;padding:0}.filters label{margin-right:.8rem;white-space:nowrap}
.filters input[type=search]{font:inherit;padding:.15rem .4rem;min-width:16rem}
table.req{border-collapse:collapse;width:100%}
table.req>thead th{text-align:left;border-bottom:2px solid var(--line);padding:.35rem}
tr.main>*{border-top:1px solid var(--line);padding:.4rem;text-align:left;vertical-align:top}
tr.main th{font-weight:400;white-space:nowrap}
.toggle{font:inherit;background:none;border:0;padding:0;color:var(--ink);text-align:left}
.js .toggle{cursor:pointer;color:#1a4e8a}.js .toggle::before{content:"▸ ";display:inline-block;width:1em}
.js .toggle[aria-expanded=true]::before{content:"▾ "}
.js tr.detail:not(.open){display:none}
tr.detail>td{padding:.2rem .4rem 1rem 1.6rem;border-left:4px solid var(--line)}
.msg{color:#6b4e00}.s-non_conforme .msg{color:var(--ko)}.prov{color:var(--muted)}
.preco{font-style:italic}.preco small{display:block;color:var(--muted)}
.uncovered{border:1px solid #d08a00;border-left-width:4px;border-radius:4px;padding:.2rem .8rem;margin:1rem 0}
.uncovered h2{border:0;margin:.4rem 0}
.scenario{border-top:1px dashed var(--line);margin-top:.6rem}
.official{background:#f6f8fa;border-left:3px solid #6b7f95;padding:.4rem .8rem;margin:.5rem 0}
.enonce{white-space:pre-wrap}
table.sub{border-collapse:collapse;margin:.3rem 0;font-size:.92em}
table.sub th,table.sub td{border:1px solid var(--line);padding:.2rem .4rem;text-align:left;vertical-align:top}
table.sub caption{text-align:left;font-weight:600;padding:.2rem 0}
.steps{margin:.3rem 0;padding-left:1.2rem}.steps .mark{display:inline-block;min-width:7.5em;font-size:.85em}
.steps .echec{color:var(--ko);font-weight:600}.steps .non_execute{color:#8a6100}
details.exchange{border:1px solid var(--line);border-radius:4px;margin:.3rem 0;padding:.2rem .5rem}
details.exchange>summary{cursor:pointer}
.side h6{margin:.5rem 0 .2rem;font-size:.9em}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:.5rem;margin:.2rem 0;font-size:12px;
max-height:40rem;overflow:auto}
code{font-size:.92em}.empty{color:var(--muted);font-style:italic}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media print{
body{margin:0;max-width:none;font-size:11px}
.filters,.tools,.toggle::before{display:none!important}
.count{cursor:default}.count[aria-pressed=true]{outline:0}
tr.detail,.js tr.detail:not(.open){display:table-row!important}
tbody.exigence,tr.main,table.sub tr,.steps li{break-inside:avoid}
tr.main{break-after:avoid}h2,h4,h5{break-after:avoid}
tbody.s-non_conforme details.exchange::details-content{content-visibility:visible;display:block}
pre{max-height:none;overflow:visible}
a.raw::after{content:" (" attr(href) ")";font-size:.85em;word-break:break-all}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""

SCRIPT = """
document.documentElement.classList.add('js');
document.addEventListener('DOMContentLoaded',function(){
  var all=function(sel){return Array.prototype.slice.call(document.querySelectorAll(sel));};
  var rows=all('tbody.exigence'),statusBoxes=all('.filters input[name=statut]'),
      socleBoxes=all('.filters input[name=socle]'),search=document.getElementById('recherche'),
      shown=document.getElementById('affichees'),counts=all('button.count');
  function checked(boxes){var set={};boxes.forEach(function(b){if(b.checked){set[b.value]=true;}});return set;}
  function apply(){
    var statuts=checked(statusBoxes),socles=checked(socleBoxes),query=search.value.trim().toLowerCase(),n=0;
    rows.forEach(function(row){
      var text=row.querySelector('tr.main').textContent.toLowerCase();
      row.hidden=!(statuts[row.dataset.statut]&&socles[row.dataset.socle]&&(!query||text.indexOf(query)>=0));
      if(!row.hidden){n++;}
    });
    all('section.socle').forEach(function(section){
      section.hidden=!section.querySelector('tbody.exigence:not([hidden])');});
    var only=statusBoxes.filter(function(b){return b.checked;});
    counts.forEach(function(c){
      c.setAttribute('aria-pressed',String(only.length===1&&only[0].value===c.dataset.statut));});
    shown.textContent=n+' exigence(s) affichée(s) sur '+rows.length;
  }
  function toggle(button,open){
    var detail=document.getElementById(button.getAttribute('aria-controls'));
    button.setAttribute('aria-expanded',String(open));detail.classList.toggle('open',open);
  }
  all('button.toggle').forEach(function(b){b.addEventListener('click',function(){
    toggle(b,b.getAttribute('aria-expanded')!=='true');});});
  statusBoxes.concat(socleBoxes).forEach(function(b){b.addEventListener('change',apply);});
  search.addEventListener('input',apply);
  counts.forEach(function(c){c.addEventListener('click',function(){
    var alone=c.getAttribute('aria-pressed')==='true';
    statusBoxes.forEach(function(b){b.checked=alone||b.value===c.dataset.statut;});apply();});});
  document.getElementById('tout-deplier').addEventListener('click',function(){
    all('button.toggle').forEach(function(b){toggle(b,true);});});
  document.getElementById('tout-replier').addEventListener('click',function(){
    all('button.toggle').forEach(function(b){toggle(b,false);});});
  var opened=[];
  window.addEventListener('beforeprint',function(){
    opened=all('tbody.s-non_conforme details.exchange:not([open])');
    opened.forEach(function(d){d.open=true;});});
  window.addEventListener('afterprint',function(){opened.forEach(function(d){d.open=false;});opened=[];});
  var target=location.hash&&document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if(target&&target.matches('tbody.exigence')){toggle(target.querySelector('button.toggle'),true);}
  apply();
});
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CSP = (
    f"default-src 'none'; script-src {_csp_hash(SCRIPT)}; style-src {_csp_hash(STYLE)}; "
    "base-uri 'none'; form-action 'none'"
)
"""Only the script and style above may run: an escaping slip in a hostile value still executes nothing."""


def html_id(text: str) -> str:
    """The id-safe form of a requirement id: rows are ``exigence-<html_id>``, which Allure's links point at."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def render_html(report: dict[str, Any], run_dir: Path | None = None) -> str:
    """The report page; with ``run_dir``, each captured exchange is pretty-printed inline from its evidence file."""
    page = _Page(run_dir)
    sut = report.get("sut") or {}
    title = f"Rapport de conformité Ségur — {sut.get('name', '')} {sut.get('version', '')}".strip()
    entries = report.get("exigences") or []
    statuses = [*STATUSES, *sorted({str(e.get("statut")) for e in entries} - set(STATUSES))]
    socles = _socle_order(entries)
    sections = "".join(page.socle(socle, [e for e in entries if str(e.get("socle")) == socle]) for socle in socles)
    return (
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body>"
        f"<header><h1>{_e(title)}</h1>{_verdict(report)}{_verdict_rule(report)}<div class='top'>"
        f"{_run_table(report)}{_versions_table(report)}</div>{_journal_note(report)}</header>"
        f"<main>{_counts(report, statuses)}{_rem_unknown(report)}{_filters(statuses, socles)}{sections}</main>"
        "</body></html>"
    )


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _status_class(statut: Any) -> str:
    return f"s-{statut}" if statut in LABELS else "s-autre"


def _badge(statut: Any) -> str:
    label = f"{MARKS[statut]} {LABELS[statut]}" if statut in LABELS else str(statut)
    return f"<span class='badge {_status_class(statut)}'>{_e(label)}</span>"


def _nature(nature: Any) -> str:
    """A préconisation's row says so where the status is read: its non conforme does not fail the run."""
    if nature == "PRECONISATION":
        return "<td class='preco'>PRECONISATION <small>préconisation : ne décide pas du verdict</small></td>"
    return f"<td>{_e(nature)}</td>"


def _verdict(report: dict[str, Any]) -> str:
    verdict = report.get("verdict")
    label = {"conforme": "✔ CONFORME", "non_conforme": "✘ NON CONFORME"}.get(verdict, str(verdict))
    css = f"v-{verdict}" if verdict in ("conforme", "non_conforme") else ""
    return f"<p class='verdict {css}' id='verdict' role='status'>Verdict : {_e(label)}</p>"


def _verdict_rule(report: dict[str, Any]) -> str:
    """What the verdict weighs, beside it: a reviewer must not read a failing préconisation as a failed run."""
    rule = (
        "Le verdict est conforme seulement si chaque EXIGENCE automatique applicable est conforme. "
        "Les préconisations sont jugées et affichées mais ne décident pas du verdict ; les preuves manuelles et "
        "externes non plus : elles restent à joindre au dossier de référencement."
    )
    if report.get("mode") == "homologation":
        rule += (
            " En mode homologation, une exigence CRITIQUE est aussi non conforme sur un avertissement des validateurs."
        )
    return f"<p class='note' id='regle-verdict'>{_e(rule)}</p>"


def _rem_unknown(report: dict[str, Any]) -> str:
    """The official requirements this run does not cover at all: the first gap a reviewer asks about."""
    unknown = report.get("rem_inconnues") or []
    if not unknown:
        return ""
    items = "".join(f"<li><code>{_e(identifier)}</code></li>" for identifier in unknown)
    return (
        "<section class='uncovered' aria-labelledby='rem-inconnues'>"
        f"<h2 id='rem-inconnues'>Exigences du REM non couvertes ({len(unknown)})</h2>"
        "<p class='note'>Absentes du catalogue du harnais : ce run ne les vérifie pas, le dossier doit en répondre "
        f"autrement.</p><ul>{items}</ul></section>"
    )


def _table(caption: str, rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th scope='row'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table><caption>{_e(caption)}</caption>{body}</table>"


def _run_table(report: dict[str, Any]) -> str:
    sut = report.get("sut") or {}
    couloir, mode = report.get("couloir", ""), report.get("mode", "")
    rows = [
        ("Logiciel testé", f"{sut.get('name', '?')} {sut.get('version', '')}".strip()),
        ("Adaptateur", sut.get("adapter", "")),
        ("Couloir", COULOIRS.get(couloir, couloir)),
        ("Mode", MODES.get(mode, mode) or "non précisé"),
        ("Début", report.get("started", "")),
        ("Fin", report.get("ended", "")),
        ("Durée", _duration(report.get("started"), report.get("ended"))),
    ]
    return _table("Exécution", rows)


def _duration(started: Any, ended: Any) -> str:
    try:
        seconds = (dt.datetime.fromisoformat(str(ended)) - dt.datetime.fromisoformat(str(started))).total_seconds()
    except (TypeError, ValueError):
        return ""
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _versions_table(report: dict[str, Any]) -> str:
    """Versions of every referential the verdict depends on; older reports only had the top-level three."""
    versions = report.get("versions") or {}
    rows = [
        ("Harnais", versions.get("harnais", report.get("harness_version", ""))),
        ("Catalogue des exigences", versions.get("catalogue", report.get("catalogue_version", ""))),
        ("Référentiel", versions.get("referentiel", report.get("referentiel", ""))),
        ("Jeux de valeurs", versions.get("jeux_de_valeurs", "non précisé")),
        ("Schematron", versions.get("schematron", "non précisé")),
    ]
    if versions.get("rem"):
        rows.append(("Surcouche REM", versions["rem"]))
    return _table("Versions des référentiels", rows)


def _journal_note(report: dict[str, Any]) -> str:
    if not report.get("journal"):
        return ""
    note = _e(report.get("journal_note", ""))
    return f"<p class='note'><code>{_e(report['journal'])}</code> — {note}</p>"


def _counts(report: dict[str, Any], statuses: list[str]) -> str:
    summary = report.get("summary") or {}
    items = "".join(
        f"<li><button type='button' class='count {_status_class(s)}' data-statut='{_e(s)}' aria-pressed='false' "
        f"title='Afficher seulement ce statut'>{_e(MARKS.get(s, ''))} {_e(LABELS.get(s, s))} : "
        f"<b>{_e(summary.get(s, 0))}</b></button></li>"
        for s in statuses
    )
    return f"<h2 id='comptes'>Exigences par statut</h2><ul class='counts' aria-labelledby='comptes'>{items}</ul>"


def _filters(statuses: list[str], socles: list[str]) -> str:
    status_boxes = "".join(
        f"<label><input type='checkbox' name='statut' value='{_e(s)}' checked> {_e(LABELS.get(s, s))}</label>"
        for s in statuses
    )
    socle_boxes = "".join(
        f"<label><input type='checkbox' name='socle' value='{_e(s)}' checked> {_e(s)}</label>" for s in socles
    )
    return (
        "<div class='filters' role='search'><fieldset><legend>Statut</legend>"
        f"{status_boxes}</fieldset><fieldset><legend>Socle</legend>{socle_boxes}</fieldset>"
        "<fieldset><legend><label for='recherche'>Recherche</label></legend>"
        "<input type='search' id='recherche' placeholder='identifiant ou intitulé'></fieldset>"
        "<p class='tools'><button type='button' id='tout-deplier'>Tout déplier</button> "
        "<button type='button' id='tout-replier'>Tout replier</button> "
        "<span id='affichees' aria-live='polite'></span></p></div>"
    )


def _socle_order(entries: list[dict[str, Any]]) -> list[str]:
    present = {str(e.get("socle")) for e in entries}
    return [s for s in SOCLES if s in present] + sorted(present - set(SOCLES))


def _proof_number(proof_id: str) -> tuple[str, str, str]:
    """(exigence, scenario N°, proof N°) of ``<exigence>.NN.MM``: the harness numbers its proofs as the REM does."""
    parts = proof_id.rsplit(".", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else ("", "", "")


def _same_number(a: Any, b: Any) -> bool:
    a, b = str(a).strip(), str(b).strip()
    return int(a) == int(b) if a.isdigit() and b.isdigit() else a == b


def _names(numero: Any, exigence_id: str, *numbers: str) -> bool:
    """Whether an official number names the harness's ``<exigence>.<numbers…>``.

    REM workbooks number a scenario or proof plainly ("1", "01") or in full ("INS/va1.02.01.01"): a full id's last
    dotted component is the number, and what precedes it must name the enclosing scenario, down to the requirement.
    """
    value = re.sub(r"\s+", "", "" if numero is None else str(numero))
    *enclosing, number = numbers
    if _same_number(value, number):
        return True
    head, dot, last = value.rpartition(".")
    if not dot or not _same_number(last, number):
        return False
    return _names(head, exigence_id, *enclosing) if enclosing else head == re.sub(r"\s+", "", exigence_id)


class _Page:
    """Renders the requirement tables; owns the ids (unique per page) and the evidence reading."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir.resolve() if run_dir is not None else None
        self.ids: set[str] = set()

    def unique_id(self, prefix: str, text: str) -> str:
        base = prefix + html_id(text)
        candidate, n = base, 1
        while candidate in self.ids:
            n += 1
            candidate = f"{base}-{n}"
        self.ids.add(candidate)
        return candidate

    def socle(self, socle: str, entries: list[dict[str, Any]]) -> str:
        heading = self.unique_id("socle-", socle)
        tally = ", ".join(
            f"{n} {LABELS.get(s, s).lower()}" for s in STATUSES if (n := sum(e.get("statut") == s for e in entries))
        )
        rows = "".join(self.requirement(entry) for entry in entries)
        return (
            f"<section class='socle' data-socle='{_e(socle)}' aria-labelledby='{heading}'>"
            f"<h2 id='{heading}'>Socle {_e(SOCLES.get(socle, socle))} <small class='note'>"
            f"({len(entries)} exigence(s) : {_e(tally)})</small></h2>"
            "<table class='req'><thead><tr><th scope='col'>Exigence</th><th scope='col'>Intitulé</th>"
            "<th scope='col'>Nature</th><th scope='col'>Criticité</th><th scope='col'>Statut</th></tr></thead>"
            f"{rows}</table></section>"
        )

    def requirement(self, entry: dict[str, Any]) -> str:
        identifier, statut, socle = str(entry.get("id", "")), str(entry.get("statut")), str(entry.get("socle"))
        row_id = self.unique_id("exigence-", identifier)
        detail_id = self.unique_id("detail-", identifier)
        provisional = (
            ""
            if entry.get("id_officiel", True)
            else " <small class='prov' title='identifiant provisoire, absent du REM'>(prov.)</small>"
        )
        messages = "".join(f"<div class='msg'>{_e(m)}</div>" for m in entry.get("messages") or [] if m)
        return (
            f"<tbody class='exigence {_status_class(statut)}' id='{row_id}' data-statut='{_e(statut)}' "
            f"data-socle='{_e(socle)}' data-nature='{_e(entry.get('nature'))}'>"
            f"<tr class='main'><th scope='row'><button type='button' class='toggle' aria-expanded='false' "
            f"aria-controls='{detail_id}'><code>{_e(identifier)}</code></button>{provisional}</th>"
            f"<td>{_e(entry.get('titre'))}{messages}</td>{_nature(entry.get('nature'))}"
            f"<td>{_e(entry.get('criticite'))}</td><td>{_badge(statut)}</td></tr>"
            f"<tr class='detail' id='{detail_id}'><td colspan='5'>{self.detail(entry)}</td></tr></tbody>"
        )

    def detail(self, entry: dict[str, Any]) -> str:
        source = entry.get("source") or {}
        facts = [
            ("Source", f"{source.get('document', '')} {source.get('version', '')}".strip()),
            ("REM", ", ".join(map(str, entry.get("rems") or []))),
            ("Vérification", entry.get("verification", "")),
        ]
        if entry.get("profil"):
            facts.append(("Profil", entry["profil"]))
        meta = " · ".join(f"{_e(k)} : {_e(v)}" for k, v in facts if v)
        official = entry.get("officiel")
        scenarios = entry.get("scenarios") or []
        body = "".join(self.scenario(s, official) for s in scenarios) or (
            "<p class='empty'>Aucun scénario automatisé pour cette exigence.</p>"
        )
        return f"<p class='note'>{meta}</p>{_official(official) if official else ''}{body}"

    def scenario(self, scenario: dict[str, Any], official: dict[str, Any] | None) -> str:
        parts = [
            f"<div class='scenario'><h4>Scénario <code>{_e(scenario.get('id'))}</code> — {_e(scenario.get('nom'))} "
            f"{_badge(scenario.get('statut'))}</h4>"
        ]
        if scenario.get("feature"):
            parts.append(f"<p class='note'>Fonctionnalité : {_e(scenario['feature'])}</p>")
        if scenario.get("message"):
            parts.append(f"<p class='msg'>{_e(scenario['message'])}</p>")
        parametres = scenario.get("parametres") or {}
        if parametres:
            head = "".join(f"<th scope='col'>{_e(k)}</th>" for k in parametres)
            values = "".join(f"<td>{_e(v)}</td>" for v in parametres.values())
            parts.append(
                f"<table class='sub'><caption>Paramètres (exemple du plan de scénario)</caption>"
                f"<thead><tr>{head}</tr></thead><tbody><tr>{values}</tr></tbody></table>"
            )
        parts.append(_steps(scenario.get("etapes") or []))
        anchors = {str(x.get("seq")): self.unique_id("echange-", f"{scenario.get('id')}-{x.get('seq')}")
                   for x in scenario.get("echanges") or []}  # fmt: skip
        parts.append(_proofs(scenario.get("preuves") or [], official, anchors, scenario.get("message") or ""))
        parts.append(_constats(scenario.get("constats") or []))
        exchanges = "".join(self.exchange(x, anchors[str(x.get("seq"))]) for x in scenario.get("echanges") or [])
        if exchanges:
            parts.append(f"<h5>Échanges capturés</h5>{exchanges}")
        parts.append("</div>")
        return "".join(parts)

    def exchange(self, exchange: dict[str, Any], anchor: str) -> str:
        outcome = exchange.get("outcome")
        summary = (
            f"#{_e(exchange.get('seq'))} · {_e(exchange.get('mock'))} · <code>{_e(exchange.get('operation'))}</code>"
            + (f" — résultat <code>{_e(outcome)}</code>" if outcome else "")
        )
        sides = self.side("Requête", exchange.get("request")) + self.side("Réponse", exchange.get("response"))
        return f"<details class='exchange' id='{anchor}'><summary>{summary}</summary>{sides}</details>"

    def side(self, label: str, path: Any) -> str:
        if not path:
            return f"<div class='side'><h6>{_e(label)}</h6><p class='empty'>aucun fichier</p></div>"
        relative = _relative_path(str(path))
        if relative is None:
            return (
                f"<div class='side'><h6>{_e(label)}</h6><p class='empty'>chemin de preuve refusé "
                f"(hors du répertoire de l'exécution) : <code>{_e(path)}</code></p></div>"
            )
        link = f"<a class='raw' href='{_e(quote(relative))}'>fichier brut</a>"
        return f"<div class='side'><h6>{_e(label)} — {link}</h6>{self.evidence(relative)}</div>"

    def evidence(self, relative: str) -> str:
        if self.run_dir is None:
            return ""
        path = (self.run_dir / relative).resolve()
        if not path.is_relative_to(self.run_dir) or not path.is_file():
            return "<p class='empty'>fichier absent du répertoire de l'exécution</p>"
        return f"<pre>{_e(pretty_evidence(path.read_bytes(), path.suffix))}</pre>"


def _relative_path(path: str) -> str | None:
    """The evidence path if it stays inside the run directory, else None: never read or link outside it."""
    parts = path.replace("\\", "/").split("/")
    if not path or path.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        return None
    return "/".join(p for p in parts if p not in ("", "."))


def _official(official: dict[str, Any]) -> str:
    """The REM overlay's own wording: what the reviewer compares the harness's scenarios against."""
    where = " · ".join(
        f"{label} : {_e(official[key])}" for key, label in (("section", "Section"), ("bloc", "Bloc"),
                                                            ("fonction", "Fonction"), ("profil", "Profil"))
        if official.get(key)
    )  # fmt: skip
    conditional = official.get("conditionnelle")
    if conditional:
        where += f" · Conditionnelle : {_e('oui' if conditional is True else conditional)}"
    scenarios = []
    for scenario in official.get("scenarios") or []:
        proofs = "".join(
            f"<tr><td>{_e(p.get('numero'))}</td><td>{_e(p.get('texte'))}</td></tr>"
            for p in scenario.get("preuves") or []
        )
        table = (
            "<table class='sub'><thead><tr><th scope='col'>N° preuve</th><th scope='col'>Preuve attendue</th></tr>"
            f"</thead><tbody>{proofs}</tbody></table>"
            if proofs
            else ""
        )
        scenarios.append(
            f"<li><b>Scénario N° {_e(scenario.get('numero'))}</b> : {_e(scenario.get('texte'))}{table}</li>"
        )
    listing = f"<ul>{''.join(scenarios)}</ul>" if scenarios else ""
    return (
        "<div class='official'><h4>Texte officiel du REM</h4>"
        f"<p class='enonce'>{_e(official.get('enonce'))}</p><p class='note'>{where}</p>{listing}</div>"
    )


def _steps(steps: list[dict[str, Any]]) -> str:
    items = "".join(
        f"<li class='{_e(step.get('statut'))}'><span class='mark'>{_step_mark(step.get('statut'))}</span> "
        f"<b>{_e(step.get('keyword'))}</b> {_e(step.get('text'))}"
        + (f" — <span class='msg'>{_e(step['message'])}</span>" if step.get("message") else "")
        + "</li>"
        for step in steps
    )
    return f"<h5>Étapes</h5><ol class='steps'>{items}</ol>" if items else ""


def _step_mark(statut: Any) -> str:
    return _e(STEP_MARKS.get(statut, statut))


def _proofs(
    proofs: list[dict[str, Any]], official: dict[str, Any] | None, anchors: dict[str, str], repeated: str
) -> str:
    """Proofs numbered as in the REM; a message already shown for the whole scenario is not repeated."""
    if not proofs:
        return ""
    rows = []
    for proof in proofs:
        exigence_id, scenario_no, proof_no = _proof_number(str(proof.get("id", "")))
        number = f"{scenario_no}.{proof_no}" if proof_no else ""
        rem_text = _official_proof(official, exigence_id, scenario_no, proof_no) if proof_no else ""
        links = ", ".join(
            f"<a href='#{anchors[seq]}'>#{_e(seq)}</a>" if seq in anchors else f"#{_e(seq)}"
            for seq in (str(x.get("seq")) for x in proof.get("echanges") or [])
        )
        rows.append(
            f"<tr><td>{_e(number)}</td><td><code>{_e(proof.get('id'))}</code></td><td>{_e(proof.get('texte'))}"
            + (f"<div class='note'>REM : {_e(rem_text)}</div>" if rem_text else "")
            + (
                f"<div class='msg'>{_e(proof['message'])}</div>"
                if proof.get("message") not in ("", None, repeated)
                else ""
            )
            + f"</td><td>{_step_mark(proof.get('statut'))}</td><td>{links or '—'}</td></tr>"
        )
    return (
        "<table class='sub'><caption>Preuves</caption><thead><tr><th scope='col'>N° preuve</th>"
        "<th scope='col'>Identifiant</th><th scope='col'>Preuve (étape Alors)</th><th scope='col'>Statut</th>"
        f"<th scope='col'>Échanges</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _official_proof(official: dict[str, Any] | None, exigence_id: str, scenario_no: str, proof_no: str) -> str:
    """The REM's text for the harness proof ``<exigence_id>.<scenario_no>.<proof_no>``, '' when the REM has none."""
    for scenario in (official or {}).get("scenarios") or []:
        if _names(scenario.get("numero"), exigence_id, scenario_no):
            for proof in scenario.get("preuves") or []:
                if _names(proof.get("numero"), exigence_id, scenario_no, proof_no):
                    return str(proof.get("texte", ""))
    return ""


def _constats(constats: list[dict[str, Any]]) -> str:
    if not constats:
        return ""
    rows = "".join(
        f"<tr><td><code>{_e(c.get('rule'))}</code></td><td>{_e(SEVERITIES.get(c.get('severity'), c.get('severity')))}"
        f"</td><td><code>{_e(c.get('location'))}</code></td><td>{_e(c.get('message'))}</td>"
        f"<td>{_e(c.get('origine'))}</td></tr>"
        for c in constats
    )
    return (
        "<table class='sub constats'><caption>Constats des validateurs</caption><thead><tr><th scope='col'>Règle</th>"
        "<th scope='col'>Sévérité</th><th scope='col'>Emplacement</th><th scope='col'>Message</th>"
        f"<th scope='col'>Origine</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def pretty_evidence(data: bytes, suffix: str) -> str:
    """One evidence file as a reviewer reads it: start line and headers, then each body indented.

    ``.txt`` files (SMTP/IMAP dialogues) are shown as captured; ``.eml`` is a MIME message and
    ``.http`` an HTTP message whose body may itself be MIME (MTOM). Never raises: anything that
    does not parse is shown as text.
    """
    if suffix == ".txt":
        return _cap(_text(data))
    head, body = _split_head(data)
    lines = head.split(b"\n")
    start = lines[0] if suffix != ".eml" and lines else b""
    headers = b"\n".join(lines[1:] if start else lines)
    message = BytesParser(policy=compat32).parsebytes(headers + b"\n\n" + body)
    shown_head = _cap(_text(head).replace("\r\n", "\n"))
    return f"{shown_head}\n\n{_cap(_body(message), SIDE_CAP)}" if body else shown_head


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    if not ends:
        return data, b""
    index, length = min(ends)
    return data[:index], data[index + length :]


def _cap(text: str, limit: int = BODY_CAP) -> str:
    return text if len(text) <= limit else text[:limit] + "\n… tronqué, voir le fichier brut"


def _body(message: Message) -> str:
    """A multipart body part after part, each with its headers; any other body capped on its own."""
    parts = message.get_payload() if message.is_multipart() else None
    if not isinstance(parts, list) or not parts:
        return _cap(_leaf(message))
    return "\n\n".join(
        f"── partie {n}/{len(parts)} ──\n" + "\n".join(f"{k}: {v}" for k, v in part.items()) + "\n\n" + _body(part)
        for n, part in enumerate(parts, 1)
    )


def _leaf(message: Message) -> str:
    """A single body, indented by its content type; encoded or binary content summarised, not dumped."""
    raw = message.get_payload(decode=True)
    data = raw if isinstance(raw, bytes) else b""
    encoding = str(message.get("Content-Transfer-Encoding", "")).strip().lower()
    content_type = message.get_content_type()
    if encoding == "base64":
        return f"[{len(data)} octets base64]"
    if str(message.get("Content-Encoding", "")).strip().lower() not in ("", "identity"):
        return f"[{len(data)} octets, Content-Encoding {message.get('Content-Encoding')}]"
    charset = message.get_content_charset() or "utf-8"
    if len(data) > SIDE_CAP:
        return _text(data[:SIDE_CAP], charset)
    if "json" in content_type:
        return _json(data, charset)
    sniffed_xml = content_type in ("text/plain", "application/octet-stream") and data.lstrip()[:1] == b"<"
    if "xml" in content_type or sniffed_xml:
        return _xml(data, charset)
    if b"\x00" in data and message.get_content_maintype() != "text":
        return f"[{len(data)} octets {content_type}]"
    return _text(data, charset)


def _xml(data: bytes, charset: str) -> str:
    try:
        root = parse_untrusted(data)
    except (UnsafeXml, MalformedXml) as error:
        return f"[XML non analysé : {error}]\n{_text(data, charset)}"
    for node in root.iter():
        if isinstance(node.text, str) and len(node.text) > _BASE64_TEXT and _is_base64(node.text):
            node.text = f"[{len(base64.b64decode(''.join(node.text.split())))} octets base64]"
    etree.indent(root, space="  ")
    return etree.tostring(root.getroottree(), encoding="unicode")


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _json(data: bytes, charset: str) -> str:
    try:
        return json.dumps(json.loads(data.decode(charset, errors="replace")), indent=2, ensure_ascii=False)
    except (ValueError, LookupError):
        return _text(data, charset)


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(data: bytes, charset: str = "utf-8") -> str:
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    return _CONTROLS.sub("\ufffd", text)
