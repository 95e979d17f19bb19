"""The sign-in a person does in Setup Assistant's web view (user affinity, the cloud configuration's
``ConfigurationWebURL``): find the form on the page, fill in user name and password, keep its hidden fields.

The page is read with the standard library's HTML parser, as any page a server writes may be served: the form
is the one with a password field; its text or email field takes the user name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

from pippin.sim.iphone.errors import SetupFailed

_USER_TYPES = ("text", "email", "")


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, value)

    @property
    def has_password(self) -> bool:
        return any(kind == "password" for kind, _, _ in self.fields)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(action=values.get("action", ""), method=values.get("method", "get").lower())
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and values.get("name"):
            kind = values.get("type", "").lower()
            if kind not in ("submit", "button", "image", "reset", "file"):
                self._current.fields.append((kind, values["name"], values.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def sign_in_form(html: str, *, page_url: str) -> Form:
    """The page's sign-in form, its action made absolute; :class:`SetupFailed` when the page has none."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    form = next((f for f in parser.forms if f.has_password), None)
    if form is None:
        raise SetupFailed("sign-in", "the enrollment web page shows no sign-in form")
    if form.method != "post":
        raise SetupFailed("sign-in", "the sign-in form does not POST its password")
    form.action = urljoin(page_url, form.action or page_url)
    return form


def filled_in(form: Form, *, user: str, password: str) -> dict[str, str]:
    """The form's fields as a person submits them: hidden ones kept, the user name and password typed in."""
    values: dict[str, str] = {}
    user_field = next((name for kind, name, _ in form.fields if kind in _USER_TYPES), None)
    for kind, name, value in form.fields:
        if kind == "password":
            values[name] = password
        elif name == user_field:
            values[name] = user
        elif kind in ("checkbox", "radio"):
            continue
        else:
            values[name] = value
    if user_field is None:
        raise SetupFailed("sign-in", "the sign-in form has no field for the user name")
    return values
