"""Tensors that cannot train the model are refused in one line before training starts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reglab.errors import UserError
from reglab.models import CNN1D, CNN2D, MLP
from reglab.train import Trainer

X, Y = torch.randn(24, 4), torch.arange(24) % 3


def trainer(model=None, **kwargs):
    return Trainer(model or MLP(4, 3, hidden=(5,)), epochs=1, batch_size=8, progress="off", **kwargs)


@pytest.mark.parametrize(
    "train,val,message",
    [
        ((torch.randn(24, 5), Y), None, "Trainer.fit: train x has shape (24, 5); the MLP takes 4 features an "
         "example (x of shape (N, 4))."),
        ((X, Y), (torch.randn(8, 5), Y[:8]), "Trainer.fit: val x has shape (8, 5); the MLP takes 4 features"),
        ((X[:, 0], Y), None, "Trainer.fit: train x has shape (24,); the MLP takes 4 features"),
        ((X.long(), Y), None, "Trainer.fit: train x has dtype torch.int64; the MLP takes floating-point "
         "features (convert with x.float())."),
        ((X, Y + 1), None, "Trainer.fit: train y has labels 1..3; expected class indices 0..2 (the MLP has 3 "
         "outputs), one per example."),
        ((X, Y - 1), None, "Trainer.fit: train y has labels -1..1; expected class indices 0..2"),
        ((X, Y[:, None]), None, "Trainer.fit: train y has shape (24, 1); expected class indices 0..2"),
        ((X * float("nan"), Y), None, "Trainer.fit: train x has 96 NaN or infinite values; clean or impute"),
    ],
)
def test_tensors_that_cannot_train_the_model_are_refused_before_any_step(train, val, message):
    model = MLP(4, 3, hidden=(5,))
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(UserError) as info:
        trainer(model).fit(train, val)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_one_output_takes_binary_labels_and_a_cnn_its_length():
    trainer(MLP(4, 1, hidden=(5,))).fit((X, Y % 2))
    with pytest.raises(UserError, match=r"train y has labels 0..2; expected class indices 0..1 \(the MLP "
                       r"has 1 output\)"):
        trainer(MLP(4, 1, hidden=(5,))).fit((X, Y))
    with pytest.raises(UserError, match=r"train x has shape \(24, 1, 30\); the CNN1D takes 40 features"):
        trainer(CNN1D(40, 3, channels=4)).fit((torch.randn(24, 1, 30), Y))
    trainer(CNN1D(40, 3, channels=4)).fit((torch.randn(24, 1, 40), Y))


def test_a_cnn2d_gets_the_feature_and_label_checks_of_the_other_reglab_models():
    # Digits of another size reached torch's "shape '[8, 1, 8, 8]' is invalid for input of size 480".
    cnn = CNN2D(8, 3, channels=(2, 2))
    with pytest.raises(UserError, match=r"^Trainer\.fit: train x has shape \(24, 60\); the CNN2D takes 64 "
                       r"features an example \(x of shape \(N, 64\) or \(N, 1, 8, 8\)\)\.$"):
        trainer(cnn).fit((torch.randn(24, 60), Y))
    with pytest.raises(UserError, match=r"train y has labels 0\.\.3; expected class indices 0\.\.2 \(the "
                       r"CNN2D has 3 outputs\)"):
        trainer(cnn).fit((torch.randn(24, 1, 8, 8), torch.arange(24) % 4))
    assert len(trainer(cnn).fit((torch.randn(24, 1, 8, 8), Y))) == 1
    assert len(trainer(cnn).fit((torch.randn(24, 64), Y))) == 1


def test_bool_labels_train_as_the_classes_0_and_1():
    y = Y % 2 == 1
    runs = []
    for labels in (y, y.long()):
        torch.manual_seed(0)  # the same initialization
        runs.append(trainer(MLP(4, 2, hidden=(5,)), seed=3).fit((X, labels)))
    assert runs[0].equals(runs[1]) and runs[0]["train_loss"][0] > 0


def test_any_model_gets_the_label_sign_check_and_a_custom_loss_reads_labels_its_own_way():
    with pytest.raises(UserError, match=r"train y has labels -1..1; expected non-negative class indices"):
        trainer(nn.Linear(4, 3)).fit((X, Y - 1))
    multi_label = torch.randint(0, 2, (24, 3))  # (N, 3) integer targets, as this loss takes them

    def bce(out, y):
        return F.binary_cross_entropy_with_logits(out, y.to(out.dtype))

    assert len(trainer(MLP(4, 3, hidden=(5,)), loss=bce).fit((X, multi_label))) == 1


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int16])
def test_integer_labels_of_any_width_train_as_int64_ones(dtype):
    runs = []
    for labels in (Y.to(dtype), Y):
        torch.manual_seed(0)
        runs.append(trainer(MLP(4, 3, hidden=(5,)), seed=1).fit((X, labels)))
    assert runs[0].equals(runs[1])


class _Items(torch.utils.data.Dataset):
    def __init__(self, make):
        self.make = make

    def __len__(self):
        return 24

    def __getitem__(self, i):
        return self.make(X[i], Y[i])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_Items(lambda x, y: (x, y, 1.0)), "a Dataset item holds 3 values; the Trainer takes (x, y) pairs"),
        (_Items(lambda x, y: {"x": x, "y": y}), "a Dataset item is a dict with keys ['x', 'y']; the Trainer"),
        (torch.utils.data.DataLoader(_Items(lambda x, y: {"x": x, "y": y}), batch_size=8),
         "a DataLoader batch is a dict with keys ['x', 'y']"),
    ],
)
def test_items_that_are_not_pairs_are_one_clear_error(data, message):
    with pytest.raises(UserError) as info:
        trainer().fit(data)
    assert str(info.value).startswith(message)


def test_empty_datasets_and_loaders_are_refused_and_a_pair_dataset_trains_as_tensors():
    from reglab._validation import InvalidParameterError

    empty = torch.utils.data.TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(InvalidParameterError, match=r"'val' parameter of Trainer must be a non-empty"):
        trainer().fit((X, Y), empty)
    with pytest.raises(InvalidParameterError, match=r"'train' parameter of Trainer must be a DataLoader"):
        trainer().fit(torch.utils.data.DataLoader(empty, batch_size=4))
    runs = []
    for data in ((X, Y), _Items(lambda x, y: (x, y))):
        torch.manual_seed(0)
        runs.append(trainer(MLP(4, 3, hidden=(5,)), seed=2).fit(data))
    assert runs[0].equals(runs[1])


def test_labels_past_any_models_outputs_are_one_clear_error():
    with pytest.raises(UserError, match=r"^Trainer.fit: a batch has labels up to [345] but the model"):
        trainer(nn.Linear(4, 3)).fit((X, Y + 3))


def test_data_splits_are_checked_like_tensors_and_train_the_same():
    """A DataSplits / TensorSplit (a torch Dataset too) went the streamed-Dataset way, so no check ran: a
    1-output model trained on labels 0..2, and a wrong feature count ended in torch's matmul error."""
    import reglab
    from reglab.errors import UserError

    d = reglab.data.from_tensors(torch.randn(200, 13), torch.randint(0, 3, (200,)), seed=0)
    wrong_width = r"train y has labels 0\.\.2; expected class indices 0\.\.1 \(the MLP has 1 output\)"
    with pytest.raises(UserError, match=wrong_width):
        reglab.fit(reglab.MLP(13, 1), d, epochs=1, progress="off")
    with pytest.raises(UserError, match="the MLP takes 12 features"):
        reglab.fit(reglab.MLP(12, 3), d, epochs=1, progress="off")
    # The same batches as the tensors themselves: equal histories.
    runs = []
    for train, val in ((d.train, d.val), ((d.train.x, d.train.y), (d.val.x, d.val.y))):
        torch.manual_seed(0)
        runs.append(reglab.fit(reglab.MLP(13, 3), train, val, epochs=2, seed=1, progress="off"))
    assert runs[0].to_pandas().drop(columns="time").equals(runs[1].to_pandas().drop(columns="time"))


def test_float_labels_read_as_classes_or_one_clear_line():
    """Class labels stored as floats (a CSV's 0.0 / 1.0 / 2.0) were MSE targets for a 3-output model and ended
    in torch's shape error, and task='classification' ended in cross_entropy's dtype error."""
    import reglab
    from reglab.errors import UserError

    x = torch.randn(90, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(90) % 3
    with pytest.raises(UserError, match=r"1 regression target an example \(float y of shape \(90,\).*the MLP "
                                        r"has 3 outputs; for classes pass integer labels"):
        reglab.fit(reglab.MLP(4, 3), (x, y.double()), epochs=1, progress="off")
    runs = []
    for labels, task in ((y, "auto"), (y.double(), "classification")):
        torch.manual_seed(0)
        runs.append(reglab.fit(reglab.MLP(4, 3), (x, labels), epochs=2, seed=1, task=task, progress="off"))
    assert runs[0].to_pandas().drop(columns="time").equals(runs[1].to_pandas().drop(columns="time"))
    with pytest.raises(UserError, match="train y holds 0.5, not a class index"):
        reglab.fit(reglab.MLP(4, 3), (x, y + 0.5), epochs=1, task="classification", progress="off")
    with pytest.raises(UserError, match=r"train y has labels 3\.\.5; expected class indices 0\.\.2"):
        reglab.fit(reglab.MLP(4, 3), (x, y + 3.0), epochs=1, task="classification", progress="off")
