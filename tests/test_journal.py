"""The evidence journal: one JSON line per exchange, on disk before the mock answers."""

from __future__ import annotations

import json
import threading

import pytest

from segur.journal import Exchange, Journal, now_iso, payload, read_journal


def exchange(mock: str = "insi", operation: str = "rechercherInsAvecTraitsIdentite", n: int = 0) -> Exchange:
    return Exchange(
        mock=mock,
        operation=operation,
        request=f"POST /lps #{n}\r\n\r\n<é/>".encode() + bytes([0, 255]),
        response=f"HTTP/1.1 200 OK #{n}\r\n\r\n".encode(),
        started=now_iso(),
        peer={"cn": "INSI-AUTO"},
        correlation={"message_id": f"uuid:{n}"},
        outcome={"code_cr": "00"},
    )


@pytest.fixture
def journal(tmp_path):
    journal = Journal(tmp_path / "evidence" / "journal.jsonl")
    yield journal
    journal.close()


def test_record_is_on_disk_when_record_returns(journal):
    record = journal.record(exchange(n=1))
    with open(journal.path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == record


def test_one_line_per_exchange_with_increasing_sequence(journal):
    for n in range(5):
        journal.record(exchange(n=n))
    lines = journal.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert journal.last_seq == 5


def test_since_returns_records_after_a_sequence_number(journal):
    for n in range(4):
        journal.record(exchange(mock="insi" if n % 2 else "dmp", n=n))
    assert [r["seq"] for r in journal.since()] == [1, 2, 3, 4]
    assert [r["seq"] for r in journal.since(2)] == [3, 4]
    assert journal.since(4) == []
    assert [r["seq"] for r in journal.since(0, mock="insi")] == [2, 4]
    assert [r["seq"] for r in journal.since(2, mock="dmp")] == [3]


def test_reading_back_gives_the_exact_raw_bytes(journal):
    sent = exchange(n=7)
    record = journal.record(sent)
    [read] = list(read_journal(journal.path))
    assert read == record
    assert payload(read, "request") == sent.request
    assert payload(read, "response") == sent.response
    assert read["mock"] == "insi"
    assert read["operation"] == "rechercherInsAvecTraitsIdentite"
    assert read["peer"] == {"cn": "INSI-AUTO"}
    assert read["correlation"] == {"message_id": "uuid:7"}
    assert read["outcome"] == {"code_cr": "00"}
    assert read["started"] <= read["recorded"]


def test_a_reopened_journal_appends(tmp_path):
    path = tmp_path / "journal.jsonl"
    first = Journal(path)
    first.record(exchange(n=1))
    first.close()
    second = Journal(path)
    second.record(exchange(n=2))
    second.close()
    assert [payload(r, "request") for r in read_journal(path)] == [exchange(n=1).request, exchange(n=2).request]


def test_concurrent_writers_never_interleave_lines(journal):
    def write(worker: int) -> None:
        for n in range(50):
            journal.record(exchange(mock=f"m{worker}", n=n))

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = list(read_journal(journal.path))
    assert len(records) == 200
    assert sorted(r["seq"] for r in records) == list(range(1, 201))
    assert [r["seq"] for r in records] == [r["seq"] for r in journal.since()]


def test_fsync_journal_writes_the_same_records(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl", fsync=True)
    record = journal.record(exchange(n=3))
    journal.close()
    assert list(read_journal(tmp_path / "journal.jsonl")) == [record]


def test_reopened_journal_continues_the_sequence(tmp_path):
    from segur.journal import Exchange, Journal, read_journal

    path = tmp_path / "journal.jsonl"
    for _ in range(2):
        journal = Journal(path)
        journal.record(Exchange(mock="insi", operation="op", request=b"a", response=b"b", started="t"))
        journal.close()
    assert [r["seq"] for r in read_journal(path)] == [1, 2]
    assert Journal(path).last_seq == 2
