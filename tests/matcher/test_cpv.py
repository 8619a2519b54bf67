"""CPV codes: how close a notice's code is to a profile's, and their labels."""

from __future__ import annotations

from tendermatch.matcher.cpv import best_cpv_relation, branch, cpv_label, cpv_relation


def relation(profile_code: str, code: str) -> str:
    return cpv_relation(profile_code, code)[1]


def points(profile_code: str, code: str) -> int:
    return cpv_relation(profile_code, code)[0]


def test_branch_is_the_code_without_trailing_zeros_but_at_least_the_division():
    assert branch("55500000") == "555"
    assert branch("55512000") == "55512"
    assert branch("03000000") == "03"
    assert branch("90911200") == "909112"


def test_exact_code():
    assert cpv_relation("55512000", "55512000") == (points("55512000", "55512000"), "exact")
    assert points("55512000", "55512000") > 0


def test_within_when_the_profile_code_is_an_ancestor():
    # 55500000 Canteen and catering services covers 55512000 Canteen management services
    assert relation("55500000", "55512000") == "within"
    assert relation("55500000", "55524000") == "within"
    assert relation("90919000", "90919300") == "within"
    assert relation("03000000", "03100000") == "within"  # a division with a leading zero
    assert 0 < points("55500000", "55512000") < points("55512000", "55512000")


def test_broader_when_the_notice_code_covers_the_profile_code():
    assert relation("55512000", "55500000") == "broader"
    assert relation("55512000", "55000000") == "broader"
    assert relation("90911000", "90910000") == "broader"
    # a notice coded only "55000000 hotel, restaurant and retail trade" says less than
    # one coded "55500000 canteen and catering"
    assert points("55512000", "55500000") > points("55512000", "55000000") > 0
    assert points("55512000", "55500000") < points("55500000", "55512000")  # within beats broader


def test_related_codes_earn_more_the_more_leading_digits_they_share():
    profile = "55521100"  # Meals-on-wheels services
    assert relation(profile, "55521200") == "related"  # 5 digits: 55521
    assert relation(profile, "55524000") == "related"  # 4 digits: 5552
    assert relation(profile, "55510000") == "related"  # 3 digits: 555
    assert relation(profile, "55300000") == "related"  # 2 digits: 55
    assert (points(profile, "55521200") > points(profile, "55524000") > points(profile, "55510000")
            > points(profile, "55300000") > 0)
    assert points(profile, "55521200") < points("55500000", "55521200")  # within beats any relative


def test_unrelated_codes_give_nothing():
    assert cpv_relation("55521100", "90911000") == (0, "")
    assert cpv_relation("90911000", "09100000") == (0, "")  # same digits, other order
    assert cpv_relation("45000000", "54000000") == (0, "")


def test_best_relation_of_several_codes():
    found = best_cpv_relation(("90911000", "55500000"), ("98310000", "55512000", "55300000"))
    assert found[1:] == ("within", "55500000", "55512000")
    assert best_cpv_relation(("90911000",), ("55512000",)) == (0, "", "", "")
    assert best_cpv_relation((), ("55512000",))[0] == 0


def test_labels_in_english_and_danish():
    assert cpv_label("55512000", "en") == "Canteen management services"
    assert cpv_label("55512000", "da") == "Drift af kantiner"
    assert cpv_label("55512000") == cpv_label("55512000", "en")
    assert "rengøring" in cpv_label("90911200", "da").lower()
    assert "cleaning" in cpv_label("90911200", "en").lower()
    assert "vask" in cpv_label("98310000", "da").lower()
    assert cpv_label("99999999") == "" and cpv_label("99999999", "da") == ""
