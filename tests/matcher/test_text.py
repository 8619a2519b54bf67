"""Danish-aware text folding and the one word-matching rule (``text.word_quality``)."""

from __future__ import annotations

import pytest

from tendermatch.matcher.text import (
    EXACT,
    INSIDE,
    PREFIX,
    STEM,
    TYPO,
    content_words,
    fold,
    is_generic,
    stem,
    word_quality,
    words,
)


def quality(word: str, token: str) -> float:
    """Both sides folded, as the matcher does."""
    return word_quality(fold(word), fold(token))


# -- folding -------------------------------------------------------------------------------


def test_danish_letters_are_spelled_out_and_case_dropped():
    assert fold("KØKKEN") == fold("køkken") == "koekken"
    assert fold("Måltider") == "maaltider"
    assert fold("Ærø") == "aeroe"
    assert fold("ÆØÅ æøå") == "aeoeaa aeoeaa"
    # the spelled-out forms meet the letters ("koekken" is how some systems write it)
    assert fold("Køkkenassistent") == fold("Koekkenassistent")


def test_other_accents_are_dropped_and_punctuation_becomes_space():
    assert fold("Café, crèche & naïve") == "cafe creche naive"
    assert fold("Straße") == "strasse"
    assert words("Kantine- og rengøringsservice (Amagerværket)/Vejlandshuset.") == [
        "kantine", "og", "rengoeringsservice", "amagervaerket", "vejlandshuset"]
    assert words(None) == [] and words("") == []
    assert words("  —  ") == []


def test_any_character_folds_to_letters_or_a_space_and_never_fails():
    # Crawled text can hold anything: controls, a lone surrogate from a broken decoder,
    # combining marks, emoji. Each costs only itself.
    assert words("Kantine\x00drift\ud800 \u0301\x7f") == ["kantine", "drift"]
    assert fold("İstanbul ǄUNGLA ﬁnance") == "istanbul dzungla finance"
    assert words("日本語") == ["ribenyu"] and words("\U0001F600") == ["grinning"]


def test_content_words_drop_stopwords_one_letters_and_repeats():
    assert content_words("Levering af mad til borgere i Rødovre og mad til skoler") == [
        "levering", "mad", "borgere", "roedovre", "skoler"]
    assert content_words("the supply of a canteen for the staff") == ["supply", "canteen", "staff"]


def test_generic_words():
    for word in ("service", "levering", "ydelser", "drift", "udbud", "rammeaftale", "supplies", "og"):
        assert is_generic(fold(word)), word
    for word in ("kantine", "rengøring", "vinduespudsning", "catering", "mentor"):
        assert not is_generic(fold(word)), word


# -- one word against one token -------------------------------------------------------------


def test_same_word_is_exact_whatever_the_spelling_of_the_letters():
    assert quality("rengøring", "RENGØRING") == EXACT
    assert quality("rengøring", "rengoering") == EXACT
    assert quality("mad", "mad") == EXACT


@pytest.mark.parametrize("word, token", [
    ("kantine", "kantinedriften"),  # compound + definite inflection
    ("kantine", "kantiner"),  # plural
    ("kantinedrift", "kantinedriften"),
    ("rengøring", "rengøringsopgaver"),  # compound with the linking -s-
    ("skolemad", "skolemadsordning"),
    ("frokostordning", "frokostordninger"),
])
def test_a_word_starting_a_compound_or_inflection_matches(word, token):
    assert quality(word, token) == PREFIX


@pytest.mark.parametrize("word, token", [
    ("pudsning", "vinduespudsning"),  # the word ends a compound
    ("rengøring", "erhvervsrengøring"),
    ("pleje", "hjemmepleje"),
])
def test_a_word_ending_a_compound_matches_a_little_less_than_one_starting_it(word, token):
    assert quality(word, token) == INSIDE
    assert 0 < quality(word, token) < quality(word, word + "en")


def test_a_word_matches_through_its_stem():
    # "vinduer" (windows) is not in "vinduespolering", its stem is
    assert quality("vinduer", "vinduespolering") == STEM
    assert "vinduer".startswith(stem("vinduer")) and stem("vinduer") != "vinduer"
    assert stem("mad") is None  # too short to have a stem


def test_ranking_of_match_kinds():
    assert EXACT > PREFIX > INSIDE >= STEM > TYPO > 0


def test_one_typo_is_tolerated_in_a_longer_word():
    assert quality("kantinedrift", "kantindrift") == TYPO  # one letter missing
    assert quality("kantinedrift", "kantimedrift") == TYPO  # one letter wrong
    assert quality("rengøring", "rengøing") > 0
    assert quality("vinduespudsning", "vinduespudsnig") > 0


def test_words_under_nine_letters_tolerate_no_typo():
    # one letter apart is another word at this length: painting / printing, linen / linet
    assert quality("painting", "printing") == 0
    assert quality("kantine", "kantne") == 0


def test_two_typos_are_not_a_match():
    assert quality("kantine", "kamtne") == 0
    assert quality("catering", "katerimg") == 0
    # two letters from another word is another word, however long
    assert quality("budservice", "madservice") == 0
    assert quality("messenger", "passenger") == 0
    assert quality("mentoring", "monitoring") == 0


@pytest.mark.parametrize("word, token", [("tryk", "tryg"), ("mad", "mat"), ("vask", "vest"), ("post", "pest")])
def test_short_words_tolerate_no_typo(word, token):
    assert quality(word, token) == 0


@pytest.mark.parametrize("word, token", [
    ("mad", "madras"),  # a mattress is not food
    ("mad", "smadre"),
    ("bud", "budget"),
    ("vask", "ovask"),  # four letters: prefix only, never inside
])
def test_short_words_are_not_found_inside_other_words(word, token):
    assert quality(word, token) == 0


def test_a_short_word_still_matches_itself_in_a_text():
    assert "mad" in words("Levering af mad ud af huset")
    assert quality("mad", "mad") == EXACT


def test_unrelated_words_do_not_match():
    assert quality("kantine", "rengøring") == 0
    assert quality("vinduespudsning", "pudsning") == 0  # the longer word is not inside the shorter
