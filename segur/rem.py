"""Official REM (Référentiel d'Exigences Multi-couloir) workbooks: import as an overlay, export results in that layout.

The ANS publishes one REM workbook per couloir; the référencement dossier answers it line by line. Importing it lets
the report show the official wording next to each harness requirement; exporting writes the run's results back in the
same columns so that an editor attaches them to the dossier without retyping.

Layout. The Ségur REM columns are "Exigence conditionnelle", "Profil", "ID Section", "Section", "Bloc", "Fonction",
"Nature de l'exigence", "N° exigence", "Énoncé", "N° scénario", "Scénario de conformité", then "N° preuve k" /
"Preuve k" pairs. The ANS DMN référentiel sheet, which is public, uses the same family of columns, with the statement
header spelt "Enoncé de l'exigence (DOIT) ou de la préconisation (DEVRAIT)" and extra columns ("N°", "Version",
"EPIC") in between. The Ségur vague 2 REM workbooks themselves could not be consulted, so the rest is modelled: the
header row is searched in the first rows of every sheet, headers are matched whatever their accents, case, line
breaks, spacing or trailing parenthesis, unknown columns are ignored, and continuation rows of a requirement (blank
or merged requirement cells) carry its further scenarios and proofs.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.worksheet import Worksheet

from segur.reports.html import LABELS

MAX_UNCOMPRESSED = 50 * 1024 * 1024
HEADER_SCAN_ROWS = 50
MAX_COLUMNS = 200  # where the header row is looked for
MAX_ROWS = 100_000  # an REM has hundreds of rows; more means a hostile or broken sheet
MAX_MERGED_CELLS = 1_000_000  # openpyxl creates one object per merged cell: bound it before it does
OVERLAY_FORMAT = "segur-rem-overlay/1"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MAX_CELL_CHARS = 32767  # Excel refuses longer cells
REM_COLUMNS = (
    "Exigence conditionnelle", "Profil", "ID Section", "Section", "Bloc", "Fonction", "Nature de l'exigence",
    "N° exigence", "Énoncé", "N° scénario", "Scénario de conformité",
)  # fmt: skip
RESULT_COLUMNS = ("N° preuve", "Preuve", "Statut", "Constat", "Scénario du harnais", "Fichiers de preuve")
HEADERS = REM_COLUMNS + RESULT_COLUMNS
STATUS_COLUMN = HEADERS.index("Statut") + 1
WIDTHS = {
    "Exigence conditionnelle": 16, "Profil": 12, "ID Section": 10, "Section": 20, "Bloc": 18, "Fonction": 20,
    "Nature de l'exigence": 14, "N° exigence": 18, "Énoncé": 60, "N° scénario": 20, "Scénario de conformité": 50,
    "N° preuve": 22, "Preuve": 50, "Statut": 16, "Constat": 60, "Scénario du harnais": 45, "Fichiers de preuve": 70,
}  # fmt: skip
STATUS_FILLS = {
    "conforme": "C6EFCE", "non_conforme": "FFC7CE", "non_teste": "FFEB9C",
    "non_applicable": "E7E6E6", "preuve_manuelle": "DDEBF7", "externe": "E4DFEC",
}  # fmt: skip
HEADER_FILL = "1F3864"
Row = dict[str, Any]  # one line of a results sheet, keyed by column title
NOT_IN_CATALOGUE = "exigence du REM absente du catalogue du harnais : non couverte par ce run"

# Normalised header -> field; "k" in proof headers is the proof index. Matched in order, on the whole header.
_HEADER_FIELDS = (
    ("conditionnelle", re.compile(r"exigence conditionnelle")),
    ("profil", re.compile(r"profils?")),
    ("id_section", re.compile(r"id section")),
    ("section", re.compile(r"section")),
    ("bloc", re.compile(r"bloc")),
    ("fonction", re.compile(r"fonction")),
    ("nature", re.compile(r"nature( de l'exigence)?")),
    ("numero", re.compile(r"n° (de l')?exigence")),
    ("enonce", re.compile(r"enonce\b.*")),
    ("scenario_numero", re.compile(r"n° (de )?scenario")),
    ("scenario_texte", re.compile(r"scenario( de conformite)?")),
    ("preuve_numero", re.compile(r"n° (de )?preuve ?(?P<k>\d+)")),
    ("preuve_texte", re.compile(r"preuve ?(?:n ?° ?)?(?P<k>\d+)")),
)
_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*?\bref=[\"']([^\"']*)[\"']")
_EXIGENCE_FIELDS = ("conditionnelle", "profil", "id_section", "section", "bloc", "fonction", "nature", "enonce")


def normalise_id(value: object) -> str:
    """Official ids are typed by hand ("SC.INS / CONF.01 "): without whitespace they match the catalogue's."""
    return re.sub(r"\s+", "", "" if value is None else str(value))


@dataclass
class OfficialProof:
    numero: str
    texte: str


@dataclass
class OfficialScenario:
    numero: str
    texte: str
    preuves: list[OfficialProof] = field(default_factory=list)


@dataclass
class OfficialExigence:
    numero: str
    conditionnelle: str = ""
    profil: str = ""
    id_section: str = ""
    section: str = ""
    bloc: str = ""
    fonction: str = ""
    nature: str = ""
    enonce: str = ""
    scenarios: list[OfficialScenario] = field(default_factory=list)

    def officiel(self) -> dict[str, Any]:
        """The ``officiel`` entry of rapport.json (shape fixed by the report contract)."""
        return {
            "enonce": self.enonce,
            "section": self.section,
            "bloc": self.bloc,
            "fonction": self.fonction,
            "conditionnelle": self.conditionnelle,
            "profil": self.profil,
            "scenarios": [asdict(s) for s in self.scenarios],
        }


@dataclass
class RemOverlay:
    """One imported REM workbook; the sha256 ties a report to the exact file it was compared with."""

    source: str
    sha256: str
    exigences: dict[str, OfficialExigence] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": OVERLAY_FORMAT,
            "source": self.source,
            "sha256": self.sha256,
            "exigences": [asdict(e) for e in self.exigences.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RemOverlay:
        if data.get("format") != OVERLAY_FORMAT:
            raise ValueError(f"not a REM overlay (format {data.get('format')!r}, expected {OVERLAY_FORMAT!r})")
        exigences = {}
        for entry in data["exigences"]:
            scenarios = [
                OfficialScenario(s["numero"], s["texte"], [OfficialProof(**p) for p in s["preuves"]])
                for s in entry["scenarios"]
            ]
            exigences[entry["numero"]] = OfficialExigence(**{**entry, "scenarios": scenarios})
        return cls(data["source"], data["sha256"], exigences)


def write_overlay(overlay: RemOverlay, path: Path) -> Path:
    """Saved next to the catalogue so that later runs reuse the import without the workbook."""
    path.write_text(json.dumps(overlay.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def load_overlay(path: Path) -> RemOverlay:
    return RemOverlay.from_json(json.loads(path.read_text(encoding="utf-8")))


def read_rem(path: Path) -> RemOverlay:
    """Parse every sheet of an REM workbook that has a "N° exigence" header row.

    The workbook comes from outside (downloaded, mailed): the zip package is checked before openpyxl opens it, and
    formulas are read as their cached values, never evaluated.
    """
    if path.stat().st_size > MAX_UNCOMPRESSED:
        raise ValueError(f"{path.name}: file larger than {MAX_UNCOMPRESSED // 2**20} MB, refused")
    data = path.read_bytes()
    _check_package(data, path.name)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # openpyxl raises many types on a malformed package: all mean "unreadable"
        raise ValueError(f"{path.name}: not a readable xlsx workbook ({exc})") from exc
    overlay = RemOverlay(path.name, hashlib.sha256(data).hexdigest())
    found = [_read_sheet(sheet, overlay.exigences) for sheet in workbook.worksheets]
    if not any(found):
        names = ", ".join(repr(s.title) for s in workbook.worksheets)
        raise ValueError(
            f"{path.name}: no sheet has a « N° exigence » header in its first {HEADER_SCAN_ROWS} rows "
            f"(sheets: {names}); is this an REM workbook?"
        )
    return overlay


def _check_package(data: bytes, name: str) -> None:
    """Refuse what is not an xlsx package, zip bombs and XML with a DOCTYPE before any XML parser sees it.

    Python's zipfile never inflates a member beyond its declared size, so the sum of declared sizes bounds the
    memory openpyxl can be made to use. A DOCTYPE has no business in an xlsx and is how entity expansion attacks start.
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValueError(f"{name}: not an xlsx file (not a zip package)")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        total = sum(m.file_size for m in members)
        if total > MAX_UNCOMPRESSED:
            raise ValueError(
                f"{name}: {total} bytes once uncompressed, more than {MAX_UNCOMPRESSED} (zip bomb?), refused"
            )
        if "xl/workbook.xml" not in {m.filename for m in members}:
            raise ValueError(f"{name}: not an xlsx workbook (no xl/workbook.xml in the package)")
        merged = 0
        for member in members:
            if not member.filename.endswith((".xml", ".rels")):
                continue
            xml = archive.read(member).replace(b"\0", b"")  # NULs removed: UTF-16 markup reads as ASCII too
            if b"<!DOCTYPE" in xml:
                raise ValueError(f"{name}: {member.filename} declares a DOCTYPE, refused")
            merged += sum(_area(ref.decode("ascii", "replace")) for ref in _MERGE_REF.findall(xml))
        if merged > MAX_MERGED_CELLS:
            raise ValueError(f"{name}: {merged} merged cells, more than {MAX_MERGED_CELLS}, refused")


def _area(ref: str) -> int:
    try:
        min_col, min_row, max_col, max_row = range_boundaries(ref)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"merged range {ref!r} is not a cell range") from exc
    if None in (min_col, min_row, max_col, max_row):
        raise ValueError(f"merged range {ref!r} is unbounded, refused")
    return (max_col - min_col + 1) * (max_row - min_row + 1)


def _header_key(value: object) -> str:
    """Headers vary in accents, case, apostrophes, line breaks and "(DOIT)"-style suffixes: reduce them to one form."""
    text = str(value).replace("º", "°").replace("˚", "°").replace("’", "'").replace("`", "'")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"\s+", " ", text.lower()).strip()
    text = re.sub(r"\s*\(.*\)$", "", text)
    return re.sub(r"^(?:n\s*°|no\.|no(?= )|num(?:ero)?\.?(?= ))\s*", "n° ", text)


def _header_field(value: object) -> tuple[str, int] | None:
    """(field, proof index or 0) for a header cell, None for a column the overlay does not keep."""
    if value is None:
        return None
    key = _header_key(value)
    for name, pattern in _HEADER_FIELDS:
        match = pattern.fullmatch(key)
        if match:
            return name, int(match.groupdict().get("k") or 0)
    return None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _find_header(sheet: Worksheet) -> tuple[int, dict[int, tuple[str, int]]] | None:
    """(row number, {column index: field}) of the first row with a "N° exigence" cell, looked for near the top."""
    bounds = {"max_row": min(sheet.max_row, HEADER_SCAN_ROWS), "max_col": min(sheet.max_column, MAX_COLUMNS)}
    for row_index, values in enumerate(sheet.iter_rows(**bounds, values_only=True), start=1):
        columns = {i: f for i, f in ((i, _header_field(v)) for i, v in enumerate(values)) if f}
        if any(name == "numero" for name, _ in columns.values()):
            return row_index, columns
    return None


def _sheet_rows(sheet: Worksheet, first_row: int, width: int) -> Iterator[list[object]]:
    """Rows as values, a merged range's value repeated in each of its cells (only its top-left cell holds it)."""
    merged: dict[tuple[int, int], object] = {}
    for cell_range in sheet.merged_cells.ranges:
        value = sheet.cell(cell_range.min_row, cell_range.min_col).value
        for row, col in cell_range.cells:
            merged[(row, col)] = value
    rows = sheet.iter_rows(min_row=first_row, max_row=sheet.max_row, max_col=width, values_only=True)
    for row_index, values in enumerate(rows, start=first_row):
        yield [merged.get((row_index, col), value) for col, value in enumerate(values, start=1)]


def _read_sheet(sheet: Worksheet, exigences: dict[str, OfficialExigence]) -> bool:
    """Add the sheet's requirements to ``exigences``; False when the sheet has no header row."""
    header = _find_header(sheet)
    if header is None:
        return False
    header_row, columns = header
    if sheet.max_row > MAX_ROWS:
        raise ValueError(f"sheet {sheet.title!r}: {sheet.max_row} rows, more than an REM can have ({MAX_ROWS})")
    current: OfficialExigence | None = None
    for values in _sheet_rows(sheet, header_row + 1, max(columns) + 1):
        cells: dict[str, str] = {}
        proofs: dict[int, dict[str, str]] = {}
        for index, (name, k) in columns.items():
            if k:
                proofs.setdefault(k, {})[name] = _cell_text(values[index])
            else:
                cells[name] = _cell_text(values[index])
        if _header_field(cells["numero"]) == ("numero", 0):
            continue  # header repeated further down (printing layout)
        numero = normalise_id(cells["numero"])
        if numero:
            current = exigences.setdefault(numero, OfficialExigence(numero))
            for name in _EXIGENCE_FIELDS:
                if cells.get(name) and not getattr(current, name):
                    setattr(current, name, cells[name])
        if current is not None:  # rows above the first requirement are notes
            _add_scenario_row(current, cells, [proofs[k] for k in sorted(proofs)])
    return True


def _add_scenario_row(exigence: OfficialExigence, cells: dict[str, str], proofs: list[dict[str, str]]) -> None:
    """A row names a scenario (new or already seen) or, when its scenario cells are blank, continues the last one."""
    numero, texte = normalise_id(cells.get("scenario_numero")), cells.get("scenario_texte", "")
    found = [OfficialProof(normalise_id(p.get("preuve_numero")), p.get("preuve_texte", "")) for p in proofs]
    found = [p for p in found if p.numero or p.texte]
    if numero or texte:
        scenario = next((s for s in exigence.scenarios if (s.numero or s.texte) == (numero or texte)), None)
    else:
        scenario = exigence.scenarios[-1] if exigence.scenarios else None
    if scenario is None:
        if not (numero or texte or found):
            return
        scenario = OfficialScenario(numero, texte)
        exigence.scenarios.append(scenario)
    scenario.preuves.extend(p for p in found if p not in scenario.preuves)


def apply_overlay(report: dict[str, Any], overlay: RemOverlay) -> dict[str, Any]:
    """Set each requirement's ``officiel`` (None when the REM lacks it) in place and return the report.

    ``rem_inconnues`` lists the REM requirements the run does not know: the coverage gap a reviewer asks about first.
    """
    known = set()
    for entry in report.get("exigences", []):
        key = normalise_id(entry["id"])
        known.add(key)
        official = overlay.exigences.get(key)
        entry["officiel"] = official.officiel() if official else None
    report["rem_inconnues"] = [key for key in overlay.exigences if key not in known]
    report.setdefault("versions", {})["rem"] = f"{overlay.source} (sha256 {overlay.sha256[:12]})"
    return report


def export_xlsx(report: dict[str, Any], out: Path, overlay: RemOverlay | None = None) -> Path:
    """Write the results in the REM layout, one row per proof, ready to attach to a référencement dossier.

    With an overlay, a requirement it knows gets one row per OFFICIAL proof of each official scenario, all with the
    requirement's status and all the exchange files of its scenarios: the harness does not map its own Then steps
    onto the official proofs, so it cannot claim a finer status. Other requirements (and all of them without an
    overlay) get one row per harness proof with that proof's status and exchanges; a requirement or scenario without
    proof gets one row with empty proof columns. REM requirements absent from the report come last, as "Non testé",
    so that the sheet answers every line of the REM.
    """
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Résultats"
    official_of = overlay.exigences if overlay else {}
    rows: list[tuple[Row, str]] = []
    for entry in report.get("exigences", []):
        official = official_of.get(normalise_id(entry["id"]))
        rows.extend(_official_rows(entry, official) if official else _harness_rows(entry))
    known = {normalise_id(entry["id"]) for entry in report.get("exigences", [])}
    for key, official in official_of.items():
        if key not in known:
            rows.extend(_official_rows({"statut": "non_teste", "messages": [NOT_IN_CATALOGUE]}, official))
    _write_table(sheet, HEADERS, rows, "Statut")
    for column, title in enumerate(HEADERS, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = WIDTHS[title]
    _write_execution(workbook.create_sheet("Exécution"), report, overlay)
    out.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(out)
    return out


def _official_rows(entry: dict[str, Any], official: OfficialExigence) -> Iterator[tuple[Row, str]]:
    scenarios = entry.get("scenarios") or []
    result = {
        "Statut": _label(entry["statut"]),
        "Constat": _constat(entry.get("messages", []), [c for s in scenarios for c in s.get("constats", [])]),
        "Scénario du harnais": "\n".join(_scenario_label(s) for s in scenarios),
        "Fichiers de preuve": _files(e for s in scenarios for e in s.get("echanges", [])),
    }
    described = {
        "Exigence conditionnelle": official.conditionnelle, "Profil": official.profil,
        "ID Section": official.id_section, "Section": official.section, "Bloc": official.bloc,
        "Fonction": official.fonction, "Nature de l'exigence": official.nature, "N° exigence": official.numero,
        "Énoncé": official.enonce, **result,
    }  # fmt: skip
    for scenario in official.scenarios or [OfficialScenario("", "")]:
        for proof in scenario.preuves or [OfficialProof("", "")]:
            yield {
                **described, "N° scénario": scenario.numero, "Scénario de conformité": scenario.texte,
                "N° preuve": proof.numero, "Preuve": proof.texte,
            }, entry["statut"]  # fmt: skip


def _harness_rows(entry: dict[str, Any]) -> Iterator[tuple[Row, str]]:
    """Without the official line, the catalogue fills what it knows: socle as ID Section, titre as Énoncé."""
    described = {
        "Profil": entry.get("profil") or "", "ID Section": entry.get("socle", ""),
        "Nature de l'exigence": entry.get("nature", ""), "N° exigence": entry["id"], "Énoncé": entry.get("titre", ""),
    }  # fmt: skip
    scenarios = entry.get("scenarios") or []
    if not scenarios:
        constat = _constat(entry.get("messages", []), [])
        yield {**described, "Statut": _label(entry["statut"]), "Constat": constat}, entry["statut"]
    for scenario in scenarios:
        constats = scenario.get("constats", [])
        head = {
            **described, "N° scénario": scenario["id"], "Scénario de conformité": scenario.get("nom", ""),
            "Scénario du harnais": _scenario_label(scenario),
        }  # fmt: skip
        if not scenario.get("preuves"):
            statut = scenario.get("statut", entry["statut"])
            yield {
                **head, "Statut": _label(statut), "Constat": _constat([scenario.get("message", "")], constats),
                "Fichiers de preuve": _files(scenario.get("echanges", [])),
            }, statut  # fmt: skip
        for proof in scenario.get("preuves", []):
            statut = _proof_status(proof, scenario, entry)
            message = proof.get("message") or (scenario.get("message", "") if statut != "conforme" else "")
            yield {
                **head, "N° preuve": proof["id"], "Preuve": proof.get("texte", ""), "Statut": _label(statut),
                "Constat": _constat([message], constats), "Fichiers de preuve": _files(proof.get("echanges", [])),
            }, statut  # fmt: skip


def _proof_status(proof: dict[str, Any], scenario: dict[str, Any], entry: dict[str, Any]) -> str:
    """A Then step is conforme or not only if its scenario ran; in a scenario not exercised it keeps that status."""
    scenario_status = scenario.get("statut", entry["statut"])
    if scenario_status not in ("conforme", "non_conforme"):
        return scenario_status
    return {"passe": "conforme", "echec": "non_conforme"}.get(proof.get("statut", ""), "non_teste")


def _label(statut: str) -> str:
    return LABELS.get(statut, statut)


def _scenario_label(scenario: dict[str, Any]) -> str:
    parameters = ", ".join(f"{k}={v}" for k, v in (scenario.get("parametres") or {}).items())
    label = f"{scenario['id']} — {scenario.get('nom', '')}"
    return f"{label} [{parameters}]" if parameters else label


def _constat(messages: Iterable[str], constats: Iterable[dict[str, Any]]) -> str:
    lines = [m for m in messages if m]
    for finding in constats:
        location = f" ({finding['location']})" if finding.get("location") else ""
        rule = f"[{finding.get('severity', '')}] {finding.get('rule', '')}"
        lines.append(f"{rule} : {finding.get('message', '')}{location}")
    return "\n".join(dict.fromkeys(lines))


def _files(exchanges: Iterable[dict[str, Any]]) -> str:
    """Paths relative to the run directory, request then response, each once."""
    paths = [e[side] for e in exchanges for side in ("request", "response") if e.get(side)]
    return "\n".join(dict.fromkeys(paths))


def _safe_text(value: object) -> str:
    """Report values are untrusted text: never a formula (xlsx/CSV injection), no control characters, Excel-sized."""
    text = ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value))
    if text.startswith(FORMULA_TRIGGERS):
        text = "'" + text
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _write_table(sheet: Worksheet, headers: tuple[str, ...], rows: Iterable[tuple[Row, str]], status: str) -> None:
    """Header frozen and filterable, text wrapped, status cell coloured so a reviewer reads the sheet at a glance."""
    for column, title in enumerate(headers, start=1):
        cell = sheet.cell(row=1, column=column, value=title)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    top = Alignment(wrap_text=True, vertical="top")
    status_column = headers.index(status) + 1
    for row_index, (row, statut) in enumerate(rows, start=2):
        for column, title in enumerate(headers, start=1):
            value = row.get(title, "")
            value = value if isinstance(value, int) else _safe_text(value)
            cell = sheet.cell(row=row_index, column=column, value=value)
            cell.alignment = top
        if statut in STATUS_FILLS:
            cell = sheet.cell(row=row_index, column=status_column)
            cell.fill = PatternFill("solid", fgColor=STATUS_FILLS[statut])
            cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(sheet.max_row, 2)}"


def _write_execution(sheet: Worksheet, report: dict[str, Any], overlay: RemOverlay | None) -> None:
    """What a reviewer checks before reading any line: which software, which run, which versions, which verdict."""
    sut = report.get("sut") or {}
    facts = [
        ("Couloir", report.get("couloir", ""), ""),
        ("Logiciel (SUT)", f"{sut.get('name', '')} {sut.get('version', '')} (adaptateur {sut.get('adapter', '')})", ""),
        ("Mode", report.get("mode", ""), ""),
        ("Verdict", _label(report.get("verdict", "")), report.get("verdict", "")),
        ("Début", report.get("started", ""), ""),
        ("Fin", report.get("ended", ""), ""),
        ("Référentiel", report.get("referentiel", ""), ""),
        *((f"Version {name}", value or "aucune", "") for name, value in (report.get("versions") or {}).items()),
        *((f"Exigences : {_label(s)}", count, s) for s, count in (report.get("summary") or {}).items()),
    ]  # fmt: skip
    if overlay:
        facts.append(("REM de l'export", f"{overlay.source} (sha256 {overlay.sha256[:12]})", ""))
    _write_table(sheet, ("Élément", "Valeur"), [({"Élément": k, "Valeur": v}, s) for k, v, s in facts], "Valeur")
    sheet.column_dimensions["A"].width = 32
    sheet.column_dimensions["B"].width = 80
