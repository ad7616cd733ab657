"""ISO 3166 countries and subdivisions: what the portal offers and what the write model accepts."""

from __future__ import annotations

import pytest

from billportal.core.countries import countries, country_name, region, subdivisions


def test_every_iso_3166_country_is_offered_once_by_name() -> None:
    codes = [code for code, _ in countries()]
    assert len(codes) == len(set(codes)) == 249
    names = [name.casefold() for _, name in countries()]
    assert names == sorted(names)
    assert country_name("DE") == "Germany"
    assert country_name("BO") == "Bolivia"  # the common name, not "Bolivia, Plurinational State of"
    for unknown in ("XX", "us", "USA", ""):
        assert country_name(unknown) is None


@pytest.mark.parametrize("spelling", ["NM", "nm", "US-NM", "us-nm", "New Mexico", "NEW MEXICO"])
def test_a_region_is_known_by_its_code_its_iso_code_or_its_name(spelling: str) -> None:
    assert region("US", spelling) == "NM"


def test_a_region_of_another_country_or_none_is_refused() -> None:
    assert region("US", "Ontario") is None
    assert region("CA", "NM") is None
    assert region("CA", "ON") == "ON"
    assert ("ON", "Ontario") in subdivisions("CA")


def test_where_no_subdivisions_are_known_the_region_is_free_text() -> None:
    assert subdivisions("AQ") == ()
    assert subdivisions("XX") == ()
    assert region("AQ", "Ross Dependency") == "Ross Dependency"
