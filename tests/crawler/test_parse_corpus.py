"""Every XML and JSON file of the repo's real notices and of the shared corpus through the
format-detecting dispatcher: each either gives schema-valid notices or a one-line ParseError;
nothing else escapes."""

from __future__ import annotations

import pytest

from tendermatch.crawler.parsers import ParseError, parse_document
from tests.conftest import CORPUS, SAMPLE, SMALL_CORPUS, real_notice


def notice_files(*folders) -> list:
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*")
                  if p.suffix in (".xml", ".json", ".jsonl"))


@pytest.mark.parametrize("files, at_least_parsed, at_most_rejected", [
    # tests/data/corpus and sample/notices: 95 and 16 today
    pytest.param(notice_files(SMALL_CORPUS, SAMPLE), 95, 16, id="in-repo"),
    pytest.param(notice_files(CORPUS), 1600, 30, id="corpus", marks=pytest.mark.corpus),  # 1,618 and 23 today
])
def test_every_corpus_file_parses_or_is_rejected_clearly(files, at_least_parsed, at_most_rejected, validator):
    parsed = rejected = 0
    for path in files:
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
    assert parsed >= at_least_parsed and rejected <= at_most_rejected, (parsed, rejected)


def test_non_notice_xml_in_the_corpus_is_refused_with_its_root_element():
    validator_test = real_notice(
        "eforms_national_tailoring/anskaffelser_eforms-sdk-nor/src/tests/eu/unit/EFORMS-NOR-R006.xml"
    )
    with pytest.raises(ParseError, match="unknown root element <testSet>"):
        parse_document(validator_test.read_bytes(), url=validator_test.as_uri())
    # declares a DTD, like every file of the SDK's translations (code_da.xml is 1.2 MB: not copied)
    translations = real_notice("eforms_sdk/translations/codelist_da.xml")
    with pytest.raises(ParseError, match="DTD or entity declarations"):
        parse_document(translations.read_bytes(), url=translations.as_uri())
