"""rapport.html: one self-contained file (inline CSS and script), readable offline and printable."""

from __future__ import annotations

from html import escape
from itertools import groupby
from typing import Any

LABELS = {
    "conforme": "Conforme",
    "non_conforme": "Non conforme",
    "non_teste": "Non testé",
    "non_applicable": "Non applicable",
    "preuve_manuelle": "Preuve manuelle",
    "externe": "Preuve externe",
}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{margin-top:2rem;border-bottom:2px solid #dde3ea}
.verdict{display:inline-block;padding:.4rem 1rem;border-radius:6px;font-weight:700;font-size:1.2rem;color:#fff}
.v-conforme{background:#1f7a3f}.v-non_conforme{background:#b42318}
.meta{color:#526070;margin:.5rem 0 1rem}.meta td{padding:0 1rem 0 0}
.counts span{display:inline-block;margin:.2rem .4rem .2rem 0;padding:.2rem .6rem;border-radius:12px;background:#eef2f6}
table.req{border-collapse:collapse;width:100%}table.req td,table.req th{border-bottom:1px solid #e4e8ee;
padding:.4rem;text-align:left;vertical-align:top}
.badge{padding:.1rem .5rem;border-radius:10px;font-size:.85em;white-space:nowrap}
.s-conforme{background:#d1f2dc}.s-non_conforme{background:#fbd5d1}.s-non_teste{background:#fdebc8}
.s-non_applicable{background:#eceff3}.s-preuve_manuelle,.s-externe{background:#dbe7fb}
details{margin:.3rem 0}summary{cursor:pointer}.steps{margin:.3rem 0 .3rem 1rem;padding:0;list-style:none}
.steps li.echec{color:#b42318;font-weight:600}.steps li.non_execute{color:#8a6100}
.msg{color:#b42318}code{font-size:.9em}.filters label{margin-right:1rem}
@media print{.filters{display:none}details{display:block}details>*{display:block}}
"""
SCRIPT = """
document.querySelectorAll('.filters input').forEach(function(box){box.addEventListener('change',function(){
  var shown={};document.querySelectorAll('.filters input').forEach(function(b){shown[b.value]=b.checked;});
  document.querySelectorAll('tr.exigence').forEach(function(row){
    row.style.display=shown[row.dataset.statut]?'':'none';});});});
"""


def render_html(report: dict[str, Any]) -> str:
    sut = report.get("sut", {})
    verdict = report["verdict"]
    counts = "".join(
        f'<span class="s-{k}">{escape(LABELS[k])} : <b>{v}</b></span>' for k, v in report["summary"].items()
    )
    filters = "".join(f'<label><input type="checkbox" value="{k}" checked> {escape(LABELS[k])}</label>' for k in LABELS)
    sections = []
    by_socle = sorted(report["exigences"], key=lambda e: e["socle"])
    for socle, group in groupby(by_socle, key=lambda e: e["socle"]):
        rows = "".join(_row(entry) for entry in group)
        sections.append(
            f"<h2>Socle {escape(socle)}</h2><table class='req'><thead><tr><th>Exigence</th><th>Intitulé</th>"
            f"<th>Nature</th><th>Criticité</th><th>Statut</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    meta = [
        ("Logiciel", f"{sut.get('name', '?')} {sut.get('version', '')} ({sut.get('adapter', '?')})"),
        ("Couloir", report.get("couloir", "")),
        ("Référentiel", f"{report.get('referentiel', '')} — catalogue {report.get('catalogue_version', '')}"),
        ("Harnais", report.get("harness_version", "")),
        ("Exécution", f"{report.get('started', '')} → {report.get('ended', '')}"),
    ]
    meta_rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in meta)
    return (
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'>"
        f"<title>Rapport de conformité Ségur — {escape(str(sut.get('name', '')))}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Rapport de conformité Ségur</h1><div class='verdict v-{verdict}'>{escape(LABELS[verdict])}</div>"
        f"<table class='meta'>{meta_rows}</table><div class='counts'>{counts}</div>"
        f"<p class='filters'>{filters}</p>{''.join(sections)}"
        "<p class='meta'>Les preuves manuelles et externes ne décident pas du verdict : "
        "elles restent à joindre au dossier de référencement.</p>"
        f"<script>{SCRIPT}</script></body></html>"
    )


def _row(entry: dict[str, Any]) -> str:
    statut = entry["statut"]
    messages = "".join(f"<div class='msg'>{escape(m)}</div>" for m in entry["messages"] if m)
    details = "".join(_scenario(s) for s in entry["scenarios"])
    provisional = "" if entry.get("id_officiel", True) else " <small title='identifiant provisoire'>(prov.)</small>"
    body = f"{escape(entry['titre'])}{messages}"
    if details:
        body += f"<details><summary>{len(entry['scenarios'])} scénario(s)</summary>{details}</details>"
    return (
        f"<tr class='exigence' id='{escape(entry['id'])}' data-statut='{statut}'>"
        f"<td><code>{escape(entry['id'])}</code>{provisional}</td><td>{body}</td>"
        f"<td>{escape(entry['nature'])}</td><td>{escape(entry['criticite'])}</td>"
        f"<td><span class='badge s-{statut}'>{escape(LABELS[statut])}</span></td></tr>"
    )


def _scenario(scenario: dict[str, Any]) -> str:
    steps = "".join(
        f"<li class='{escape(step['statut'])}'>{escape(step['keyword'])} {escape(step['text'])}"
        + (f" — {escape(step['message'])}" if step["message"] else "")
        + "</li>"
        for step in scenario["etapes"]
    )
    proofs = ", ".join(f"{escape(p['id'])} ({escape(p['statut'])})" for p in scenario["preuves"])
    exchanges = "".join(
        f"<li>#{escape(x['seq'])} {escape(x['mock'])} {escape(x['operation'])} : "
        f"<a href='{escape(x['request'])}'>requête</a> · <a href='{escape(x['response'])}'>réponse</a></li>"
        for x in scenario.get("echanges", [])
    )
    return (
        f"<div><b>{escape(scenario['id'])}</b> {escape(scenario['nom'])} "
        f"<span class='badge s-{escape(scenario['statut'])}'>{escape(LABELS[scenario['statut']])}</span>"
        f"<ul class='steps'>{steps}</ul><div>Preuves : {proofs or '—'}</div>"
        f"<ul>{exchanges}</ul></div>"
    )
