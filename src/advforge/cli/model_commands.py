"""``advforge import-model`` (a user's own network as a run directory), ``advforge recipes``
(the settings commands use by default), and the recipe lookup of ``train-classifier`` and
``train-attacker``."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from advforge.cli.configs import _help, check_counts
from advforge.cli.options import add_dataclass_flags, build_config, given_values
from advforge.errors import InputError
from advforge.models.recipes import KINDS, Recipe, all_recipes, find_recipe

COMMANDS = ("import-model", "recipes")


@dataclasses.dataclass(kw_only=True)
class ImportConfig:
    """Check your own network on a dataset and write it as a run directory that every --model
    flag accepts, e.g. advforge import-model --factory mynets.nets:make_net --weights
    net.safetensors --dataset mnist5k --out runs/mine"""

    factory: str | None = field(default=None, metadata=_help(
        "required: package.module:callable that returns your nn.Module (called with no "
        "arguments; imported with the current directory on the path)"))
    weights: str | None = field(default=None, metadata=_help(
        "required: the module's state_dict as a .safetensors file"))
    dataset: str = field(default="mnist5k", metadata=_help(
        "dataset it was trained on (see `advforge datasets`)"))
    data_dir: str | None = field(default=None, metadata=_help(
        "directory holding the dataset files"))
    out: str | None = field(default=None, metadata=_help("required: run directory to write"))
    mean: list[float] | None = field(default=None, metadata=_help(
        "per-channel mean your network expects its input normalised with (M or M,M,M); "
        "without it the network gets [0, 1] images"))
    std: list[float] | None = field(default=None, metadata=_help(
        "per-channel std, same convention"))
    limit: int | None = field(default=None, metadata=_help(
        "measure the clean accuracy on the first N test images only"))
    batch_size: int = field(default=500, metadata=_help("images per forward pass"))

    def __post_init__(self) -> None:
        for name in ("factory", "weights", "out"):
            if getattr(self, name) is None:
                raise InputError(f"--{name} is required")
        if (self.mean is None) != (self.std is None):
            raise InputError("--mean and --std go together")
        check_counts(limit=self.limit, batch_size=self.batch_size)


@dataclasses.dataclass(kw_only=True)
class RecipesConfig:
    """List the settings train-classifier and train-attacker use when only the model and the
    dataset are given, with what they measured and the command that reproduces them."""

    kind: str | None = field(default=None, metadata=_help(
        "only this kind: classifier or attacker", choices=list(KINDS)))
    dataset: str | None = field(default=None, metadata=_help("only this dataset"))


def add_parsers(sub: Any) -> None:
    """Register ``import-model`` and ``recipes`` on the top-level subparsers."""
    p = sub.add_parser("import-model", help="make a run directory of your own network",
                       description=ImportConfig.__doc__)
    add_dataclass_flags(p, ImportConfig)
    p.add_argument("--config", help="YAML file of option: value defaults (flags override)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p = sub.add_parser("recipes", help="list the default settings per model and dataset",
                       description=RecipesConfig.__doc__)
    add_dataclass_flags(p, RecipesConfig)


def run(args: argparse.Namespace) -> int:
    """Dispatch ``import-model`` / ``recipes``."""
    if args.command == "recipes":
        return cmd_recipes(build_config(RecipesConfig, args))
    from advforge.utils.device import resolve_device

    return cmd_import_model(build_config(ImportConfig, args), resolve_device(args.device))


def cmd_import_model(cfg: ImportConfig, device: Any) -> int:
    from advforge.models import import_model

    config = import_model(cfg.factory, cfg.weights, dataset=cfg.dataset, out=cfg.out,
                          mean=cfg.mean, std=cfg.std, data_dir=cfg.data_dir, limit=cfg.limit,
                          batch_size=cfg.batch_size, device=device)
    m = config["metrics"]
    print(f"{cfg.factory} on {config['dataset']}: clean test accuracy "
          f"{100 * m['test_accuracy']:.2f}% ({m['n_test']} images) -> {cfg.out}; "
          f"use it with --model {cfg.out}")
    return 0


def cmd_recipes(cfg: RecipesConfig) -> int:
    """One row per recipe (its settings beyond the package defaults and its measured figure),
    then the command that reproduces it and where the figure is recorded."""
    rows = [r for r in all_recipes() if cfg.kind in (None, r.kind)
            and cfg.dataset in (None, r.dataset)]
    if not rows:
        print("no recipe matches")
        return 0
    head = ("kind", "name", "dataset", "measured", "settings (beyond the package defaults)")
    table = [(r.kind, r.name, r.dataset,
              f"{100 * r.measured.figure:.2f}%" if r.measured else "not measured",
              _settings_text(_beyond_defaults(r))) for r in rows]
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(4)]
    print("  ".join(c.ljust(w) for c, w in zip(head[:4], widths, strict=True)) + "  " + head[4])
    for recipe, row in zip(rows, table, strict=True):
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
        print(f"    $ {recipe.command}")
        if recipe.measured is not None:
            m = recipe.measured
            print(f"    {100 * m.figure:.2f}%: {m.what} ({m.source})")
    return 0


def _beyond_defaults(recipe: Recipe) -> dict[str, Any]:
    """The recipe's settings that differ from the config defaults (classifiers only; an
    attacker recipe is shown whole)."""
    if recipe.kind != "classifier":
        return dict(recipe.settings)
    from advforge.training import TrainConfig

    base = TrainConfig().to_dict()
    return {k: v for k, v in recipe.settings.items()
            if base.get(k) != (list(v) if isinstance(v, tuple) else v)}


def _settings_text(settings: Mapping[str, Any]) -> str:
    def show(v: Any) -> str:
        if isinstance(v, (tuple, list)):
            return ",".join(map(str, v)) or "[]"
        if isinstance(v, Mapping):
            return ",".join(f"{k}={x}" for k, x in v.items())
        return f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{k}={show(v)}" for k, v in settings.items()) or "the package defaults"


# ---------------------------------------------------------------- recipe lookup


def build_train_config(args: argparse.Namespace,
                       extra: dict[str, Any] | None = None) -> tuple[Any, Recipe | None]:
    """train-classifier's config: defaults < the (arch, dataset) recipe < YAML < flags < extra.

    The recipe is looked up from the arch and dataset the YAML file and flags give (or the
    defaults), before ``extra`` (``--dry-run``'s synthetic data and one epoch) shrinks it;
    the config records its label in ``recipe``.
    """
    from advforge.training import TrainConfig

    recipe = find_recipe("classifier", *_classifier_key(args))
    extra = {**(extra or {}), "recipe": recipe.label if recipe else None}
    return build_config(TrainConfig, args, extra, recipe=recipe and recipe.settings), recipe


def train_classifier_config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    """:func:`build_train_config`, saying in one line which recipe applies."""
    cfg, recipe = build_train_config(args, extra)
    arch, dataset = _classifier_key(args)
    print(_recipe_line("train-classifier", recipe, f"{arch} on {dataset}"))
    return cfg


def _classifier_key(args: argparse.Namespace) -> tuple[str, str]:
    from advforge.training import TrainConfig

    given, fields = given_values(TrainConfig, args), TrainConfig.__dataclass_fields__
    return (given.get("arch", fields["arch"].default),
            given.get("dataset", fields["dataset"].default))


def attacker_recipe(args: argparse.Namespace, run_options: type, *,
                    announce: bool = True) -> Recipe | None:
    """train-attacker's recipe for (``args.kind``, dataset), announced in one line unless
    ``announce`` is False."""
    dataset = given_values(run_options, args).get(
        "dataset", run_options.__dataclass_fields__["dataset"].default)
    recipe = find_recipe("attacker", args.kind, dataset)
    if announce:
        print(_recipe_line("train-attacker", recipe, f"{args.kind} on {dataset}"))
    return recipe


def _recipe_line(command: str, recipe: Recipe | None, what: str) -> str:
    if recipe is None:
        return f"{command}: no recipe for {what}; using the package defaults"
    return (f"{command}: recipe {recipe.label} ({_settings_text(recipe.settings)}); "
            "--config and flags override it")
