"""Named defects of the reference SUT: each one breaks exactly the requirements it lists.

The self-test runs the reference SUT once per defect and asserts that the report says
``non_conforme`` for ``breaks``, ``non_teste`` for ``blocks`` (requirements that cannot be
observed once the defect is present), and ``conforme`` for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    name: str
    description: str
    breaks: tuple[str, ...]
    blocks: tuple[str, ...] = ()


# Requirements whose scenarios need an accepted INSi call (INS/va1.02 needs none).
_NEEDS_INSI_ANSWER = (
    "INS/va1.06",
    "INS/va1.38",
    "INS/PROV.01",
    "INS/PROV.02",
    "INS/PROV.03",
    "INS/PROV.04",
    "INS/PROV.05",
    "INS/PROV.06",
    "INS/PROV.07",
    "PSC.10",
    "INS/PSC.01",
)

DEFECTS: dict[str, Defect] = {
    d.name: d
    for d in (
        Defect("ins-no-key-check", "stores the INS without checking the NIR/NIA key", ("INS/PROV.03",)),
        Defect(
            "corsica-key-bug", "computes the key with 2A/2B read as 20, rejecting valid Corsican INS", ("INS/PROV.03",)
        ),
        Defect("keeps-typed-traits", "keeps the typed traits instead of those returned by INSi", ("INS/PROV.04",)),
        Defect("no-first-name-retry", "does not retry the other first names after CR 01", ("INS/PROV.05",)),
        Defect("sends-ins-unqualified", "exports the INS of an identity that is not qualified", ("INS/PROV.02",)),
        Defect(
            "status-without-document", "marks an identity qualified without checking an ID document", ("INS/PROV.01",)
        ),
        Defect(
            "wrong-certificate-cn",
            "calls INSi with the organisation AUTH_CLI certificate instead of INSI-AUTO",
            ("INS/va1.58",),
            blocks=_NEEDS_INSI_ANSWER,
        ),
        Defect("no-return-code-trace", "traces INSi calls without their return code", ("INS/va1.38",)),
        Defect("no-verification-trace", "does not trace INS verifications", ("INS/va1.06",)),
        Defect("no-anteriority-search", "creates a new patient without searching for an existing one", ("INS/va1.02",)),
        Defect("takes-historic-ins", "stores the first historic INS instead of the active one", ("INS/PROV.06",)),
        Defect("forces-nir-oid", "stores the INS-NIR OID whatever OID INSi returned", ("INS/PROV.06",)),
        Defect(
            "insi-error-as-no-identity",
            "treats an INSi fault or timeout as 'no identity found' (CR 01)",
            ("INS/PROV.07",),
        ),
        # Pro Santé Connect. ``blocks`` stay empty until the self-test shows what each one hides.
        Defect("psc-no-pkce", "sends no code_challenge and no code_verifier in the code flow", ("PSC/PROV.01",)),
        Defect("psc-no-state-check", "accepts a callback whose state is wrong or missing", ("PSC/PROV.02",)),
        Defect("psc-no-nonce-check", "accepts an ID token whose nonce is not the one sent", ("PSC/PROV.03",)),
        Defect("psc-accepts-forged-id-token", "skips the ID token's signature (and alg) check", ("PSC/PROV.04",)),
        Defect("psc-accepts-expired-id-token", "does not check the ID token's exp", ("PSC/PROV.04",)),
        Defect("psc-no-acr-values", "sends no acr_values=eidas1 (code flow and CIBA)", ("PSC.08",)),
        Defect("psc-sub-as-national-id", "takes the ID token's sub as the PS's national id", ("PSC/PROV.05",)),
        Defect("psc-persists-tokens", "writes the token response to <data dir>/psc-session.json", ("PSC/PROV.06",)),
        Defect(
            "psc-no-logout", "forgets the session locally but returns no logout_url (PSC never told)", ("PSC/PROV.07",)
        ),
        Defect("psc-ignores-slow-down", "keeps polling at the same interval after CIBA slow_down", ("PSC/PROV.08",)),
        Defect("psc-no-refresh", "never refreshes: keeps using the expired access token", ("PSC/PROV.09",)),
        Defect(
            "psc-single-host",
            "exchanges the code at the authorization endpoint's host instead of the discovered token endpoint",
            ("PSC.01",),
            # No web login ever completes, so what needs a logged-in professional cannot be observed.
            blocks=("PSC/PROV.01", "PSC/PROV.05", "PSC/PROV.06", "PSC/PROV.07", "PSC/PROV.09", "PSC.10", "INS/PSC.01"),
        ),
        Defect(
            "insi-without-psc",
            "calls INSi with the organisation certificate only, never on behalf of the PSC-logged-in PS",
            ("PSC.10", "INS/PSC.01"),
        ),
    )
}


def parse_defects(spec: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``, refusing unknown names with the list of known ones."""
    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    unknown = [name for name in names if name not in DEFECTS]
    if unknown:
        raise ValueError(f"unknown defect(s) {unknown}; known: {', '.join(sorted(DEFECTS))}")
    return names
