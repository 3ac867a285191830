"""INS matricule arithmetic shared by the harness core (catalogue data, test identities).

The NIR/NIA key is 97 - (number mod 97), where the 13-character number may hold
a Corsican department (2A, 2B) that is replaced by 19 / 18 before the modulo.
"""

from __future__ import annotations

import re

OID_INS_NIR = "1.2.250.1.213.1.4.8"
OID_INS_NIA = "1.2.250.1.213.1.4.9"
OID_INS_NIR_TEST = "1.2.250.1.213.1.4.10"
OID_INS_NIA_TEST = "1.2.250.1.213.1.4.11"

_MATRICULE = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6}$")


def numeric_form(matricule: str) -> int:
    """Return the 13-character matricule as the integer the key is computed on."""
    upper = matricule.upper()
    if not _MATRICULE.match(upper):
        raise ValueError(f"not a 13-character NIR/NIA: {matricule!r}")
    return int(upper.replace("2A", "19", 1).replace("2B", "18", 1))


def ins_key(matricule: str) -> str:
    """Compute the two-digit key of a 13-character NIR/NIA."""
    return f"{97 - numeric_form(matricule) % 97:02d}"


def key_is_valid(matricule: str, key: str) -> bool:
    """True when ``key`` is the key of ``matricule``; False for any malformed input."""
    try:
        return ins_key(matricule) == key
    except ValueError:
        return False
