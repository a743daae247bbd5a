"""Untrusted files: pickled code in checkpoints, YAML tags, paths that try to leave the study directory,
and user strings in the HTML report."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import torch

from reglab.errors import UserError
from reglab.study import Study
from reglab.study.execute import TrialSpec, run_group
from reglab.study.schema import load_config, parse_config

from ._support import run_cli


class _Payload:
    """Unpickling this would run ``touch MARKER``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Payload(marker), "epoch": 0, "callbacks": []}, path)
    return path


def test_trainer_resume_refuses_a_pickle_payload_without_running_it(tmp_path):
    from reglab.models import MLP
    from reglab.train import Trainer

    marker = tmp_path / "ran"
    evil = _evil_checkpoint(tmp_path / "last.pt", marker)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    refused = r"refused .*holds objects other than tensors.*weights_only=True"
    with pytest.raises(UserError, match=refused) as e:
        Trainer(MLP(3, 2, hidden=()), epochs=1, progress="off").fit((x, y), resume_from=evil)
    assert "\n" not in str(e.value) and "weights_only=False" not in str(e.value)
    assert not marker.exists()


def test_study_trial_checkpoint_with_a_payload_is_not_run(tmp_path, tiny):
    config = parse_config({**tiny, "population": False})
    marker = tmp_path / "ran"
    ckpt = tmp_path / "ckpt"
    _evil_checkpoint(ckpt / "last.pt", marker)
    spec = TrialSpec("cv", "none", {}, 0, 0, 2, str(ckpt))
    outcomes = run_group(config, [spec])
    # Refused unread (weights_only=True), dropped, and the trial trained from the start.
    assert outcomes[0].status == "done"
    assert not marker.exists()


def test_finished_holdout_model_with_a_payload_is_not_run(tmp_path, tiny):
    config = parse_config(tiny)
    marker = tmp_path / "ran"
    ckpt = tmp_path / "ckpt"
    _evil_checkpoint(ckpt / "finished.pt", marker)
    spec = TrialSpec("final", "none", {}, 0, -1, 2, str(ckpt))
    with contextlib.suppress(Exception):  # any refusal is fine; running the payload is not
        run_group(config, [spec])
    assert not marker.exists()


def test_yaml_python_tags_are_rejected_with_one_line(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n"
                    "dataset: {name: breast_cancer}\nrecipes: {none: {}}\n")
    with pytest.raises(UserError, match=r"evil.yaml: line 1 is not valid YAML"):
        load_config(path)
    code, _, err = run_cli(["study", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.count("\n") == 1 and "not valid YAML" in err
    assert not marker.exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["..", ".", "../escape", "/tmp/abs", "a/b", "a\\b", "x" * 101, ""])
def test_study_names_cannot_leave_the_studies_folder(tiny, name):
    with pytest.raises(UserError, match=r"^config: name: "):
        parse_config({**tiny, "name": name})


def test_recipe_names_and_user_strings_never_build_paths_and_are_escaped(tmp_path, tiny, monkeypatch):
    import reglab.callbacks.checkpoint as checkpoint
    from reglab.report.from_study import load_study
    from reglab.report.html import write_report

    evil = "../../<script>alert(1)</script>"
    data = tmp_path / "d<i>x.csv"
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.iloc[:120, :6].join(
        load_breast_cancer(as_frame=True).frame["target"].iloc[:120])
    frame.to_csv(data, index=False)
    tiny.update(dataset={"path": str(data), "target": "target"}, population=False,
                description="<img src=x onerror=alert(2)>", recipes={"none": {}, evil: {"l2": 1e-3}})
    written: list[Path] = []
    real = checkpoint.save_atomic

    def spy(obj, path):
        written.append(Path(path).resolve())
        return real(obj, path)

    monkeypatch.setattr(checkpoint, "save_atomic", spy)
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    out = work / "study"
    Study(tiny).run(out=out, progress=False)
    assert written and all(p.is_relative_to(out.resolve()) for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([data.name, "work"])
    assert [p.name for p in work.iterdir()] == ["study"]
    html, md = write_report(load_study(out, describe=False), out / "report.html")
    page = html.read_text()
    for raw in ("<script>alert(1)", "<img src=x", "d<i>x"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
