"""services/contacts.py's messages are constants (gettext finds them); the numbers and names in them stay true."""

from __future__ import annotations

import pytest

from billportal.core.errors import Refused
from billportal.services import contacts
from billportal.storage.contacts import MAX_CONTACTS


def test_the_messages_say_the_rules_limits() -> None:
    assert f" {contacts.MAX_NAME} characters" in contacts.NAME_RULE
    assert f" {MAX_CONTACTS} contacts" in contacts.TOO_MANY
    assert contacts.ROLE_RULE.endswith(", ".join(contacts.ROLES))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "", "email": "a@example.com", "role": "view"}, contacts.NAME_RULE),
        ({"name": "A", "email": "a", "role": "view"}, contacts.EMAIL_RULE),
        ({"name": "A", "email": "a@example.com", "role": "owner"}, contacts.ROLE_RULE),
    ],
)
def test_each_rule_refuses_with_its_constant(values: dict[str, str], message: str) -> None:
    with pytest.raises(Refused) as refused:
        contacts.clean(values)
    assert refused.value.message is message


def test_an_address_is_compared_trimmed_and_in_lower_case() -> None:
    assert contacts.address("  Pat@Example.COM ") == "pat@example.com"
    assert contacts.clean({"name": " Pat  Lee ", "email": " Pat@Example.com", "role": "pay"}) == {
        "name": "Pat Lee",
        "email": "pat@example.com",
        "role": "pay",
    }
