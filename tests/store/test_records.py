"""The record types the stages share (store/records.py) say what the notice schema says:
the same keys for a notice, a lot, money and a buyer; and what a parser writes and the
matcher's facts are within them."""

from __future__ import annotations

import json
from typing import get_args, get_type_hints

from tendermatch.crawler.parsers.common import new_lot, new_record
from tendermatch.crawler.parsers.ted_api import SCHEMA_STAGES
from tendermatch.matcher.engine import score_notice
from tendermatch.store import records
from tests.conftest import notice_schema
from tests.matcher.helpers import KANTINE, sample, sample_profile


def test_the_notice_types_have_the_schemas_keys():
    schema = notice_schema()
    assert set(get_type_hints(records.NoticeRecord)) == set(schema["properties"])
    assert set(get_type_hints(records.Lot)) == set(schema["properties"]["lots"]["items"]["properties"])
    assert set(get_type_hints(records.Money)) == set(schema["$defs"]["money"]["properties"])
    assert set(get_type_hints(records.Buyer)) == set(schema["properties"]["buyer"]["properties"])


def test_the_kinds_and_stages_are_the_schemas():
    schema = notice_schema()["properties"]
    assert set(get_args(records.Stage)) == set(schema["stage"]["enum"])
    assert set(get_args(records.NoticeKind)) == set(schema["kind"]["enum"])
    # The TED search API parser keeps its own copy: the parsers do not load the store.
    assert set(SCHEMA_STAGES) == set(get_args(records.Stage))


def test_a_new_record_and_lot_hold_only_typed_keys():
    assert set(new_record()) <= set(get_type_hints(records.NoticeRecord))
    assert set(new_lot()) == set(get_type_hints(records.Lot))


def test_a_real_matchs_facts_hold_only_typed_keys():
    match = score_notice(sample_profile("maaltidsvaerkstedet"), sample(KANTINE))
    assert match is not None
    facts = json.loads(json.dumps(match.facts))
    assert set(facts) <= set(get_type_hints(records.MatchFacts))
    parts = {"cpv": records.CpvFact, "lot": records.LotFact, "place": records.PlaceFact,
             "agreement": records.AgreementFact}
    for key, shape in parts.items():
        if key in facts:
            assert set(facts[key]) <= set(get_type_hints(shape)), key
    for item in facts["keywords"]:
        assert set(item) <= set(get_type_hints(records.KeywordFact))
