"""Every console list as CSV and as Excel: the rows of the page, Danish column names, opened
with openpyxl as a spreadsheet user would; a formula-looking cell stays text."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from tests.web.console_client import logged_in
from tests.web.served import STAFF_USER

LISTS = ("/udbud", "/virksomheder", "/udsendelser", "/koersler", "/ikke-naaet")


@pytest.mark.parametrize("path", LISTS)
def test_each_list_downloads_as_excel_and_csv_with_the_same_rows(console, path):
    staff = logged_in(console.url, STAFF_USER)
    page = staff.get(path)
    count = int(page.text.split('<span class="count">')[1].split(" ")[0])
    workbook = staff.get(path + ".xlsx")
    assert workbook.status_code == 200
    assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert "attachment" in workbook.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == count + 1 and rows[0][0] == "Id"
    table = list(csv.reader(io.StringIO(staff.get(path + ".csv").content.decode("utf-8-sig")), delimiter=";"))
    assert len(table) == count + 1 and table[0] == [str(cell) for cell in rows[0]]


def test_the_filtered_notice_list_exports_only_its_rows_in_danish(console):
    staff = logged_in(console.url, STAFF_USER)
    sheet = openpyxl.load_workbook(io.BytesIO(staff.get("/udbud.xlsx?ordregiver=holbæk").content)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[:4] == ("Id", "Titel", "Ordregiver", "Type")
    titles = {row[1] for row in rows[1:]}
    assert titles == {"Asfaltarbejder på kommunens veje", "Snerydning og glatførebekæmpelse"}
    assert {row[3] for row in rows[1:]} == {"Udbud"}


def test_a_cell_that_looks_like_a_formula_is_kept_as_text():
    from tendermatch.web.console.export import to_csv, to_xlsx

    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx("t", ["Titel"], [["=HYPERLINK(\"x\")"]]))).active
    assert sheet["A2"].value == '=HYPERLINK("x")' and sheet["A2"].data_type == "s"
    assert "'=HYPERLINK" in to_csv(["Titel"], [["=HYPERLINK(\"x\")"]]).decode("utf-8-sig")
