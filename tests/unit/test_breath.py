"""The feed socket's message handler (runtime/breath.py): every frame reaches the tracker,
in order, and the object is let in (`breathe`) once every N frames of a burst."""
from __future__ import annotations

from runtime.breath import paced_handler


class Event:
    def __init__(self, data):
        self.data = data


def _burst(frames: int, every: int, with_breath: bool = True):
    """Feed `frames` events through the handler; return what the tracker saw and, for each
    breath, how many frames had been handled when it came."""
    seen: list[str] = []
    breaths: list[int] = []
    handler = paced_handler(seen.append, lambda evt: evt.data,
                            (lambda: breaths.append(len(seen))) if with_breath else None, every)
    for i in range(frames):
        handler(Event(f"frame {i}"))
    return seen, breaths


def test_every_frame_in_order_and_a_breath_after_each_nth():
    seen, breaths = _burst(1000, every=256)
    assert seen == [f"frame {i}" for i in range(1000)]
    # after the frame that completes each 256, never before it is handled
    assert breaths == [256, 512, 768]


def test_no_breath_without_a_breathe_or_with_every_zero():
    seen, breaths = _burst(600, every=256, with_breath=False)
    assert seen == [f"frame {i}" for i in range(600)] and breaths == []
    seen, breaths = _burst(600, every=0)
    assert seen == [f"frame {i}" for i in range(600)] and breaths == []


def test_a_frame_that_raises_does_not_shift_the_count():
    """The tracker's on_frame counts and skips bad frames itself; if it ever raised, the
    exception reaches the socket's error path and the next frames still breathe on time."""
    seen: list[str] = []
    breaths: list[int] = []

    def on_frame(data: str) -> None:
        if data == "bad":
            raise ValueError(data)
        seen.append(data)

    handler = paced_handler(on_frame, lambda evt: evt.data, lambda: breaths.append(len(seen)), 3)
    for data in ("a", "bad", "b", "c", "d", "e"):
        try:
            handler(Event(data))
        except ValueError:
            pass
    assert seen == ["a", "b", "c", "d", "e"]
    assert breaths == [3]
