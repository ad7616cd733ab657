"""docs/integration.md keeps up with the code: every reason code, page id and snippet language is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from billportal.sso.pages import SEED_PAGE_IDS
from billportal.sso.reasons import EXPLANATIONS, Reason

GUIDE = (Path(__file__).resolve().parents[3] / "docs" / "integration.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_code_is_explained_with_what_to_do(reason: Reason) -> None:
    what, fix = EXPLANATIONS[reason]
    assert f"| `{reason.value}` | {what} | {fix} |" in GUIDE


@pytest.mark.parametrize("page_id", SEED_PAGE_IDS)
def test_every_page_id_is_listed(page_id: str) -> None:
    assert f"| `{page_id}` |" in GUIDE


@pytest.mark.parametrize("language", ["Python", "Node.js", "Ruby", "PHP", "Java", "Go", "C#"])
def test_there_is_a_snippet_for_each_language(language: str) -> None:
    assert f"### {language} (" in GUIDE


def test_the_guide_covers_rotation_and_the_api() -> None:
    for needle in ("grace period", "kid", "/api/v1/docs", "Idempotency-Key", "billportal.Client", "api-key create"):
        assert needle in GUIDE
