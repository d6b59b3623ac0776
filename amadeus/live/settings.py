"""The live settings, declared once: their defaults, and the range a client may set each to.
The engine plays by them, the protocol checks a client's changes against them, play.py takes its
flags' defaults from them, and the page learns them from the `welcome` message."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from amadeus.generate.sampling import DEFAULT_TEMPERATURE, DEFAULT_TOP_P

FLAG = None  # the range of a setting that is true or false


def _client(default, bounds: tuple[float, float] | None):
    """A setting a client may change, within `bounds` (FLAG: true or false)."""
    return field(default=default, metadata={"client": bounds})


@dataclass(frozen=True)
class LiveSettings:
    silence: float = _client(0.8, (0.2, 5.0))  # seconds with every key and the pedal up: the end
    answer_seconds: float | None = _client(None, (0.5, 60.0))  # None: as long as the phrase
    shortest: float = 2.0  # seconds: the clamp of an answer as long as the phrase
    longest: float = 12.0
    temperature: float = _client(DEFAULT_TEMPERATURE, (0.05, 3.0))
    top_p: float = DEFAULT_TOP_P
    conditioning: bool = _client(True, FLAG)  # the answer gets the phrase's keys and density
    phrase_keys: float = 0.5  # the share of the answer's pitch-class control that is the
    # phrase's; the rest is even over the twelve. Held wholly, answers kept the phrase's keys
    # more than the composer did (README, "Answers measured as answers")
    release: float = _client(1.0, (0.1, 5.0))  # seconds a note may ring past the answer's end
    lookahead: float = 0.5  # seconds of answer sampled ahead of playback
    start_delay: float = 0.1  # seconds from the hand-over to the answer's time zero
    min_lead: float = 0.05  # seconds a note goes out ahead of its time; a later one moves the
    # answer's timeline (the rest of the answer comes later, its spacing kept): never a burst


# The model in the page (the static site) sends its notes to the page's own thread, which a
# phone-class CPU holds for up to about 80 ms at a time (long frames measured with DevTools' 4x
# throttle; a note sent 50 ms ahead reached the page 0.3-1.4 ms after its time there). So its
# notes go out twice as far ahead, and its answers start later by as much, rather than move.
IN_PAGE = {"start_delay": 0.15, "min_lead": 0.1}

# name: (low, high) of a number, or FLAG: the settings a "settings" message may change.
CLIENT_RANGES = {
    f.name: f.metadata["client"] for f in fields(LiveSettings) if "client" in f.metadata
}
NULLABLE = {"answer_seconds"}  # null: the default rule (as long as the phrase)
