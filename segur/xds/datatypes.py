"""The HL7 v2 datatypes XDS metadata carries as strings (CX, XCN, XON, DTM) and the national ids inside them.

XDS puts HL7 v2 values in ebRIM slots (ITI TF-3 Table 4.2.3.1.7-2); the CI-SIS "Volet Partage
de Documents de Santé" fixes which components the DMP reads: the INS in CX.1 with its OID in
CX.4, the IDNPS in XCN.1 with the PS OID in XCN.9 and "IDNPS" in XCN.13, the IDNST in XON.10
with the structure OID in XON.6 and "IDNST" in XON.7. Parsing is deliberately lenient (split
on ``^`` and ``&``) and the checks are explicit, so a finding can say which component is wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from segur.ins import key_is_valid
from segur.rpps import luhn_valid

OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
DTM = re.compile(r"^[0-9]{4}(?:[0-9]{2}){0,5}$")
_CDA_TS = re.compile(r"^([0-9]{4,14})(?:\.[0-9]+)?(?:([+-])([0-9]{2})([0-9]{2}))?$")
_DTM_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def is_oid(value: str) -> bool:
    return len(value) <= 64 and bool(OID.match(value))


def components(value: str) -> list[str]:
    return value.split("^")


def hd_oid(hd: str) -> str | None:
    """The universal id of an HD written ``&OID&ISO``; None unless it is exactly that shape."""
    parts = hd.split("&")
    if len(parts) == 3 and parts[0] == "" and parts[2] == "ISO" and is_oid(parts[1]):
        return parts[1]
    return None


@dataclass(frozen=True)
class Cx:
    """An identifier with its assigning authority (XDS patientId, sourcePatientId)."""

    id: str
    authority: str | None
    type_code: str
    extra_components: bool


def parse_cx(value: str) -> Cx:
    parts = components(value)
    padded = [*parts, "", "", "", "", ""]
    extra = any(parts[5:]) or bool(padded[1] or padded[2])
    return Cx(padded[0], hd_oid(padded[3]), padded[4], extra)


def ins_problem(matricule_and_key: str) -> str | None:
    """Why a CX.1 is not an INS matricule (13 characters then the 2-digit key), or None."""
    if len(matricule_and_key) != 15:
        return f"'{matricule_and_key}' is not a 15-character INS (13-character NIR/NIA then its 2-digit key)"
    if not key_is_valid(matricule_and_key[:13], matricule_and_key[13:]):
        return f"'{matricule_and_key}' has a wrong INS key (97 - NIR mod 97)"
    return None


def idnps_problem(idnps: str) -> str | None:
    """Why an IDNPS is not one (8+RPPS with Luhn key, 0+ADELI, 3+FINESS/local id), or None."""
    if idnps.startswith("8"):
        rpps = idnps[1:]
        if len(rpps) != 11 or not luhn_valid(rpps):
            return f"IDNPS '{idnps}' is not 8 followed by an 11-digit RPPS with a valid Luhn key"
        return None
    if idnps.startswith("0") and re.fullmatch(r"0[0-9A-Z]{9}", idnps):
        return None
    if idnps.startswith("3") and re.fullmatch(r"3[0-9A-Z]{9}/.+", idnps):
        return None
    return f"'{idnps}' is not an IDNPS (8+RPPS, 0+ADELI or 3+FINESS/identifiant interne)"


def xcn_problem(value: str) -> str | None:
    """Why an XCN (authorPerson, legalAuthenticator) does not identify a professional the DMP knows."""
    parts = [*components(value), *[""] * 13]
    if not parts[0]:
        return f"XCN '{value}' has no identifier in XCN.1 (the IDNPS)"
    if hd_oid(parts[8]) != "1.2.250.1.71.4.2.1":
        return f"XCN '{value}' must carry the PS national id OID as XCN.9 '&1.2.250.1.71.4.2.1&ISO'"
    if parts[12] != "IDNPS":
        return f"XCN '{value}' must say 'IDNPS' in XCN.13 (identifier type code)"
    return idnps_problem(parts[0])


def xon_problem(value: str) -> str | None:
    """Why an XON (authorInstitution) is malformed: a name, and an IDNST with the structure OID when identified."""
    parts = [*components(value), *[""] * 10]
    if not parts[0]:
        return f"XON '{value}' has no organisation name in XON.1"
    if parts[9]:
        if hd_oid(parts[5]) != "1.2.250.1.71.4.2.2":
            return f"XON '{value}' must carry the structure id OID as XON.6 '&1.2.250.1.71.4.2.2&ISO'"
        if parts[6] != "IDNST":
            return f"XON '{value}' must say 'IDNST' in XON.7 (identifier type code)"
    return None


def _instant(digits: str) -> dt.datetime:
    """YYYY[MM[DD[hh[mm[ss]]]]] (checked by the caller) as a datetime; ValueError for an impossible date or time.

    The datetime constructor checks what ``strptime`` would, at a quarter of its cost: every DMP
    submission carries a dozen of these.
    """
    return dt.datetime(
        int(digits[:4]),
        int(digits[4:6] or 1),
        int(digits[6:8] or 1),
        int(digits[8:10] or 0),
        int(digits[10:12] or 0),
        int(digits[12:14] or 0),
    )


def dtm_problem(value: str) -> str | None:
    """Why a value is not an XDS DTM: UTC, no offset, YYYY[MM[DD[hh[mm[ss]]]]], a real date."""
    if not DTM.match(value):
        return f"'{value}' is not an XDS time (UTC digits YYYYMMDDhhmmss, no separator, no offset)"
    try:
        _instant(value)
    except ValueError:
        return f"'{value}' is not a valid date/time"
    return None


def cda_ts_to_utc(value: str) -> str | None:
    """A CDA TS (``20240115103000+0100``) as the XDS DTM the DMP expects (``20240115093000``).

    Times without an offset are returned as written: CI-SIS requires the offset on any time
    finer than the day, so there is nothing sound to convert them with.
    """
    match = _CDA_TS.match(value)
    if not match or len(match.group(1)) not in _DTM_FORMATS:
        return None
    digits, sign, hours, minutes = match.groups()
    if sign is None or len(digits) <= 8:
        return digits
    local = _instant(digits)
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes)) * (1 if sign == "+" else -1)
    return (local - offset).strftime(_DTM_FORMATS[len(digits)])
