"""Numerical faults: NaN/inf in data, losses and gradients are caught, named and kept out of results."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch
from torch import nn

from reglab.clipping import ClipGradNorm
from reglab.errors import UserError
from reglab.models import MLP
from reglab.study import Study
from reglab.study.execute import TrialOutcome
from reglab.study.export import export, open_storage
from reglab.study.stats import mean_ci
from reglab.study.storage import strict_json
from reglab.train import Trainer


def _strict_loads(text: str):
    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_nan_in_a_csv_is_rejected_with_column_and_row(tmp_path):
    from reglab.data.files import load_csv

    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{'' if i == 5 else i * 2},{i % 2}\n" for i in range(30)))
    named = r"column 'b' of d.csv has missing values in 1 row\(s\) \(first at row 5\)"
    with pytest.raises(UserError, match=named):
        load_csv(path, target="y")


def test_inf_in_a_csv_is_rejected_with_column_and_row(tmp_path):
    from reglab.data.files import load_csv

    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{'inf' if i == 5 else i * 2},{i % 2}\n" for i in range(30)))
    with pytest.raises(UserError, match=r"column 'b' .*row 5"):
        load_csv(path, target="y")


class _NaNAtCall(nn.Module):
    """A linear model whose output turns NaN on its ``at``-th forward call (training batches only)."""

    def __init__(self, at: int):
        super().__init__()
        self.lin, self.calls, self.at = nn.Linear(3, 2).double(), 0, at

    def forward(self, x):
        self.calls += self.training
        out = self.lin(x)
        return out * math.nan if self.training and self.calls == self.at else out


def test_trainer_names_the_epoch_and_batch_of_a_non_finite_loss():
    x, y = torch.randn(40, 3, dtype=torch.float64), torch.randint(0, 2, (40,))
    # 40 samples, batches of 16: 3 batches per epoch; call 5 is epoch 1, batch 1.
    trainer = Trainer(_NaNAtCall(5), epochs=4, batch_size=16, progress="off")
    history = trainer.fit((x, y))
    assert history.stop_reason == "non-finite training loss (nan) at epoch 1, batch 1"
    assert len(history.rows) == 2
    assert all(math.isfinite(v) for v in trainer.model.lin.weight.flatten().tolist())


def test_population_marks_only_the_diverging_member():
    from reglab.population import Population

    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    configs = [{"seed": 0, "lr": 0.01}, {"seed": 1, "lr": 1e100}, {"seed": 2, "lr": 0.02}]
    pop = Population(MLP(4, 2, hidden=(6,)), configs, optimizer="sgd", data_order="per_member",
                     dtype=torch.float64)
    histories = pop.fit((x, y), epochs=3, batch_size=20)
    assert pop.status[1] == "diverged"
    assert pop.status[0] != "diverged" and pop.status[2] != "diverged"
    assert histories[1].stop_reason and "non-finite" in histories[1].stop_reason
    torch.manual_seed(0)
    alone = Population(MLP(4, 2, hidden=(6,)), [configs[0], configs[2]], optimizer="sgd",
                       data_order="per_member", dtype=torch.float64)
    ref = alone.fit((x, y), epochs=3, batch_size=20)
    for k, r in ((0, 0), (2, 1)):  # the healthy members train exactly as without the diverging one
        losses = [row["train_loss"] for row in histories[k].rows]
        assert losses == pytest.approx([row["train_loss"] for row in ref[r].rows], rel=1e-12)


def test_clipping_reports_a_non_finite_gradient_norm():
    w = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    w.grad = torch.tensor([math.nan, 1.0], dtype=torch.float64)
    with pytest.raises(UserError, match=r"ClipGradNorm: the gradient norm is nan .* at call 1"):
        ClipGradNorm(1.0, on_nonfinite="raise")([w])
    clip = ClipGradNorm(1.0)
    with pytest.warns(RuntimeWarning, match="the gradient norm is nan"):
        assert math.isnan(clip([w]))
    assert clip.nonfinite_steps_ == 1


def test_strict_json_has_no_nan_tokens():
    text = strict_json({"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": 2}})
    assert _strict_loads(text) == {"a": None, "b": [None, None, 1.5], "c": {"d": 2}}


def test_diverged_and_nan_trials_stay_out_of_results_and_exports(tmp_path, tiny, monkeypatch):
    import reglab.study.backends as backends

    tiny["recipes"]["absurd_lr"] = {"lr": 1e8}
    real = backends.run_group

    def nan_metric_for_seed_1_of_l2(config, specs):
        # A trial that "finished" with a NaN validation loss must not poison the means.
        out = real(config, specs)
        return [TrialOutcome(o.spec, o.status, {**o.metrics, "val_loss": math.nan}, o.history, o.duration)
                if o.spec.recipe == "none" and o.spec.seed == 1 and o.spec.phase == "cv" else o for o in out]

    monkeypatch.setattr(backends, "run_group", nan_metric_for_seed_1_of_l2)
    res = Study(tiny).run(out=tmp_path, progress=False)
    store = open_storage(tmp_path)
    try:
        trials = store.trials()
        by = {(t["phase"], t["recipe"], t["seed"]): t for t in trials}
        poisoned = by[("cv", "none", 1)]
        assert poisoned["status"] == "diverged" and "non-finite val_loss=nan" in poisoned["metrics"]["reason"]
        assert {t["status"] for t in trials if t["recipe"] == "absurd_lr"} == {"diverged"}
        assert res["recipes"]["absurd_lr"]["status"] == "diverged"
        # l2's validation mean is over its finished trials only, as scipy's t-interval gives it.
        l2 = res["recipes"]["l2"]
        done = [t["metrics"]["val_accuracy"] for t in trials
                if t["phase"] == "cv" and t["recipe"] == "l2" and t["params"] == l2["best_params"]]
        assert l2["validation"]["mean"] == pytest.approx(mean_ci(done)["mean"], rel=1e-12)
        rows = _strict_loads(export(store, "json"))  # strict RFC 8259: no NaN / Infinity tokens
        assert len(rows) == len(trials)
        table = list(csv.DictReader(io.StringIO(export(store, "csv"))))
        assert not any(v.lower() in ("nan", "inf", "-inf") for r in table for v in r.values() if v)
    finally:
        store.close()


def test_a_divergence_whose_weights_overflowed_says_so_in_trainer_and_population():
    """lr 1e38 on inputs of size 1e3 overflows float32 weights in the first step (whose loss is
    finite); the next loss is non-finite, and the stop reason says the kept weights are not usable.
    Other members go on."""
    from reglab.models import MLP
    from reglab.population import Population
    from reglab.train.trainer import NON_FINITE_WEIGHTS

    g = torch.Generator().manual_seed(0)
    x, y = 1e3 * torch.randn(40, 3, generator=g), torch.randint(0, 2, (40,), generator=g)
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    history = Trainer(model, optimizer="sgd", lr=1e38, epochs=3, batch_size=40, progress="off").fit((x, y))
    assert history.stop_reason == "non-finite training loss (nan) at epoch 1, batch 0" + NON_FINITE_WEIGHTS
    assert not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    configs = [{"lr": 1e-6, "seed": 0}, {"lr": 1e38, "seed": 1}]
    pop = Population(MLP(3, 2, hidden=(4,)), configs, optimizer="sgd")
    histories = pop.fit((x, y), epochs=3, batch_size=40)
    assert pop.status == ["finished", "diverged"]
    assert histories[1].stop_reason.endswith(NON_FINITE_WEIGHTS)
    assert NON_FINITE_WEIGHTS not in (histories[0].stop_reason or "")
    assert all(bool(torch.isfinite(p).all()) for p in pop.member(0).parameters())
