"""The whole command's progress line: runs done of all, and time left from the work left."""

import sys

from bench import progress
from bench.progress import Overall


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_time_left_comes_from_the_work_left(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    overall = Overall({"small": 100.0, "big": 300.0, "last": 200.0})  # work: epochs x training examples
    clock.now += 60
    overall.finished("small")  # 100 units in 60 s: the 500 left take 300 s
    clock.now += 180
    overall.finished("big")  # 400 units in 240 s: the 200 left take 120 s
    clock.now += 125
    overall.finished("last")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("| ", 1)[1] for line in lines] == ["1 of 3 runs done, 1m00s, about 5m00s left",
                                                          "2 of 3 runs done, 4m00s, about 2m00s left",
                                                          "3 of 3 runs done, 6m05s"]
    bars = [line.split("|")[1] for line in lines]  # the work done: 1/6, 4/6, all of it
    assert [len(b) for b in bars] == [progress.BAR - 2] * 3 and bars[-1] == "█" * (progress.BAR - 2)
    assert bars[0].count("█") < bars[1].count("█") < bars[2].count("█")


def test_quiet_off_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    overall = Overall({"a": 1.0})
    overall.finished("a")
    assert capsys.readouterr().err == ""
