"""One setting's loaded data and target model, the attackers trained (or reused from the
--work cache) for it, and the success figures every part is scored with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

import advforge
from advforge.attacks import create as create_attack
from advforge.errors import AdvforgeError
from advforge.eval import evaluate, predict
from advforge.eval.transfer import transfer_success
from advforge.generative import AdvGANConfig, AIGANConfig, AIGANTrainer, fit_advgan
from advforge.generative.aigan import train_aigan
from advforge.generative.aigan.config import PAPER_CONFIG
from advforge.generative.config import jsonable, to_flat
from advforge.generative.identity import weights_hash
from advforge.generative.state import has_training_state
from advforge.models import load_model
from advforge.utils.checkpoint import read_json
from aigan_bench.cache import config_difference
from aigan_bench.settings import Setting, parse_overrides


class Context:
    """The loaded data and model of one setting, and the attackers trained for it."""

    def __init__(self, setting: Setting, args: argparse.Namespace) -> None:
        self.s, self.args = setting, args
        self.kept: dict[str, Any] = {}  # this setting's parts kept in --out (set by main)
        if not (setting.model_dir / "model.safetensors").is_file():
            raise AdvforgeError(
                f"no trained model in {setting.model_dir}: train it first, e.g. advforge "
                f"train-classifier --config configs/train_model_b_mnist5k.yaml")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_model(setting.model_dir).to(self.device).eval()
        self.arch = read_json(setting.model_dir / "config.json").get("arch")
        splits = advforge.data.load(setting.dataset, args.data_dir)
        self.num_classes = splits.num_classes
        train = splits.train
        if setting.train_limit:
            train = train.subset(range(min(setting.train_limit, len(train))))
        self.train = (train.x.to(self.device), train.y.to(self.device))
        test = splits.test
        self.x = test.x[: args.n_eval].to(self.device)
        self.y = test.y[: args.n_eval].to(self.device)
        # What every part is scored against; a kept part or a cached attacker must match it.
        self.model_sha256 = weights_hash(self.model)
        clean = predict(self.model, self.x)[0]
        self.clean_accuracy = float((clean == self.y).float().mean())
        self.work = Path(args.work) / setting.name
        self.overrides = parse_overrides(args.gan)
        self.advgan_overrides = parse_overrides(args.advgan, AdvGANConfig, "--advgan")

    def gen(self) -> torch.Generator:
        """A fresh generator seeded with --seed (every part's attacks start alike)."""
        return torch.Generator(device=self.device).manual_seed(self.args.seed)

    def aigan_config(self, **changes: Any) -> AIGANConfig:
        """The AI-GAN config of this run (``changes``: flat names of a variant's fields): the
        paper's configuration (:data:`PAPER_CONFIG`, which the paper's tables reproduce)
        under the --gan overrides. The package's default generator is the ``table6`` part's."""
        return AIGANConfig.from_flat({**PAPER_CONFIG, **self.overrides, "eps": self.s.eps,
                                      "epochs": self.args.epochs, "seed": self.args.seed,
                                      "eval_size": 0, **changes})

    def cached(self, run_dir: Path, expected: Any = None, *free: str) -> dict[str, Any]:
        """The config.json of an attacker cached in --work, refused if it was trained against
        another target model (e.g. the target was retrained since) or, given the config this
        run would train it with (``expected``), with other settings than that one in any
        field beside ``free``: a cache made under other --gan / --advgan overrides must not be
        served as this run's attacker."""
        cached = read_json(run_dir / "config.json")
        sha = cached.get("target_model", {}).get("weights_sha256")
        if sha is not None and sha != self.model_sha256:
            raise AdvforgeError(f"{run_dir} was trained against another target model than "
                                f"{self.s.model_dir}: delete it or use another --work")
        if expected is not None:
            wanted = jsonable(to_flat(expected))
            if diff := config_difference(cached.get("training", {}), wanted, *free,
                                         config_class=type(expected)):
                raise AdvforgeError(f"{run_dir} was trained with other settings than this "
                                    f"run asks for ({diff}): delete it or use another --work")
        return cached

    def aigan(self, variant: str, **changes: Any) -> tuple[Path, dict[str, Any]]:
        """Train (or reuse / resume) the AI-GAN ``variant``; its run dir and metrics."""
        run_dir = self.work / variant
        cfg = self.aigan_config(**changes)
        if (run_dir / "config.json").is_file():
            # epochs may differ: a shorter cached run is reused as it is, or resumed (--extend)
            cached = self.cached(run_dir, cfg, "epochs")
            done = cached.get("training", {}).get("epochs", self.args.epochs)
            if not (self.args.extend and done < self.args.epochs):
                return run_dir, cached["metrics"]
            if not has_training_state(run_dir):
                raise AdvforgeError(f"cannot extend {run_dir}: it holds no training state")
            print(f"[{self.s.name}] extending AI-GAN {variant!r} from {done} to "
                  f"{self.args.epochs} epochs", flush=True)
        else:
            print(f"[{self.s.name}] training AI-GAN {variant!r} into {run_dir}", flush=True)
        trainer = AIGANTrainer.for_data(cfg, self.model, self.train)
        metrics = train_aigan(trainer, self.train, run_dir=run_dir,
                              resume=has_training_state(run_dir), progress=True,
                              dataset=self.s.dataset, target_run_dir=self.s.model_dir)
        return run_dir, metrics  # a black-box run also holds f_d in run_dir / "local_model"

    def advgan(self) -> tuple[Path, dict[str, Any]]:
        """Train (or reuse) one AdvGAN generator per target; the run dir and metrics."""
        run_dir = self.work / "advgan"
        cfg = AdvGANConfig.from_flat({**self.advgan_overrides, "eps": self.s.eps,
                                      "epochs": self.args.advgan_epochs, "target": "all",
                                      "seed": self.args.seed, "eval_size": 0})
        if (run_dir / "config.json").is_file():
            return run_dir, self.cached(run_dir, cfg)["metrics"]
        # The timing part needs an AdvGAN too: say so, training ten generators takes a while.
        print(f"[{self.s.name}] no AdvGAN cached in {run_dir}: training one generator per "
              "target", flush=True)
        metrics = fit_advgan(cfg, self.model, self.train, run_dir=run_dir,
                             resume=run_dir.is_dir(),
                             progress=True, dataset=self.s.dataset,
                             target_run_dir=self.s.model_dir)
        return run_dir, metrics

    def evaluate_all(self, attack: Any, name: str, model: torch.nn.Module | None = None,
                     limit: int | None = None, targeted: bool = True) -> dict[str, Any]:
        """Targeted success over all (image, target != label) pairs of the eval images (the
        first ``limit`` of them if given); with ``targeted=False`` (transfer only), the
        untargeted misclassification rate of the eval images instead.

        ``model`` is what the attack differentiates (default: the target); success is always
        judged on the target.
        """
        x, y = self.x[:limit], self.y[:limit]
        if model is None:
            result = evaluate(attack, self.model, x, y, targets="all",
                              generator=self.gen(), attack_name=name)
            return brief(result)
        # Transfer: craft on `model`, judge on the target (advforge.eval.transfer).
        return transfer_success(attack, model, self.model, x, y, targeted=targeted,
                                generator=self.gen(), attack_name=name)


def brief(result: Any) -> dict[str, Any]:
    """The figures of an :class:`~advforge.eval.AttackResult` the tables keep."""
    return {"success": result.success_rate, "per_target": {int(k): v for k, v in
                                                          result.per_target.items()},
            "pairs": result.n_evaluated, "clean_accuracy": result.clean_accuracy,
            "seconds": result.seconds, "seconds_per_1000": result.seconds_per_1000,
            "linf_mean": result.distances["linf"]["mean"], "l2_mean": result.distances["l2"][
                "mean"]}


def pgd_spec(eps: float, steps: int, step_size: float, loss: str = "cw") -> Any:
    """Targeted PGD with a random start (the tables' PGD-100 and PGD-20)."""
    return create_attack("pgd", eps=eps, steps=steps, step_size=step_size, loss=loss,
                         random_start=True)
