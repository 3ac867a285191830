"""The wallet's HTML: the login form a tester uses in a manual session, and message pages.

Errors the user must see (unknown client, unregistered redirect URI, bad logout) are pages,
never redirects: sending them to an unregistered URI is the open redirect OAuth forbids.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib import resources
from string import Template

from segur.mocks.psc.directory import Professional

AUTHORIZE_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "acr_values",
    "code_challenge",
    "code_challenge_method",
)


@cache
def _template(name: str) -> Template:
    return Template(resources.files("segur.mocks.psc").joinpath(name).read_text(encoding="utf-8"))


def login_page(action: str, params: dict[str, str], professionals: list[Professional], message: str = "") -> bytes:
    """The login form; the authorization parameters ride along in hidden fields."""
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{escape(params[name])}">'
        for name in AUTHORIZE_PARAMETERS
        if name in params
    )
    choices = "\n".join(
        f'<label><input type="radio" name="national_id" value="{escape(p.national_id)}"{" checked" if i == 0 else ""}>'
        f" {escape(p.family_name)} {escape(p.given_name)} <small>{escape(p.national_id)} - {escape(p.libelle)}</small>"
        "</label>"
        for i, p in enumerate(professionals)
    )
    return (
        _template("login.html")
        .substitute(
            client_id=escape(params.get("client_id", "")),
            message=f'<p class="erreur">{escape(message)}</p>' if message else "",
            action=escape(action),
            hidden=hidden,
            professionals=choices,
        )
        .encode()
    )


def message_page(title: str, message: str) -> bytes:
    return _template("page.html").substitute(title=escape(title), message=escape(message)).encode()
