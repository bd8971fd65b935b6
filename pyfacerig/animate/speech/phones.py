"""Phones: the CMU/ARPAbet set the aligner uses, and pronunciations for words it does not know.

A word missing from CMUdict (names, made-up words) gets a pronunciation from espeak-ng's
letter-to-sound rules when espeak-ng is installed (``espeak-ng -q -x``), mapped from espeak's
phoneme mnemonics to ARPAbet; without espeak-ng a small spelling-rule fallback of our own
gives a rough one.  The report says which words were guessed and how.
"""
from __future__ import annotations

import re
import shutil
import subprocess

#: The 39 CMUdict phones (no stress marks: pocketsphinx's dictionary has none).
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW "
           "V W Y Z ZH").split()
VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())

#: espeak-ng en-us phoneme mnemonic -> ARPAbet phones (docs: espeak-ng phonemes/ph_english*).
ESPEAK_TO_ARPABET = {
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M", "n": "N", "N": "NG", "l": "L",
    "r": "R", "w": "W", "j": "Y", "tS": "CH", "dZ": "JH", "t#": "T", "d#": "D", "?": "T", "x": "K",
    "C": "HH", "r-": "R", "l/": "L", "n-": "N", "m-": "M", "W": "W",
    "@": "AH", "@2": "AH", "@5": "AH", "@L": "AH L", "3": "ER", "3:": "ER", "@r": "ER", "a": "AE",
    "a#": "AH", "aa": "AE", "A:": "AA", "A": "AA", "A@": "AA R", "0": "AA", "O:": "AO", "O": "AO",
    "O@": "AO R", "o@": "AO R", "oU": "OW", "o": "OW", "OI": "OY", "aI": "AY", "aU": "AW",
    "aI@": "AY ER", "aI3": "AY ER", "aU@": "AW ER", "E": "EH", "e@": "EH R", "eI": "EY", "e": "EH",
    "i": "IY", "i:": "IY", "I": "IH", "I2": "IH", "I#": "IH", "i@": "IH R", "i@3": "IH R", "u:": "UW",
    "u": "UW", "U": "UH", "U@": "UH R", "V": "AH",
}
# espeak writes stress and syllable marks before phones; they carry no phone.
_ESPEAK_MARKS = re.compile(r"[',%=_|]")


def espeak_phoneme_to_arpabet(mnemonic: str) -> list[str]:
    """ARPAbet phones of one espeak-ng mnemonic ([] for pauses and unknown symbols)."""
    mnemonic = _ESPEAK_MARKS.sub("", mnemonic)
    if mnemonic in ESPEAK_TO_ARPABET:
        return ESPEAK_TO_ARPABET[mnemonic].split()
    if mnemonic.rstrip(":") in ESPEAK_TO_ARPABET:
        return ESPEAK_TO_ARPABET[mnemonic.rstrip(":")].split()
    return []


def espeak_pronunciation(word: str, voice: str = "en-us") -> list[str] | None:
    """ARPAbet pronunciation of ``word`` from espeak-ng's rules, or None without espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    try:
        result = subprocess.run([exe, "-q", "-x", "--sep=_", "-v", voice, word], capture_output=True,
                                text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    phones = []
    for token in re.split(r"[_\s]+", result.stdout):
        phones += espeak_phoneme_to_arpabet(token)
    return phones or None


# Spelling rules, longest match first: a rough reading of English spelling, used only when
# a word is in neither the dictionary nor espeak-ng.  Visemes forgive most errors it makes.
_SPELLING = sorted({
    "tch": "CH", "sch": "S K", "igh": "AY", "ough": "OW", "augh": "AO", "eigh": "EY", "tion": "SH AH N",
    "sion": "ZH AH N", "th": "TH", "sh": "SH", "ch": "CH", "ph": "F", "wh": "W", "ck": "K", "ng": "NG",
    "qu": "K W", "kn": "N", "wr": "R", "gh": "G", "ee": "IY", "ea": "IY", "oo": "UW", "ou": "AW",
    "ow": "OW", "oa": "OW", "oi": "OY", "oy": "OY", "ai": "EY", "ay": "EY", "au": "AO", "aw": "AO",
    "ew": "UW", "ie": "IY", "ei": "EY", "ar": "AA R", "er": "ER", "ir": "ER", "ur": "ER", "or": "AO R",
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH",
    "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R", "s": "S",
    "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "Y", "z": "Z",
}.items(), key=lambda item: -len(item[0]))


def spelling_pronunciation(word: str) -> list[str]:
    """A rough ARPAbet pronunciation from English spelling rules (greedy, longest match)."""
    word = word.lower().replace("'", "")
    if len(word) > 2 and word.endswith("e") and word[-2] not in "aeiouy":
        word = word[:-1]  # silent final e: "make" -> "mak"
    phones, index = [], 0
    while index < len(word):
        for letters, sound in _SPELLING:
            if word.startswith(letters, index):
                if letters == "y" and index > 0:
                    sound = "IY"  # "y" after the start of a word is a vowel
                phones += sound.split()
                index += len(letters)
                break
        else:
            index += 1  # a character no rule reads (digits were spelled out earlier)
    # collapse doubled letters ("ll" -> one L)
    return [p for i, p in enumerate(phones) if i == 0 or p != phones[i - 1] or p in VOWELS]
