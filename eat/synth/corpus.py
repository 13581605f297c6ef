"""What the synthetic speakers say: phonetically varied sentences and LRW-style words.

Sentences are written for this project to cover English visemes broadly
(bilabials, labiodentals, rounded and spread vowels, open vowels), like the
TIMIT-style prompts MEAD's actors read. LRW words come with carrier phrases
so that, as in LRW, each 1.16 s clip has the word in its centre with context
speech around it.
"""

from __future__ import annotations

SENTENCES: tuple[str, ...] = (
    "She had your dark suit in greasy wash water all year.",
    "Bob moved the big blue boat past the harbour wall.",
    "Five wild foxes fought over a few fresh figs.",
    "Please bring the map before we board the plane.",
    "We were away a whole week watching the ocean waves.",
    "Father often thought of those old autumn woods.",
    "A muddy path led up the steep hill to the farm.",
    "Mom made apple pie and popped it in the oven.",
    "The choir sang cheerfully while the children played.",
    "Judge the value of each vivid photo very carefully.",
    "Open the window wide so the cool air can flow in.",
    "Our team ate lunch outside under the tall oak tree.",
    "Ice cream melts quickly on a hot summer afternoon.",
    "The quiet violin player moved through the crowd.",
    "Maybe the shop will open at nine tomorrow morning.",
    "Thin sheets of metal were piled beside the garage.",
    "Who knew the blue moon would rise so soon tonight.",
    "Every bird flew south when the weather turned cold.",
    "Paula bought pink paper and a pair of purple pens.",
    "The rough road wound around the valley and the river.",
    "My brother plays the bass in a small jazz band.",
    "Few people have seen how the bright fireworks burst.",
    "Go and fetch the yellow umbrella from the hallway.",
    "Sheep graze peacefully on the green rolling meadow.",
)

LRW_WORDS: tuple[str, ...] = (
    "ABOUT", "BECAUSE", "MOMENT", "PEOPLE", "WOMEN", "FAMILY", "THOUGHT", "SOUTH",
    "BUSINESS", "WEATHER", "MAJOR", "POLICE", "ABSOLUTELY", "CHILDREN", "EVERYBODY", "QUESTION",
)

_LRW_CARRIERS: tuple[str, ...] = (
    "and I said {w} again",
    "we talk {w} every day",
    "so then {w} came up",
    "they heard {w} on the news",
)


def lrw_phrase(word: str, variant: int) -> str:
    """A short phrase with ``word`` (lower case) in the middle, e.g. 'we talk moment every day'."""
    return _LRW_CARRIERS[variant % len(_LRW_CARRIERS)].format(w=word.lower())
