import re

import pytest

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_newcomer_signs_up_confirms_email_and_lands_on_dashboard(browser_page, live_server, mailoutbox, settings):
    settings.SITE_URL = live_server.url
    page = browser_page

    page.goto("/")
    page.get_by_role("link", name="Create your artist account").click()
    page.get_by_label("Display name").fill("Browser Artist")
    page.get_by_label("Email").fill("browser.artist@example.test")
    page.get_by_label(re.compile(r"^Password:?$")).fill("a long and unusual passphrase 7")
    page.get_by_label("Password (again)").fill("a long and unusual passphrase 7")
    page.get_by_role("button", name="Sign Up").click()

    page.wait_for_url("**/accounts/confirm-email/")
    assert len(mailoutbox) == 1
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mailoutbox[0].body).group(0)

    page.goto(link)
    page.get_by_role("button", name="Confirm").click()

    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("heading", name="Welcome, Browser Artist").is_visible()
    assert User.objects.get(email="browser.artist@example.test").emailaddress_set.get().verified
