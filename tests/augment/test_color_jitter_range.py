"""ColorJitter on images outside [0, 1]: kornia clips them, so they are refused in one line."""

from __future__ import annotations

import kornia.augmentation as K
import pytest
import torch

from reglab._validation import InvalidParameterError
from reglab.augment import ColorJitter


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_kornia_clips_the_jittered_images_to_0_1():
    # Why: standardized digits (mean 0, std 1) lost every negative pixel, silently.
    x = torch.randn(64, 1, 8, 8, generator=gen(1))
    torch.manual_seed(0)
    out = K.ColorJitter(brightness=0.2, p=1.0)(x)
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0 and float(x.min()) < -2


@pytest.mark.parametrize("jitter", [ColorJitter(brightness=0.2), ColorJitter(contrast=0.3)])
def test_standardized_or_raw_pixel_images_are_refused(jitter):
    standardized = torch.randn(16, 1, 8, 8, generator=gen(1))
    message = r"'x' parameter of ColorJitter must be images with values in \[0, 1\] .* Got 'values in \[-\d"
    with pytest.raises(InvalidParameterError, match=message):
        jitter(standardized, None, generator=gen())
    with pytest.raises(InvalidParameterError, match=r"Got 'values in \[0, 16\]'"):
        jitter(torch.tensor([0.0, 16.0]).repeat(4, 32).reshape(4, 1, 8, 8), None, generator=gen())


def test_images_in_0_1_are_jittered_as_kornia_does():
    x = torch.rand(16, 1, 8, 8, generator=gen(2))
    g = gen(3)
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=gen(3)))
    out, _ = ColorJitter(brightness=0.2, contrast=0.2)(x, None, generator=g)
    torch.manual_seed(seed)
    ref = K.ColorJitter(0.2, 0.2, 0.0, 0.0, p=1.0)(x)
    assert torch.equal(out, ref) and not torch.equal(out, x)
