"""The console's pages as a staff user sees them in headless Chromium: Danish words and
times, this week's numbers, a search, a notice's "who was told, when and why" with the
Danish reasons the enterprise read, an enterprise's digests, the lists failures first, the
municipality's own open tenders that reached no one; English by the switch; bad input is a
Danish 400 page, never a 500."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.web.console_client import logged_in
from tests.web.served import STAFF_USER, USER_PASSWORD

pytestmark = pytest.mark.slow

DANISH_TIME = re.compile(r"(mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag) \d{1,2}\. "
                         r"(januar|februar|marts|april|maj|juni|juli|august|september|oktober|november|december)"
                         r" \d{4} kl\. \d{2}\.\d{2}")


@pytest.fixture
def staff(console, browser):
    browser.log_in(console.url, STAFF_USER, USER_PASSWORD)
    assert browser.url() == console.url + "/"
    return browser


def test_the_overview_shows_this_weeks_numbers_and_each_sources_crawl(console, staff):
    staff.open(console.url + "/")
    assert staff.text("h1") == "Oversigt"
    assert int(staff.text("#n-new")) >= 8  # five tenders and three agreements crawled this week
    assert int(staff.text("#n-sent")) >= 2 and staff.text("#n-failed") == "0"
    sources = staff.text("#sources")
    assert "sjaelland" in sources and "kk-aftaler" in sources and "OK" in sources
    assert DANISH_TIME.search(sources), sources


def test_a_search_finds_the_notice_and_its_page_says_who_was_told_when_and_why(console, staff):
    staff.open(console.url + "/udbud")
    staff.fill("#q", "kantinedrift")
    staff.submit("form.filters")
    rows = staff.text("#notices")
    assert "Kantinedrift og frokostordning på rådhuset" in rows and "Levering af kontorartikler" not in rows
    staff.evaluate("document.querySelector('#notices a').click()")
    staff._wait_for_load()
    assert staff.text("h1") == "Kantinedrift og frokostordning på rådhuset"
    facts = staff.text("dl.facts")
    assert "Frederiksberg Kommune" in facts and DANISH_TIME.search(facts), facts
    told = staff.text("#recipients")
    assert "Måltidsværkstedet" in told and "@maaltidsvaerkstedet.example" in told
    assert "Sendt" in told and DANISH_TIME.search(told)
    assert "Jeres søgeord" in told or "CPV" in told, told  # the Danish reasons the digest gave


def test_the_filters_narrow_the_list_and_each_combination_answers(console):
    client = logged_in(console.url, STAFF_USER)
    everything = client.get("/udbud").text
    assert "Asfaltarbejder på kommunens veje" in everything and "Vagtordning i kommunale bygninger" in everything
    agreements = client.get("/udbud?type=agreement").text
    assert "Vagtordning i kommunale bygninger" in agreements and "Asfaltarbejder" not in agreements
    holbaek = client.get("/udbud?ordregiver=holbæk").text
    assert "Asfaltarbejder" in holbaek and "Snerydning" in holbaek and "Kantinedrift" not in holbaek
    reached = client.get("/udbud?naaet=ja").text
    assert "Kantinedrift og frokostordning" in reached and "Asfaltarbejder" not in reached
    assert "Asfaltarbejder" in client.get("/udbud?naaet=nej").text
    assert client.get("/udbud?frist_fra=2000-01-01&frist_til=2000-01-02").text.count("/udbud/") == 0
    assert client.get("/udbud?fase=competition&omraade=DK&sortering=frist&side=1").status_code == 200


def test_an_enterprise_page_shows_its_profile_in_words_and_what_we_sent_and_why(console, staff):
    staff.open(console.url + "/virksomheder")
    assert "Måltidsværkstedet" in staff.text("#enterprises")
    staff.open(console.url + "/virksomheder/maaltidsvaerkstedet?maaneder=3")
    assert staff.text("h1") == "Måltidsværkstedet"
    assert "vil høre om udbud om" in staff.text(".profile-words")
    sent = staff.text("main")
    assert "Hvad vi har sendt (seneste 3 måneder)" in sent
    assert "Kantinedrift og frokostordning på rådhuset" in sent and "@maaltidsvaerkstedet.example" in sent


def test_deliveries_and_runs_list_failures_first_with_the_servers_answer(console, staff):
    staff.open(console.url + "/udsendelser")
    assert "Sendt" in staff.text("#deliveries") and DANISH_TIME.search(staff.text("#deliveries"))
    staff.open(console.url + "/koersler")
    runs = staff.text("#runs")
    assert "Indsamling" in runs and "Matchning" in runs and "Udsendelse" in runs


def test_not_reached_lists_the_own_buyers_open_tenders_that_reached_no_one(console, staff):
    staff.open(console.url + "/ikke-naaet")
    listed = staff.text("#unreached")
    assert "Asfaltarbejder på kommunens veje" in listed  # Holbæk's, open, matched by no one
    assert "Snerydning" not in listed  # closed
    assert "Erhvervsrengøring" not in listed and "Kantinedrift" not in listed  # not own buyers / reached
    assert "Holbæk Kommune" in staff.text("main")


def test_the_language_switch_shows_the_console_in_english_and_back(console, staff):
    staff.open(console.url + "/udbud")
    staff.evaluate("document.querySelector('a[lang=en]').click()")
    staff._wait_for_load()
    assert staff.url() == console.url + "/udbud" and staff.text("h1") == "Notices"
    staff.open(console.url + "/")
    assert "Overview" in staff.text("h1")
    staff.evaluate("document.querySelector('a[lang=da]').click()")
    staff._wait_for_load()
    assert staff.text("h1") == "Oversigt"


BAD_PARAMETERS = ("/udbud?frist_fra=2025-13-01", "/udbud?frist_til=i+morgen", "/udbud?side=0", "/udbud?side=99999",
                  "/udbud?side=-1", "/udbud?q=ab", "/udbud?type=%00", "/udbud?fase=x", "/udbud?naaet=måske",
                  "/udbud?omraade=%27%3B--", "/udbud?q=" + "x" * 300, "/virksomheder?side=abc",
                  "/virksomheder/maaltidsvaerkstedet?maaneder=9999", "/udsendelser?uge=49",
                  "/udsendelser?tilstand=sendt", "/koersler?job=drop", "/koersler?resultat=%ff",
                  "/udbud?%ff=1", "/sprog?til=fr")


@pytest.mark.parametrize("path", BAD_PARAMETERS)
def test_bad_input_gets_a_danish_400_page(console, path):
    answer = logged_in(console.url, STAFF_USER).get(path)
    assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
    assert "Ugyldig forespørgsel" in answer.text and 'lang="da"' in answer.text


ODD_INPUT = ('/udbud?q="', "/udbud?q=\"'<script>alert(1)</script>", "/udbud?q=NEAR(a b)", "/udbud?q=a*b* OR",
             "/udbud?ordregiver=%25%25%25_", "/udbud/" + quote("<b>x</b>", safe=""), "/virksomheder/%2e%2e",
             "/virksomheder?q=" + quote("'; DROP TABLE users; --"), "/udbud?omraade=dk011", "/ikke-naaet?side=1")


@pytest.mark.parametrize("path", ODD_INPUT)
def test_odd_input_never_gives_a_500_and_is_escaped(console, path):
    answer = logged_in(console.url, STAFF_USER).get(path)
    assert answer.status_code in (200, 400, 404), (path, answer.status_code, answer.text[:300])
    assert "<script>alert" not in answer.text and "<b>x</b>" not in answer.text
