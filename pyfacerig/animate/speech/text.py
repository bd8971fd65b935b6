"""Transcript normalisation: what a reader says, as lower-case dictionary words.

The aligner matches words in CMUdict spelling, so the text is reduced to that: numbers are
read out ("42" -> "forty two"), a few symbols become words, punctuation goes, case folds.
Apostrophes inside words stay ("don't" is a dictionary word).
"""
from __future__ import annotations

import re
import unicodedata

from ...errors import TranscriptError

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand"))
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals ", "$": " dollars ",
            "#": " number "}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)


def number_words(value: int) -> list[str]:
    """English words for a non-negative integer: 1042 -> ["one", "thousand", "forty", "two"]."""
    if value < 20:
        return [_ONES[value]]
    if value < 100:
        tens, ones = divmod(value, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        return [_ONES[hundreds], "hundred"] + (number_words(rest) if rest else [])
    for scale, name in _SCALES:
        if value >= scale:
            high, rest = divmod(value, scale)
            return number_words(high) + [name] + (number_words(rest) if rest else [])
    raise AssertionError("unreachable")


def _ordinal_words(value: int) -> list[str]:
    words = number_words(value)
    last = words[-1]
    irregular = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                 "nine": "ninth", "twelve": "twelfth"}
    if last in irregular:
        words[-1] = irregular[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return words


def _spoken_number(token: str) -> str:
    """A digit string as spoken: grouping commas dropped, one decimal point read as "point"."""
    token = token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", token) else token
    parts = token.split(".")
    if len(parts) == 2 and parts[0] and parts[1]:
        return " ".join(number_words(int(parts[0])) + ["point"] + [_ONES[int(d)] for d in parts[1]])
    if len(token) > 15 or not token.isdigit():  # phone numbers, versions: digit by digit
        return " ".join(_ONES[int(c)] if c.isdigit() else " " for c in token)
    if len(token) == 4 and 1100 <= int(token) <= 1999 and int(token) % 100:  # years: "nineteen eighty"
        high, low = divmod(int(token), 100)
        low_words = number_words(low) if low >= 10 else ["oh"] + number_words(low)
        return " ".join(number_words(high) + low_words)
    return " ".join(number_words(int(token)))


def normalise_transcript(text) -> list[str]:
    """Lower-case words to align, in reading order.

    Raises TranscriptError if ``text`` is not a string or holds nothing speakable.
    """
    if not isinstance(text, str):
        raise TranscriptError(f"transcript must be a string, not {type(text).__name__}")
    work = text.replace("\u2019", "'").replace("\u2018", "'")
    # "cafe" for "café": the dictionary spells English words in ASCII.
    work = "".join(c for c in unicodedata.normalize("NFKD", work) if not unicodedata.combining(c))
    work = _ORDINAL.sub(lambda m: " " + " ".join(_ordinal_words(int(m.group(1)))) + " ", work)
    for symbol, words in _SYMBOLS.items():
        work = work.replace(symbol, words)
    work = _NUMBER.sub(lambda m: " " + _spoken_number(m.group(0)) + " ", work)
    work = work.lower()
    # Keep letters and word-internal apostrophes; everything else separates words.
    words = []
    for token in re.split(r"[^a-z']+", work):
        token = token.strip("'")
        if token:
            words.append(token)
    if not words:
        raise TranscriptError(f"transcript {text[:60]!r} holds no words to speak")
    return words
