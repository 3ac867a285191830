"""Named defects of the reference SUT: each one breaks exactly the requirements it lists.

The self-test runs the reference SUT once per defect and asserts that the report says
``non_conforme`` for ``breaks``, ``non_teste`` for ``blocks`` (requirements that cannot be
observed once the defect is present), and ``conforme`` for everything else. A defect whose
``mode`` is ``homologation`` only draws warnings: it breaks its requirements in that mode and
none in the default ``bac-a-sable`` one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    name: str
    description: str
    breaks: tuple[str, ...]
    blocks: tuple[str, ...] = ()
    mode: str = "bac-a-sable"


# DMP requirements whose scenarios need a qualified identity (INSi) and an accepted VIHF (all but DMP/PROV.09).
_DMP_AUTOMATIC = (
    "DMP/CONF.01",
    "DMP/CONF.03",
    "DMP/CONF.05",
    "DMP/CONF.06",
    "DMP/CONF.09",
    "DMP/AIRS.03",
    "DMP/AIRS.06",
    "DMP/ALI/PROG.01",
    "DMP/PSC.01",
    "DOC.01",
    "DOC/va1.21",
    "DMP/PROV.01",
    "DMP/PROV.02",
    "DMP/PROV.03",
    "DMP/PROV.04",
    "DMP/PROV.05",
    "DMP/PROV.06",
)
# The CRITIQUE DMP requirements whose scenarios send a VIHF: in homologation mode a VIHF warning fails each.
_DMP_CRITICAL = (
    "DMP/CONF.01",
    "DMP/CONF.06",
    "DMP/CONF.09",
    "DMP/AIRS.03",
    "DMP/AIRS.06",
    "DMP/PROV.01",
    "DMP/PROV.02",
    "DMP/PROV.03",
)
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

# What cannot be observed once the DMP refuses the document itself (metadata or content).
_NEEDS_FILED_DOCUMENT = ("DOC/va1.21", "DMP/CONF.03", "DMP/PROV.04", "DMP/PROV.05", "DMP/PROV.06")


# MSSanté requirements whose scenarios start from a qualified identity (all but the session rules).
_MSS_NEEDS_QUALIFIED_PATIENT = (
    "SC.MSS/CONF.01",
    "SC.MSS/CONF.03",
    "SC.MSS/CONF.05",
    "SC.MSS/CONF.06",
    "SC.MSS/CONF.07",
    "SC.MSS/CONF.12",
    "SC.MSS/CONF.14",
    "SC.MSS/CONF.15",
    "SC.MSS/CONF.16",
    "SC.MSS/CONF.21",
    "SC.MSS/CONF.22",
    "SC.MSS/CONF.23",
    "SC.MSS/CONF.24",
    "SC.MSS/CONF.25",
    "SC.MSS/CONF.27",
    "SC.MSS/CONF.28",
    "MSS/UX.33",
    "MSS/va1.01",
    "MSS/va1.13",
    "MSS/PROV.01",
    "MSS/PROV.02",
    "MSS/PROV.03",
    "MSS/PROV.04",
)
# MSSanté requirements judged on a personal BAL opened with the PS's PSC token.
_MSS_WITH_PSC_SESSION = ("SC.MSS/CONF.03", "SC.MSS/CONF.10", "SC.MSS/CONF.11", "SC.MSS/CONF.28")
# MSSanté requirements the DPI's scenarios judge on what it sent or read from its applicative BAL.
_MSS_FROM_THE_APPLICATIVE_BAL = (
    "SC.MSS/CONF.01",
    "SC.MSS/CONF.14",
    "SC.MSS/CONF.15",
    "SC.MSS/CONF.16",
    "SC.MSS/CONF.21",
    "SC.MSS/CONF.23",
    "SC.MSS/CONF.24",
    "SC.MSS/CONF.25",
    "MSS/UX.33",
    "MSS/va1.01",
    "MSS/va1.13",
    "MSS/PROV.01",
    "MSS/PROV.02",
    "MSS/PROV.03",
    "MSS/PROV.04",
)

# Judged on the VIHF itself (mode, PSC token): still observed when the VIHF is signed but wrong in content.
_JUDGED_ON_THE_VIHF = ("DMP/AIRS.03", "DMP/PSC.01")


def _vihf_refused(*broken: str) -> tuple[str, ...]:
    return tuple(requirement for requirement in _DMP_AUTOMATIC if requirement not in broken)


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
            "status-without-document",
            "marks an identity qualified without checking an ID document",
            # Checking the ID card then lowers the status to "validée": the DMP never gets this INS; and an
            # identity that was never checked is "qualified", so its INS reaches the DMP (DMP/PROV.09).
            ("INS/PROV.01", "DMP/PROV.09"),
            blocks=(*_DMP_AUTOMATIC, *_MSS_NEEDS_QUALIFIED_PATIENT),
        ),
        Defect(
            "wrong-certificate-cn",
            "calls INSi with the organisation AUTH_CLI certificate instead of INSI-AUTO",
            ("INS/va1.58",),
            blocks=(*_NEEDS_INSI_ANSWER, *_DMP_AUTOMATIC, "DMP/PROV.09", *_MSS_NEEDS_QUALIFIED_PATIENT),
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
        # The DMP's PSC mode then names the wrong professional too.
        Defect(
            "psc-sub-as-national-id",
            "takes the ID token's sub as the PS's national id",
            ("PSC/PROV.05", "DMP/PSC.01"),
            # No personal BAL is known for a sub: what needs the PS's own BAL cannot be observed.
            blocks=("SC.MSS/CONF.03", "SC.MSS/CONF.10", "SC.MSS/CONF.11"),
        ),
        Defect(
            "psc-persists-tokens",
            "writes the token response to <data dir>/psc-session.json",
            ("PSC/PROV.06", "SC.MSS/CONF.28"),
        ),
        Defect(
            "psc-no-logout", "forgets the session locally but returns no logout_url (PSC never told)", ("PSC/PROV.07",)
        ),
        Defect("psc-ignores-slow-down", "keeps polling at the same interval after CIBA slow_down", ("PSC/PROV.08",)),
        Defect(
            "psc-no-refresh",
            "never refreshes: keeps using the expired access token (MSSanté cannot reconnect either)",
            ("PSC/PROV.09", "SC.MSS/CONF.11"),
        ),
        Defect(
            "psc-single-host",
            "exchanges the code at the authorization endpoint's host instead of the discovered token endpoint",
            ("PSC.01",),
            # No web login ever completes, so what needs a logged-in professional cannot be observed.
            blocks=(
                "PSC/PROV.01",
                "PSC/PROV.05",
                "PSC/PROV.06",
                "PSC/PROV.07",
                "PSC/PROV.09",
                "PSC.10",
                "INS/PSC.01",
                "DMP/PSC.01",
                *_MSS_WITH_PSC_SESSION,
            ),
        ),
        Defect(
            "insi-without-psc",
            "calls INSi with the organisation certificate only, never on behalf of the PSC-logged-in PS",
            ("PSC.10", "INS/PSC.01"),
        ),
        # DMP
        Defect(
            "dmp-skips-td02",
            "feeds the DMP without testing it first (TD0.2)",
            ("DMP/CONF.01",),
            blocks=("DMP/CONF.09",),
        ),
        Defect(
            "dmp-no-divergence-alert",
            "says nothing when the DMP's identity differs from the local one",
            ("DMP/CONF.01",),
        ),
        Defect("dmp-td03-before-feeding", "asks for an authorisation (TD0.3) before feeding the DMP", ("DMP/CONF.05",)),
        Defect("dmp-consults-despite-opposition", "consults the DMP of a patient who opposed it", ("DMP/CONF.06",)),
        Defect("dmp-feeds-despite-opposition", "feeds the DMP of a patient who opposed it", ("DMP/CONF.09",)),
        Defect(
            "dmp-unsigned-vihf",
            "sends the VIHF without its signature",
            ("DMP/PROV.01",),
            blocks=_vihf_refused("DMP/PROV.01"),
        ),
        Defect(
            "dmp-tampered-vihf",
            "changes the VIHF after signing it",
            ("DMP/PROV.01",),
            blocks=_vihf_refused("DMP/PROV.01"),
        ),
        Defect(
            "dmp-vihf-wrong-role",
            "leaves the doctor's specialty out of the VIHF roles",
            ("DMP/PROV.01",),
            blocks=_vihf_refused("DMP/PROV.01", *_JUDGED_ON_THE_VIHF),
        ),
        Defect(
            "dmp-vihf-other-patient",
            "names another patient in the VIHF resource-id",
            ("DMP/PROV.01",),
            blocks=_vihf_refused("DMP/PROV.01", *_JUDGED_ON_THE_VIHF),
        ),
        Defect(
            "dmp-vihf-wrong-auth-mode",
            "declares Authentification_Mode DIRECTE instead of AIR",
            ("DMP/AIRS.03", "DMP/PROV.01"),
            blocks=_vihf_refused("DMP/PROV.01", *_JUDGED_ON_THE_VIHF),
        ),
        Defect(
            "dmp-vihf-generic-id",
            "sends documents under a shared secretariat account's VIHF (AIR mode)",
            ("DMP/AIRS.06",),
        ),
        Defect(
            "dmp-vihf-no-lifetime",
            "signs VIHF assertions without Conditions NotBefore/NotOnOrAfter (valid for ever)",
            _DMP_CRITICAL,
            mode="homologation",
        ),
        Defect("dmp-psc-mode-without-token", "uses an AIR VIHF even when the PS logged in with PSC", ("DMP/PSC.01",)),
        Defect(
            "dmp-hash-mismatch",
            "sends a document whose bytes differ from the metadata hash",
            ("DMP/PROV.02",),
            blocks=_NEEDS_FILED_DOCUMENT,
        ),
        Defect(
            "dmp-wrong-class-code",
            "sends a classCode the typeCode does not allow",
            ("DMP/PROV.02",),
            blocks=_NEEDS_FILED_DOCUMENT,
        ),
        Defect(
            "dmp-cda-missing-trait",
            "leaves the birth name's qualifier BR out of the CDA header",
            ("DMP/PROV.03",),
            blocks=_NEEDS_FILED_DOCUMENT,
        ),
        Defect(
            "dmp-no-auto-send",
            "keeps a validated document until someone sends it",
            ("DMP/ALI/PROG.01",),
            blocks=("DMP/CONF.09", "DOC.01", "DMP/PROV.05"),
        ),
        Defect("dmp-n3-only", "sends structured (N3) documents only, never the N1 PDF", ("DOC.01",)),
        Defect("dmp-ignores-confidentiality", "drops the confidentiality codes the clinician chose", ("DOC/va1.21",)),
        Defect("dmp-no-deletion", "reports a deletion without asking the DMP", ("DMP/CONF.03",)),
        Defect("dmp-replace-without-rplc", "sends the corrected document as a new one (no RPLC)", ("DMP/PROV.04",)),
        Defect("dmp-drops-failed-document", "forgets a document the DMP did not take", ("DMP/PROV.05",)),
        Defect(
            "dmp-sends-unqualified-ins", "feeds the DMP with the INS of an identity not qualified", ("DMP/PROV.09",)
        ),
        Defect("dmp-lists-without-opening", "lists the DMP's documents (ITI-18) but never opens one", ("DMP/PROV.06",)),
        # MSSanté. ``blocks`` stay empty until the self-test shows what each one hides.
        Defect(
            "mss-auth-before-starttls",
            "sends AUTH with its credentials in clear before STARTTLS (then goes on over TLS)",
            ("SC.MSS/CONF.07",),
        ),
        Defect(
            "mss-no-reconnect",
            "gives up when the operator ends a session because the PSC token expired",
            ("SC.MSS/CONF.11",),
        ),
        Defect("mss-keeps-session", "keeps the IMAP session open after the PS's session ended", ("SC.MSS/CONF.10",)),
        Defect("mss-token-on-disk", "writes the PSC access token to <data dir>/mss-session.json", ("SC.MSS/CONF.28",)),
        Defect(
            "mss-app-wrong-certificate",
            "opens the applicative BAL with the signature certificate instead of auth-cli",
            ("SC.MSS/CONF.27",),
            blocks=_MSS_FROM_THE_APPLICATIVE_BAL,
        ),
        Defect("mss-no-nil", "sends messages without X-MSS-NIL", ("SC.MSS/CONF.16",)),
        Defect("mss-no-codecda", "leaves X-MSS-CODECDA out although a CDA travels in IHE_XDM.ZIP", ("SC.MSS/CONF.15",)),
        Defect(
            "mss-ins-o-unqualified", "sends X-MSS-INS: O for an identity that is not qualified", ("SC.MSS/CONF.14",)
        ),
        Defect(
            "mss-no-fin",
            "leaves X-MSS-MES: FIN out when the professional forbids the patient's reply",
            ("SC.MSS/CONF.21",),
        ),
        Defect(
            "mss-bad-subject", "writes the subject without the XDM/1.0/DDM+ marker and birth date", ("SC.MSS/CONF.25",)
        ),
        Defect("mss-two-patients", "attaches a second patient's IHE_XDM.ZIP to the message", ("SC.MSS/CONF.23",)),
        Defect(
            "mss-no-mdn-request", "asks no read receipt (Disposition-Notification-To) when asked to", ("MSS/UX.33",)
        ),
        Defect("mss-xdm-bad-hash", "announces in METADATA.XML a SHA-1 the document does not have", ("MSS/PROV.01",)),
        Defect(
            "mss-xdm-cda-missing-trait",
            "sends in IHE_XDM.ZIP a CDA whose birth name lost its qualifier BR",
            ("MSS/PROV.01",),
        ),
        Defect(
            "mss-patient-from-subject",
            "files a received document under the patient named in the subject, not METADATA.XML's",
            ("SC.MSS/CONF.24",),
        ),
        Defect("mss-shows-xdm-prefix", "shows received subjects with their XDM/1.0/DDM+ marker", ("MSS/va1.01",)),
        Defect("mss-replace-as-new", "sends a corrected document as a new one (no RPLC, new setId)", ("MSS/va1.13",)),
        Defect("mss-drops-failed-message", "forgets a message the operator did not take", ("MSS/PROV.04",)),
        Defect("mss-pdf-generic-name", "names the attached PDF compte-rendu.pdf", ("MSS/PROV.02",)),
        Defect("mss-latin1-text", "writes the message text in ISO-8859-1 instead of UTF-8", ("MSS/PROV.03",)),
        Defect(
            "mss-from-header-mismatch",
            "writes a generic no-reply address in From; the BAL appears only in the SMTP envelope",
            ("SC.MSS/CONF.01",),
        ),
        Defect(
            "mss-app-bal-despite-ps",
            "DPI: keeps sending from its applicative BAL when a PS is logged in with Pro Santé Connect",
            ("SC.MSS/CONF.03",),
            blocks=("SC.MSS/CONF.10", "SC.MSS/CONF.11"),
        ),
        Defect(
            "mss-accepts-legacy-tls",
            "accepts TLS 1.0/1.1 and every cipher suite from the operator",
            ("SC.MSS/CONF.05",),
        ),
        Defect(
            "mss-no-certificate-check",
            "accepts any server certificate (expired, revoked, unknown CA)",
            ("SC.MSS/CONF.06", "SC.MSS/CONF.12", "SC.MSS/CONF.22"),
        ),
        Defect(
            "mss-no-crl-check",
            "never checks the operator's certificate against the CRL",
            ("SC.MSS/CONF.12", "SC.MSS/CONF.22"),
        ),
        Defect(
            "mss-forgets-crl",
            "keeps no copy of the CRL: when it cannot be fetched, connects unchecked",
            ("SC.MSS/CONF.22",),
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
