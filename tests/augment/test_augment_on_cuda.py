"""Transforms called with a generator on a GPU, as the Trainer calls them with device="cuda".

The Trainer's transform generator lives on the training device. Mixup, CutMix, the kornia image
transforms and the text transforms drew their random numbers on the CPU, which torch refuses with a
CUDA generator, so every such fit failed at its first batch. Runs only where a GPU is present.
"""

from __future__ import annotations

import random

import pytest
import torch

from reglab.augment import RandomCrop, RandomHorizontalFlip, RandomSwap
from reglab.models import MLP
from reglab.targets import CutMix, Mixup
from reglab.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator(device="cuda").manual_seed(seed)


@pytest.mark.parametrize(
    "transform",
    [Mixup(0.4, num_classes=3), CutMix(1.0, num_classes=3), RandomHorizontalFlip(p=0.5, shape=(4, 4)),
     RandomCrop((4, 4), padding=1, shape=(1, 4, 4))],
)
def test_tensor_transforms_draw_on_their_generators_device_reproducibly(transform):
    x = torch.rand(8, 16, device="cuda")
    y = torch.randint(0, 3, (8,), device="cuda")
    a, ya = transform(x, y, generator=_gen(0))
    b, yb = transform(x, y, generator=_gen(0))
    assert a.device.type == "cuda" and torch.equal(a, b)
    assert torch.equal(torch.as_tensor(ya), torch.as_tensor(yb))


def test_text_transforms_take_a_gpu_generator():
    tokens = [["a", "b", "c", "d"], ["e", "f", "g"]]
    assert RandomSwap(1)(tokens, None, generator=_gen(1)) == RandomSwap(1)(tokens, None, generator=_gen(1))
    assert RandomSwap(1)(tokens, None, generator=random.Random(0))  # a random.Random still works


@pytest.mark.parametrize("augment", [Mixup(0.4, num_classes=3), CutMix(1.0, num_classes=3)])
def test_a_cuda_fit_with_mixing_augmentation_trains_and_repeats(augment):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 16, generator=g), torch.randint(0, 3, (64,), generator=g)

    def fit():
        torch.manual_seed(0)
        trainer = Trainer(MLP(16, 3, hidden=(8,)), epochs=2, batch_size=16, device="cuda", augment=augment,
                          progress="off", seed=3)
        return trainer.fit((x, y))

    first, second = fit(), fit()
    assert len(first) == 2 and first.equals(second, ignore=("time",))


def test_a_kornia_transform_on_cpu_images_leaves_the_gpu_generator_as_it_was():
    torch.cuda.manual_seed(123)
    state = torch.cuda.get_rng_state()
    RandomHorizontalFlip(p=0.5)(torch.rand(4, 1, 4, 4), None, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.cuda.get_rng_state(), state)
