"""Every fixed text of a digest exists in both languages; days left to a deadline in words."""

from __future__ import annotations

from datetime import date

import pytest

from tendermatch.notifier import texts


@pytest.mark.parametrize(("days", "da", "en"), [(-1, "overskredet", "passed"), (0, "i dag", "today"),
                                                (1, "i morgen", "tomorrow"), (12, "om 12 dage", "in 12 days")])
def test_days_left(days, da, en):
    today = date(2026, 11, 22)
    deadline = date.fromordinal(today.toordinal() + days)
    assert texts.days_left(deadline, today=today, language="da") == da
    assert texts.days_left(deadline, today=today, language="en") == en


def test_every_label_exists_in_both_languages():
    assert set(texts.LABELS["da"]) == set(texts.LABELS["en"])
