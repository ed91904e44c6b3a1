"""The benchmark reports a phase it could not sample instead of crashing (issue 18,
defect 8: `bench run --quick` died with IndexError when a burst kept the tracker from
answering /api/stats during the ingest phase)."""
from __future__ import annotations

from bench import runner


class Sampler:
    """Stats samples as the bench's sampler thread records them (none by default: every
    /api/stats of the phase went unanswered)."""

    def __init__(self, rows: list[dict] | None = None) -> None:
        self.rows = rows or []

    def between(self, t0: float, t1: float) -> list[dict]:
        return [r for r in self.rows if t0 <= r["t"] <= t1]

    def latest(self, key: str = "messages") -> dict | None:
        return next((r for r in reversed(self.rows) if r.get(key) is not None), None)


class Sender:
    """The bench sender's control endpoint: its count of frames written."""

    def __init__(self) -> None:
        self.frames = 0
        self.t = 1000.0

    def mode(self, rate) -> None:
        pass

    def stats(self) -> dict:
        self.frames += 50_000
        self.t += 1.0
        return {"frames_sent": self.frames, "bytes_sent": self.frames * 300, "cpu_seconds": self.t / 100,
                "time": self.t, "exhausted": False}


def test_ingest_without_a_stats_sample_is_reported_with_the_senders_figure():
    ingest = runner.flat_out(Sampler(), Sender(), seconds=0, ramp_seconds=0)
    assert "no rate" in ingest["missing"]
    assert ingest["stats_samples"] == 0
    assert ingest["sender_frames_per_s"] == 50_000
    assert "msgs_per_s" not in ingest


def test_memory_without_samples_after_its_start_is_reported_missing():
    m0 = {"t": 10.0, "t_stats": 10.5, "cpu": 1.0, "rss": 2**30, "messages": 1000}
    assert "missing" in runner.memory_figures(m0, [], 300_000)
    assert "missing" in runner.memory_figures(m0, [m0], 300_000)
    # samples, but no message between them (the stream ran out): no trend to report either
    still = [{**m0, "t": 10.0 + i, "t_stats": 10.5 + i} for i in range(4)]
    assert "missing" in runner.memory_figures(m0, still, 300_000)


def test_memory_figures_from_samples():
    rows = [{"t": 10.0 + i, "t_stats": 10.5 + i, "cpu": 1.0 + i * 0.5, "rss": 2**30 + i * 2**20,
             "messages": 1000 + i * 40_000} for i in range(5)]
    mem = runner.memory_figures(rows[0], rows, 160_000)
    assert mem["messages"] == 160_000 and mem["msgs_per_s"] == 40_000
    assert mem["rss_slope_mb_per_million_msgs"] == 25.0
    assert "missing" not in mem


def test_the_report_says_what_is_missing():
    results = {
        "cpython_floor": {"msgs_per_s": 1, "us_per_msg": 1.0, "breakdown_us_per_msg": {
            "json_loads": 0, "parse_frame_beyond_json": 0, "book_and_continuity": 0, "aggregator": 0}},
        "targets": runner.TARGETS, "args": {"messages": 300_000}, "load_at": {"start": [1, 1, 1]},
        "start": {"missing": ["timed out after 60s waiting for first message"]},
        "ingest": {"missing": "0 stats sample(s) in the 15 s measured: no rate", "stats_samples": 0},
        "memory": {"missing": "no stats sample to start from"},
    }
    text = runner.report(results)
    assert "NO SAMPLE in the start phase: timed out after 60s waiting for first message" in text
    assert "NO SAMPLE in the ingest phase: 0 stats sample(s)" in text
    assert "NO SAMPLE in the memory phase: no stats sample to start from" in text
