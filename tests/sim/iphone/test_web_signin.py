"""The sign-in a person does in the enrollment web view: the form found on any page, hidden fields kept."""

from __future__ import annotations

import pytest

from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.web_signin import filled_in, sign_in_form

PAGE = """<html><body>
<form action="/search" method="get"><input name="q"></form>
<form action="signin?x=1" method="POST">
  <input type="hidden" name="state" value="s&amp;1">
  <input type="email" name="login">
  <input type="password" name="secret">
  <input type="checkbox" name="remember" value="yes">
  <input type="submit" name="go" value="Sign in">
</form></body></html>"""


def test_the_form_with_a_password_is_filled_in_keeping_its_hidden_fields() -> None:
    form = sign_in_form(PAGE, page_url="https://mdm.example.com/enroll/web/abc")
    assert form.action == "https://mdm.example.com/enroll/web/signin?x=1"
    assert filled_in(form, user="ann@example.com", password="pw") == {
        "state": "s&1",
        "login": "ann@example.com",
        "secret": "pw",
    }


def test_a_page_without_a_sign_in_form_is_a_clear_failure() -> None:
    with pytest.raises(SetupFailed, match="no sign-in form"):
        sign_in_form("<form><input name=q></form>", page_url="https://mdm.example.com/")


def test_a_form_that_would_send_the_password_in_the_url_is_refused() -> None:
    with pytest.raises(SetupFailed, match="does not POST"):
        sign_in_form('<form method="get"><input type="password" name="p"></form>', page_url="https://x.example/")


def test_a_form_without_a_user_name_field_is_refused() -> None:
    form = sign_in_form('<form method="post"><input type="password" name="p"></form>', page_url="https://x.example/")
    assert form.action == "https://x.example/"
    with pytest.raises(SetupFailed, match="user name"):
        filled_in(form, user="ann", password="pw")
