"""Which files a `files` source covers: a folder, a single file, a glob, a file:// URL."""

from __future__ import annotations

from tendermatch.crawler.spiders.files import notice_files


def test_folder_file_glob_and_file_url(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/one.xml", "a/two.json", "a/notes.txt", "a/.hidden.xml", "three.jsonl"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in notice_files(str(tmp_path / "a"))] == ["one.xml", "two.json"]
    assert [p.name for p in notice_files(str(tmp_path / "a" / "one.xml"))] == ["one.xml"]
    assert [p.name for p in notice_files(str(tmp_path / "**" / "*.json*"))] == ["two.json", "three.jsonl"]
    assert [p.name for p in notice_files((tmp_path / "a").as_uri())] == ["one.xml", "two.json"]
    assert notice_files(str(tmp_path / "nothing-*.xml")) == []
