"""Every XML and JSON file of the shared corpus through the format-detecting dispatcher:
each either gives schema-valid notices or a one-line ParseError; nothing else escapes."""

from __future__ import annotations

import pytest

from tendermatch.crawler.parsers import ParseError, parse_document
from tests.conftest import CORPUS

FILES = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".xml", ".json", ".jsonl")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not FILES, reason=f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")
def test_every_corpus_file_parses_or_is_rejected_clearly(validator):
    parsed = rejected = 0
    for path in FILES:
        try:
            notices = parse_document(path.read_bytes(), url=path.as_uri())
        except ParseError as error:
            message = str(error)
            assert message and "\n" not in message, path
            rejected += 1
            continue
        for notice in notices:
            errors = list(validator.iter_errors({**notice.record, "sources": ["corpus"]}))
            assert not errors, f"{path}: {errors[0].message}"
        parsed += 1
    # The notices parse; what is rejected is the SDK's INVALID_* examples, code lists,
    # translations and test fragments that are not notices.
    assert parsed >= 1600 and rejected <= 30, (parsed, rejected)  # 1,618 and 23 today


@pytest.mark.skipif(not FILES, reason=f"corpus not found at {CORPUS} (set TENDERMATCH_CORPUS)")
def test_non_notice_xml_in_the_corpus_is_refused_with_its_root_element():
    validator_test = CORPUS / "eforms_national_tailoring/anskaffelser_eforms-sdk-nor/src/tests/eu/unit/EFORMS-NOR-R006.xml"
    with pytest.raises(ParseError, match="unknown root element <testSet>"):
        parse_document(validator_test.read_bytes(), url=validator_test.as_uri())
    translations = CORPUS / "eforms_sdk" / "translations" / "code_da.xml"  # declares a DTD
    with pytest.raises(ParseError, match="DTD or entity declarations"):
        parse_document(translations.read_bytes(), url=translations.as_uri())
