import random
from collections import Counter

import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import BackTranslation, RandomDeletion, RandomInsertion, RandomSwap, SynonymReplacement

SENTENCES = [["the", "big", "dog", "ran", "fast"], ["a", "quick", "cat"], ["solo"]]
SYNONYMS = {"big": ["large", "huge"], "fast": ["quickly"], "quick": ["rapid"]}


def test_swap_keeps_tokens_and_changes_order():
    out, y = RandomSwap(2)(SENTENCES, [0, 1, 2], generator=random.Random(0))
    assert y == [0, 1, 2]
    assert all(Counter(a) == Counter(b) for a, b in zip(out, SENTENCES))
    assert out[2] == ["solo"] and out != SENTENCES
    assert SENTENCES[0] == ["the", "big", "dog", "ran", "fast"]  # input untouched


def test_deletion_rate_and_never_empty():
    assert RandomDeletion(0.0)(SENTENCES, None, generator=random.Random(0))[0] == SENTENCES
    everything, _ = RandomDeletion(1.0)(SENTENCES, None, generator=random.Random(0))
    assert all(len(s) == 1 and s[0] in orig for s, orig in zip(everything, SENTENCES))
    long = [[str(i) for i in range(2000)]]
    kept, _ = RandomDeletion(0.3)(long, None, generator=random.Random(1))
    assert abs(len(kept[0]) / 2000 - 0.7) < 5 * (0.21 / 2000) ** 0.5  # binomial, 5 standard errors
    assert kept[0] == sorted(kept[0], key=int)  # order of the survivors kept


def test_insertion_adds_synonyms_of_present_words():
    out, _ = RandomInsertion(2, SYNONYMS)(SENTENCES, None, generator=random.Random(0))
    assert len(out[0]) == 7 and len(out[1]) == 5 and out[2] == ["solo"]
    added0 = Counter(out[0]) - Counter(SENTENCES[0])
    assert sum(added0.values()) == 2 and set(added0) <= {"large", "huge", "quickly"}
    assert set(Counter(out[1]) - Counter(SENTENCES[1])) == {"rapid"}


def test_synonym_replacement():
    out, _ = SynonymReplacement(SYNONYMS, n=1)(SENTENCES, None, generator=random.Random(0))
    changed = [i for i, (a, b) in enumerate(zip(out[0], SENTENCES[0])) if a != b]
    assert len(changed) == 1 and out[0][changed[0]] in SYNONYMS[SENTENCES[0][changed[0]]]
    all_out, _ = SynonymReplacement(SYNONYMS, n=5)(SENTENCES, None, generator=random.Random(0))
    assert all_out[0][1] in ("large", "huge") and all_out[0][4] == "quickly" and all_out[1][1] == "rapid"


def test_back_translation_calls_user_function_once():
    calls = []

    def round_trip(batch):
        calls.append(len(batch))
        return [[w.upper() for w in s] for s in batch]

    out, _ = BackTranslation(round_trip)(SENTENCES, None, generator=random.Random(0))
    assert out == [[w.upper() for w in s] for s in SENTENCES] and calls == [3]
    untouched, _ = BackTranslation(round_trip, p=0.0)(SENTENCES, None, generator=random.Random(0))
    assert untouched == SENTENCES and calls == [3]
    expected = "'translate' parameter of BackTranslation must be a function returning 3 token lists. Got '1"
    with pytest.raises(InvalidParameterError, match=expected):
        BackTranslation(lambda b: b[:1])(SENTENCES, None, generator=random.Random(0))


def test_torch_generator_is_seeded():
    t = RandomSwap(3)
    a = t(SENTENCES, None, generator=torch.Generator().manual_seed(5))[0]
    b = t(SENTENCES, None, generator=torch.Generator().manual_seed(5))[0]
    outs = {str(t(SENTENCES, None, generator=torch.Generator().manual_seed(s))[0]) for s in range(10)}
    assert a == b and len(outs) > 1


def test_text_errors():
    expected = r"'x' parameter of RandomSwap must be a list of token lists"
    with pytest.raises(InvalidParameterError, match=expected):
        RandomSwap(1)(["not", "nested"], None, generator=random.Random(0))
    expected = "'synonyms' parameter of SynonymReplacement must be a dict"
    with pytest.raises(InvalidParameterError, match=expected):
        SynonymReplacement({"big": "large"})
    expected = "'generator' parameter of RandomDeletion must be a torch.Generator or random.Random"
    with pytest.raises(InvalidParameterError, match=expected):
        RandomDeletion(0.1)(SENTENCES, None, generator=3)
