"""Augmentations for tokenized text: batches are ``list[list[str]]`` and stay python lists.

The four EDA operations (swap, deletion, insertion, synonym replacement) and back
translation through a user-supplied function (no translation model ships with reglab).
Synonyms come from a user dictionary ``{word: [synonyms]}`` instead of WordNet, so nothing
is downloaded. ``generator`` may be a ``random.Random`` or a ``torch.Generator`` (one seed
is drawn from it for a ``random.Random``); labels pass through unchanged.

References:
    Wei & Zou, "EDA: easy data augmentation techniques for boosting performance on text
    classification tasks", EMNLP 2019. Sennrich et al., "Improving neural machine
    translation models with monolingual data", ACL 2016 (back translation).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from reglab._validation import Interval, check_generator, check_int, check_scalar, fail

__all__ = ["RandomSwap", "RandomDeletion", "RandomInsertion", "SynonymReplacement", "BackTranslation"]

Tokens = list[str]


def _rng(generator: random.Random | torch.Generator, owner: str) -> random.Random:
    check_generator(generator, owner, allow_random=True, required=True)
    if isinstance(generator, random.Random):
        return generator
    # Drawn on the generator's device (a Trainer's is on the training device, CUDA there).
    return random.Random(int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device)))


def _check_tokens(batch: Any, owner: str) -> list[Tokens]:
    ok = isinstance(batch, Sequence) and not isinstance(batch, str)
    ok = ok and all(isinstance(s, Sequence) and not isinstance(s, str) for s in batch)
    if not ok or not all(isinstance(t, str) for s in batch for t in s):
        raise fail(owner, "x", "a list of token lists (list[list[str]])", batch)
    return [list(s) for s in batch]


def _check_synonyms(synonyms: Any, owner: str) -> dict[str, list[str]]:
    def ok(k: Any, v: Any) -> bool:
        words = isinstance(v, Sequence) and not isinstance(v, str) and all(isinstance(w, str) for w in v)
        return isinstance(k, str) and words

    if not isinstance(synonyms, Mapping) or not all(ok(k, v) for k, v in synonyms.items()):
        raise fail(owner, "synonyms", "a dict mapping each word to a list of synonyms", synonyms)
    return {k: list(v) for k, v in synonyms.items() if v}


class RandomSwap:
    """Swap two random positions of each sentence, ``n`` times (EDA "random swap").

    Example:
        >>> x, _ = RandomSwap(1)([["a", "b"]], [0], generator=random.Random(0))
        >>> x
        [['b', 'a']]
    """

    def __init__(self, n: int = 1):
        self.n = check_int(n, "n", owner="RandomSwap", interval=Interval(0, None))

    def __call__(self, x: list[Tokens], y, *, generator):
        rng = _rng(generator, "RandomSwap")
        out = _check_tokens(x, "RandomSwap")
        for tokens in out:
            if len(tokens) < 2:
                continue
            for _ in range(self.n):
                i, j = rng.sample(range(len(tokens)), 2)
                tokens[i], tokens[j] = tokens[j], tokens[i]
        return out, y

    def __repr__(self) -> str:
        return f"RandomSwap(n={self.n})"


class RandomDeletion:
    """Delete each token with probability ``p``; a sentence never becomes empty (one random token stays).

    Example:
        >>> RandomDeletion(0.0)([["a", "b"]], None, generator=random.Random(0))[0]
        [['a', 'b']]
    """

    def __init__(self, p: float = 0.1):
        self.p = check_scalar(p, "p", owner="RandomDeletion", interval=Interval(0, 1))

    def __call__(self, x: list[Tokens], y, *, generator):
        rng = _rng(generator, "RandomDeletion")
        out = []
        for tokens in _check_tokens(x, "RandomDeletion"):
            kept = [t for t in tokens if rng.random() >= self.p]
            out.append(kept if kept or not tokens else [rng.choice(tokens)])
        return out, y

    def __repr__(self) -> str:
        return f"RandomDeletion(p={self.p})"


class RandomInsertion:
    """Insert a synonym of a random word (one that has synonyms) at a random position, ``n`` times.

    Sentences without any word in ``synonyms`` are left unchanged.

    Example:
        >>> t = RandomInsertion(1, {"big": ["large"]})
        >>> t([["a", "big", "dog"]], None, generator=random.Random(0))[0][0].count("large")
        1
    """

    def __init__(self, n: int = 1, synonyms: Mapping[str, Sequence[str]] | None = None):
        self.n = check_int(n, "n", owner="RandomInsertion", interval=Interval(0, None))
        self.synonyms = _check_synonyms(synonyms if synonyms is not None else {}, "RandomInsertion")

    def __call__(self, x: list[Tokens], y, *, generator):
        rng = _rng(generator, "RandomInsertion")
        out = _check_tokens(x, "RandomInsertion")
        for tokens in out:
            for _ in range(self.n):
                candidates = [t for t in tokens if t in self.synonyms]
                if not candidates:
                    break
                word = rng.choice(self.synonyms[rng.choice(candidates)])
                tokens.insert(rng.randint(0, len(tokens)), word)
        return out, y

    def __repr__(self) -> str:
        return f"RandomInsertion(n={self.n}, synonyms=<{len(self.synonyms)} words>)"


class SynonymReplacement:
    """Replace up to ``n`` distinct words that have synonyms by a random synonym each.

    Example:
        >>> t = SynonymReplacement({"big": ["large"]}, n=1)
        >>> t([["a", "big", "dog"]], None, generator=random.Random(0))[0]
        [['a', 'large', 'dog']]
    """

    def __init__(self, synonyms: Mapping[str, Sequence[str]], n: int = 1):
        self.synonyms = _check_synonyms(synonyms, "SynonymReplacement")
        self.n = check_int(n, "n", owner="SynonymReplacement", interval=Interval(0, None))

    def __call__(self, x: list[Tokens], y, *, generator):
        rng = _rng(generator, "SynonymReplacement")
        out = _check_tokens(x, "SynonymReplacement")
        for tokens in out:
            words = sorted({t for t in tokens if t in self.synonyms})
            for word in rng.sample(words, min(self.n, len(words))):
                new = rng.choice(self.synonyms[word])
                tokens[:] = [new if t == word else t for t in tokens]
        return out, y

    def __repr__(self) -> str:
        return f"SynonymReplacement(synonyms=<{len(self.synonyms)} words>, n={self.n})"


class BackTranslation:
    """Paraphrase sentences through a user translation round trip, each with probability ``p``.

    Args:
        translate: maps a list of token lists to a list of the same length (e.g. English ->
            German -> English with any MT model); it is called once per batch with the chosen
            sentences.
        p: probability that a sentence is replaced by its round trip.

    Example:
        >>> t = BackTranslation(lambda batch: [list(reversed(s)) for s in batch])
        >>> t([["a", "b"]], None, generator=random.Random(0))[0]
        [['b', 'a']]
    """

    def __init__(self, translate: Callable[[list[Tokens]], list[Tokens]], p: float = 1.0):
        if not callable(translate):
            allowed = "a callable list[list[str]] -> list[list[str]]"
            raise fail("BackTranslation", "translate", allowed, translate)
        self.translate = translate
        self.p = check_scalar(p, "p", owner="BackTranslation", interval=Interval(0, 1))

    def __call__(self, x: list[Tokens], y, *, generator):
        rng = _rng(generator, "BackTranslation")
        out = _check_tokens(x, "BackTranslation")
        chosen = [i for i in range(len(out)) if rng.random() < self.p]
        if not chosen:
            return out, y
        translated = self.translate([out[i] for i in chosen])
        if not isinstance(translated, Sequence) or len(translated) != len(chosen):
            got = f"{len(translated)} items" if isinstance(translated, Sequence) else translated
            raise fail("BackTranslation", "translate", f"a function returning {len(chosen)} token lists", got)
        for i, sentence in zip(chosen, _check_tokens(translated, "BackTranslation")):
            out[i] = sentence
        return out, y

    def __repr__(self) -> str:
        name = getattr(self.translate, "__name__", type(self.translate).__name__)
        return f"BackTranslation(translate={name}, p={self.p})"

