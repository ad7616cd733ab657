"""The one seal and unseal: a sealed secret opens only as what it is, for whose it is, with a key that sealed it."""

from __future__ import annotations

import os

import pytest

from billportal.core.crypto import MasterKeys, Sealed, SealError, master_key_id

OLD, NEW = os.urandom(32), os.urandom(32)


def test_a_sealed_secret_opens_for_its_purpose_and_company_only() -> None:
    keys = MasterKeys(NEW)
    sealed = keys.seal(b"the secret", "sso-key", 7)
    assert sealed.master_key_id == master_key_id(NEW)
    assert b"the secret" not in sealed.blob
    assert keys.unseal(sealed, "sso-key", 7) == b"the secret"
    for purpose, company_id in (("sso-key", 8), ("idempotent-response", 7)):
        with pytest.raises(SealError, match="integrity"):
            keys.unseal(sealed, purpose, company_id)


def test_values_sealed_by_a_previous_master_key_still_open_and_new_ones_use_the_current() -> None:
    before = MasterKeys(OLD).seal(b"kept", "sso-key", 1)
    rotated = MasterKeys(NEW, previous=[OLD])
    assert rotated.unseal(before, "sso-key", 1) == b"kept"
    assert rotated.seal(b"new", "sso-key", 1).master_key_id == master_key_id(NEW)
    with pytest.raises(SealError, match="BILLPORTAL_PREVIOUS_MASTER_KEYS"):
        MasterKeys(NEW).unseal(before, "sso-key", 1)


def test_the_text_form_round_trips_and_nothing_shows_a_key() -> None:
    keys = MasterKeys(NEW)
    sealed = keys.seal(b"answer", "idempotent-response", 3)
    assert keys.unseal(Sealed.from_text(sealed.as_text()), "idempotent-response", 3) == b"answer"
    assert NEW.hex() not in repr(keys)
    assert "blob" not in repr(sealed)
    with pytest.raises(SealError):
        Sealed.from_text("id:not base64!")


def test_which_master_key_sealed_a_value_is_known_without_opening_it() -> None:
    sealed = MasterKeys(OLD).seal(b"kept", "sso-key", 1)
    assert MasterKeys(NEW, previous=[OLD]).sealed_it(sealed)
    assert not MasterKeys(NEW).sealed_it(sealed)


def test_a_verification_key_is_opened_once_on_first_use_and_never_shown() -> None:
    from billportal.sso.tokens import VerificationKey

    keys = MasterKeys(NEW)
    sealed = keys.seal(b"the secret", "sso-key", 7)
    opened: list[bytes] = []

    def opener() -> bytes:
        opened.append(keys.unseal(sealed, "sso-key", 7))
        return opened[-1]

    key = VerificationKey("sso_1", opener=opener)
    assert opened == []
    assert key.secret == key.secret == b"the secret"
    assert len(opened) == 1
    assert "secret" not in repr(key)
    assert key == VerificationKey("sso_1", secret=b"the secret")
    assert key != VerificationKey("sso_1", secret=b"another")
    with pytest.raises(TypeError):
        VerificationKey("sso_1")
    wrong = VerificationKey("sso_2", opener=lambda: MasterKeys(OLD).unseal(sealed, "sso-key", 7))
    with pytest.raises(SealError):
        _ = wrong.secret
