"""fi-at: Algorithm 2's selection and targets, the adversarial set, fine-tuning and the
Table 3 report (Shi, Shu, Zhu & Chen 2020, Sec. 2.4 and 3.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import cli_fails
from quadrants import make_splits
from torch import nn

import advforge
from advforge.cli import main
from advforge.defenses import defend, settings_class
from advforge.defenses.influence import (
    CELLS,
    FIAT,
    NO_CONFUSION,
    adversarial_set,
    build_adversarial_set,
    confusion_targets,
    select_vulnerable,
)
from advforge.defenses.influence import dataset as dataset_module
from advforge.defenses.influence import settings as settings_module
from advforge.defenses.influence.finetune import adversarial_copies
from advforge.defenses.influence.progress import PROGRESS_FILE, SearchProgress
from advforge.errors import InputError
from advforge.models.wrapper import ImageClassifier
from advforge.training import TrainConfig, fit

PRETRAINED = str(Path(advforge.__file__).parent / "pretrained" / "mnist5k_model_b")
SCALE = 10.0  # logits = SCALE * x: class k's logit is pixel k


def linear_model() -> ImageClassifier:
    """4 classes on 1x2x2 images, logit k = 10 x_k: probabilities set by hand, full rank."""
    layer = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        layer.weight.copy_(SCALE * torch.eye(4))
    return ImageClassifier(nn.Sequential(nn.Flatten(), layer), 0.0, 1.0, num_classes=4,
                           in_channels=1).eval()


def images(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows).view(-1, 1, 2, 2)


def test_confusion_targets_take_the_most_confused_class_smallest_on_a_tie():
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
    pred = torch.tensor([2, 2, 1, 0, 3, 0, 1, 2, 2, 3])
    # class 0: 2 twice, 1 once -> 2; class 1: 3 and 0 once each -> 0 (tie, smaller index);
    # classes 2 and 3 are never misclassified -> NO_CONFUSION (runner-up per image).
    assert confusion_targets(pred, y, 4).tolist() == [2, 0, NO_CONFUSION, NO_CONFUSION]


def test_selection_applies_each_threshold_and_the_default_targets():
    model = linear_model()
    x = images([[1.0, 0.9, 0.0, 0.0],    # p0 .73, p1 .27: passes P_target, FI .37 < .5
                [1.0, 0.82, 0.95, 0.0],  # p0 .56 (FI .77), p1 .09 < .2 (p2 .34 is larger)
                [1.0, 0.95, 0.0, 0.0],   # p0 .62 (FI .61), p1 .38: selected
                [0.5, 0.6, 0.0, 0.0],    # misclassified: never selected
                [1.0, 0.0, 0.0, 0.0],    # confident: neither
                [0.0, 0.0, 0.95, 1.0]])  # class 3, runner-up 2: selected towards 2
    y = torch.tensor([0, 0, 0, 0, 0, 3])
    targets = torch.tensor([1, 0, 1, NO_CONFUSION])
    sel = select_vulnerable(model, x, y, fi_img=0.5, p_target=0.2, class_targets=targets)
    p = torch.softmax(SCALE * x.flatten(1).double(), 1)
    torch.testing.assert_close(sel.fi, (1 - p[torch.arange(6), y]) / p[torch.arange(6), y],
                               rtol=1e-4, atol=1e-6)  # Eq. 1 at full rank
    assert sel.correct.tolist() == [True, True, True, False, True, True]
    assert sel.target.tolist() == [1, 1, 1, 1, 1, 2]
    assert sel.passed_fi.tolist() == [False, True, True, False, False, True]
    assert sel.passed_p.tolist() == [True, False, True, False, False, True]
    assert sel.selected.tolist() == [False, False, True, False, False, True]


def test_the_set_holds_only_successful_examples_with_true_labels():
    model = linear_model()
    x = images([[1.0, 0.95, 0.0, 0.0],   # small gap to class 1: the box reaches it
                [1.0, 0.5, 0.0, 0.0],    # large gap: eps 0.2 cannot close it
                [0.0, 1.0, 0.0, 0.96]])  # class 1 towards 3: reachable
    y = torch.tensor([0, 0, 1])
    settings = FIAT(fi_img=0.0, p_target=0.0, fi_pixel=0.1, particles=16, iters=20, eps=0.2)
    x_adv, y_adv, info = build_adversarial_set(
        model, x, y, settings, torch.Generator().manual_seed(0),
        class_targets=torch.tensor([1, 3, NO_CONFUSION, NO_CONFUSION]))
    assert (info["selected"], info["attacked"], info["succeeded"]) == (3, 3, 2)
    assert info["pixels"] == {"min": 2, "median": 2, "max": 2}  # pixels y and target only
    assert y_adv.tolist() == [0, 1]  # the true labels, not the targets
    assert model(x_adv).argmax(1).tolist() == [1, 3]  # each reached its target
    assert x_adv.shape == (2, 1, 2, 2)
    made = adversarial_set(model, x, y, settings, torch.Generator().manual_seed(0),
                           class_targets=torch.tensor([1, 3, NO_CONFUSION, NO_CONFUSION]))
    assert made.index.tolist() == [0, 2]  # the sources: the second image was out of reach
    assert torch.equal(made.x, x_adv) and torch.equal(made.y, y[made.index])
    none = adversarial_set(model, x, y, FIAT(fi_img=100.0), class_targets=torch.tensor(
        [1, 3, NO_CONFUSION, NO_CONFUSION]))  # a threshold no image passes: an empty set
    assert (none.info["selected"], none.info["attacked"], none.x.shape) == (0, 0, (0, 1, 2, 2))


def test_an_interrupted_search_continues_where_it_stopped_and_matches(tmp_path, monkeypatch):
    """The swarm search is checkpointed per attack batch: a run stopped after the first
    batch and started again attacks only the rest and gives the uninterrupted run's set,
    bit for bit (the generator state is restored), without redoing the selection (the plan
    is saved); another key starts over."""
    model = linear_model()
    x = images([[1.0, 0.95, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.96]])
    y = torch.tensor([0, 0, 1])
    targets = torch.tensor([1, 3, NO_CONFUSION, NO_CONFUSION])
    settings = FIAT(fi_img=0.0, p_target=0.0, fi_pixel=0.1, particles=16, iters=20, eps=0.2,
                    attack_batch=1)

    def search(progress):
        return adversarial_set(model, x, y, settings, torch.Generator().manual_seed(0),
                               class_targets=targets, progress=progress, part="test")

    reference = search(None)
    calls = []
    real = dataset_module.FiPSO

    def counted(*args, **kw):
        calls.append(1)
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(dataset_module, "FiPSO", counted)
    selections = []
    real_select = dataset_module.select_vulnerable
    monkeypatch.setattr(dataset_module, "select_vulnerable",
                        lambda *a, **kw: selections.append(1) or real_select(*a, **kw))
    stop_after = 1
    with pytest.raises(KeyboardInterrupt):
        search(SearchProgress(tmp_path, {"run": 1}))
    assert (tmp_path / PROGRESS_FILE).is_file()
    assert len(selections) == 1
    stop_after, calls[:] = None, []
    resumed = search(SearchProgress(tmp_path, {"run": 1}))
    assert len(calls) == 2  # the first image came from the checkpoint
    assert len(selections) == 1  # and the plan too
    assert torch.equal(resumed.x, reference.x) and torch.equal(resumed.index, reference.index)
    assert resumed.info == reference.info
    calls[:] = []
    search(SearchProgress(tmp_path, {"run": 2}))
    assert len(calls) == 3 and len(selections) == 2  # a different key: nothing is reused
    SearchProgress(tmp_path, {"run": 2}).clear()
    assert not (tmp_path / PROGRESS_FILE).exists()


def test_default_targets_come_from_the_confusion_of_the_given_split():
    model = linear_model()
    x = images([[1.0, 0.0, 0.98, 0.0], [0.5, 0.0, 1.0, 0.0], [1.0, 0.97, 0.0, 0.0]])
    y = torch.tensor([0, 0, 0])  # the second is misclassified as 2: class 0 -> 2
    settings = FIAT(fi_img=0.0, p_target=0.0, particles=8, iters=5)
    _, _, info = build_adversarial_set(model, x, y, settings, torch.Generator().manual_seed(0))
    assert info["class_targets"] == [2, NO_CONFUSION, NO_CONFUSION, NO_CONFUSION]
    assert info["selected"] == 2  # both correct ones, towards 2 (not the runner-up 1)


@pytest.mark.parametrize("kw,message", [
    ({"fi_img": -0.1}, "fi_img"), ({"p_target": 1.5}, "p_target"),
    ({"fi_pixel": float("nan")}, "fi_pixel"), ({"particles": 1}, "particles"),
    ({"b": 2.0}, "b must"), ({"model": "/no/such/run"}, "/no/such/run"),
    ({"adv_augment": "rotate"}, "adv_augment"), ({"lr_factor": 0}, "lr_factor"),
    ({"lr_factor": 2.0}, "lr_factor"),
])
def test_bad_settings_are_refused(kw, message):
    with pytest.raises(InputError, match=message):
        FIAT(**kw)


@pytest.mark.parametrize("augment", ["none", "shift"])
def test_adversarial_copies_keep_the_first_and_shift_the_others(augment):
    x = torch.zeros(5, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0  # a blob a shift moves but never pushes out of the image
    y = torch.arange(5)
    xs, ys = adversarial_copies(x, y, 3, augment, seed=0)
    assert xs.shape == (15, 1, 8, 8) and ys.tolist() == [0, 1, 2, 3, 4] * 3
    assert torch.equal(xs[:5], x)  # the set as Algorithm 2 made it
    copies = xs[5:].view(2, 5, 1, 8, 8)
    assert (copies.flatten(2).sum(-1) == 4).all()  # every pixel kept (1-pixel shifts)
    moved = (copies != x).flatten(2).any(-1)
    assert moved.any() if augment == "shift" else not moved.any()
    again, _ = adversarial_copies(x, y, 3, augment, seed=0)
    assert torch.equal(again, xs)  # fixed by the seed


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A lenet5 trained one epoch on the quadrants, then fi-at with a small swarm."""
    tmp = tmp_path_factory.mktemp("fi_at")
    splits = make_splits(n_train=96, n_test=40)
    base = {"arch": "lenet5", "dataset": "quadrants", "batch_size": 16, "augment": "none",
            "seed": 0, "lr": 3e-3}
    fit(TrainConfig(**base, epochs=1, out=str(tmp / "orig")), splits)
    settings = settings_class("fi-at")(model=str(tmp / "orig"), fi_img=0.0, p_target=0.05,
                                       particles=10, iters=10)
    metrics = defend(settings, TrainConfig(**base, epochs=2, out=str(tmp / "tuned")), splits)
    return tmp, metrics


def test_fine_tuning_raises_accuracy_on_the_adversarial_sets(tuned):
    _, metrics = tuned
    info, table = metrics["fi_at"]["algorithm2"], metrics["fi_at"]["table3"]
    assert info["train"]["succeeded"] >= 20 and info["test"]["succeeded"] >= 10
    assert table["original"]["adv_train"]["accuracy"] == 0.0  # every example fools it
    assert table["original"]["adv_test"]["accuracy"] == 0.0
    assert table["fine_tuned"]["adv_train"]["accuracy"] >= 0.8
    assert table["fine_tuned"]["adv_test"]["accuracy"] >= 0.6
    assert table["fine_tuned"]["test"]["accuracy"] >= table["original"]["test"]["accuracy"] - 0.05


def test_report_has_every_table3_cell_with_its_n(tuned):
    tmp, metrics = tuned
    report = json.loads((tmp / "tuned" / "fi_at.json").read_text())
    info = report["algorithm2"]
    n = {"adv_train": info["train"]["succeeded"], "adv_test": info["test"]["succeeded"],
         "test": 40}
    n["train_plus_adv_train"], n["test_plus_adv_test"] = 96 + n["adv_train"], 40 + n["adv_test"]
    n["adv_train_sources"], n["adv_test_sources"] = n["adv_train"], n["adv_test"]
    # Algorithm 2 attacks only images the original classifies correctly: its sources.
    for part in ("adv_train_sources", "adv_test_sources"):
        assert report["table3"]["original"][part]["accuracy"] == 1.0
    for row in ("original", "fine_tuned"):
        assert set(report["table3"][row]) == {cell for cell, _ in CELLS}
        for cell, value in report["table3"][row].items():
            assert value["n"] == n[cell], (row, cell)
            assert value["accuracy"] == pytest.approx(value["correct"] / value["n"])
    config = json.loads((tmp / "tuned" / "config.json").read_text())
    assert config["extra"]["defense"]["name"] == "fi-at"
    assert not (tmp / "tuned" / PROGRESS_FILE).exists()  # removed once the sets are saved


def test_resume_reuses_the_saved_sets(tuned, monkeypatch):
    tmp, first = tuned

    def refuse(*args, **kw):
        raise AssertionError("Algorithm 2 ran again")

    monkeypatch.setattr("advforge.defenses.influence.settings.adversarial_set", refuse)
    splits = make_splits(n_train=96, n_test=40)
    settings = settings_class("fi-at")(model=str(tmp / "orig"), fi_img=0.0, p_target=0.05,
                                       particles=10, iters=10)
    train = TrainConfig(arch="lenet5", dataset="quadrants", batch_size=16, augment="none",
                        seed=0, lr=3e-3, epochs=3, out=str(tmp / "tuned"), resume=True)
    again = defend(settings, train, splits)
    assert again["fi_at"]["algorithm2"] == first["fi_at"]["algorithm2"]
    assert again["fi_at"]["table3"]["original"] == first["fi_at"]["table3"]["original"]


def test_sets_of_a_model_retrained_in_place_are_not_reused(tmp_path, monkeypatch):
    """The search key holds the weights' hash: the same model path, settings and data with
    other weights make new sets rather than reusing the saved ones."""
    splits = make_splits(n_train=48, n_test=16)
    base = {"arch": "lenet5", "dataset": "quadrants", "batch_size": 16, "augment": "none",
            "lr": 3e-3, "epochs": 1}
    model_dir, out = tmp_path / "orig", tmp_path / "tuned"
    searched = []
    real = settings_module.adversarial_set

    def counted(*args, **kw):
        searched.append(kw["part"])
        return real(*args, **kw)

    monkeypatch.setattr(settings_module, "adversarial_set", counted)
    for seed in (0, 0, 1):  # trained, the same weights again, retrained in place
        fit(TrainConfig(**base, seed=seed, out=str(model_dir)), splits)
        settings = settings_class("fi-at")(model=str(model_dir), fi_img=0.0, p_target=0.05,
                                           particles=4, iters=2)
        defend(settings, TrainConfig(**base, seed=0, out=str(out)), splits)
    assert searched == ["train", "test", "train", "test"]  # the second run reused the sets


def test_cli_dry_run_writes_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["defend", "fi-at", "--dry-run", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "fi_at.json").read_text())
    assert set(report["table3"]["fine_tuned"]) == {cell for cell, _ in CELLS}
    assert report["algorithm2"]["train"]["attacked"] > 0
    assert "fi_at.json" in printed


def test_search_limit_bounds_algorithm2_but_not_table3(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["defend", "fi-at", "--dry-run", "--quiet", "--search-limit", "8",
                 "--out", str(out)]) == 0
    report = json.loads((out / "fi_at.json").read_text())
    assert report["algorithm2"]["train"]["n"] == report["algorithm2"]["test"]["n"] == 8
    assert report["table3"]["original"]["test"]["n"] > 8


@pytest.mark.parametrize("argv,mentions", [
    ([], "--model"),
    (["--dry-run", "--search-limit", "0"], "search_limit"),
    (["--model", "/no/such/run"], "/no/such/run"),
    (["--model", PRETRAINED, "--p-target", "1.5"], "p_target"),
    (["--dry-run", "--fi-img", "-1"], "fi_img"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, argv, mentions):
    cli_fails(["defend", "fi-at", "--out", str(tmp_path / "o"), *argv], capsys,
              mentions=mentions)
    assert not (tmp_path / "o").exists()


def test_adv_repeat_appends_the_set_k_times_and_shares_the_search(tuned, monkeypatch):
    tmp, first = tuned
    variant = tmp / "repeat3"
    variant.mkdir()
    for name in ("fi_at_sets.safetensors", "fi_at_sets.json"):  # seeded with the first's sets
        (variant / name).write_bytes((tmp / "tuned" / name).read_bytes())

    def refuse(*args, **kw):
        raise AssertionError("Algorithm 2 ran again")

    monkeypatch.setattr("advforge.defenses.influence.settings.adversarial_set", refuse)
    seen = {}
    real_fine_tune = advforge.defenses.influence.settings.fine_tune

    def spy(original, settings, train, splits, x_adv, y_adv, **kw):
        seen["n"] = len(y_adv)
        return real_fine_tune(original, settings, train, splits, x_adv, y_adv, **kw)

    monkeypatch.setattr("advforge.defenses.influence.settings.fine_tune", spy)
    splits = make_splits(n_train=96, n_test=40)
    settings = settings_class("fi-at")(model=str(tmp / "orig"), fi_img=0.0, p_target=0.05,
                                       particles=10, iters=10, adv_repeat=3)
    train = TrainConfig(arch="lenet5", dataset="quadrants", batch_size=16, augment="none",
                        seed=0, lr=3e-3, epochs=1, out=str(variant))
    again = defend(settings, train, splits)
    assert seen["n"] == 3 * first["fi_at"]["algorithm2"]["train"]["succeeded"] > 0
    recorded = json.loads((variant / "config.json").read_text())["extra"]["train_config"]
    assert recorded["lr"] == pytest.approx(3e-4)  # fine-tuning at lr_factor 0.1 of 3e-3
    assert again["fi_at"]["algorithm2"] == first["fi_at"]["algorithm2"]
