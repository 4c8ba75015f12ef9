"""The tables of ``benchmarks/README.md`` and the results table of ``README.md``, generated from
the committed JSON in ``benchmarks/results/``.

Every row names the JSON file its figures come from; a missing file is an error. The generated
text sits between ``<!-- tables.py: NAME -->`` and ``<!-- /tables.py: NAME -->`` markers.

    python benchmarks/tables.py            # print every table
    python benchmarks/tables.py --write    # rewrite the marked regions in place
    python benchmarks/tables.py --check    # exit 1 if a marked region is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTS = ("README.md", "benchmarks/README.md")
NONE = "-"
NOTHING_YET = "_No committed measurement yet._"

# Bai et al. (AI-GAN), MNIST columns, percent: Table III (AI-GAN, AdvGAN white-box) and
# Table IV (AI-GAN black-box); Table VI (time for 1,000 attacks) as printed.
PAPER = {
    "whitebox": {"model_a": (99.14, 97.90), "model_b": (98.50, 98.30)},
    "blackbox": {"model_a": 96.04, "model_b": 94.95},
    "time": {"fgsm": "0.06 s", "pgd20": "0.7 s", "cw_l2": "> 3 h", "advgan": "< 0.01 s",
             "aigan": "< 0.01 s"},
    # Nguyen et al. (AE4DNN), Table III: adversarial rate (percent) at configurations D and E
    "ae4dnn": {"rate_d": 53.5, "rate_e": 67.7},
    # Shi et al. (FI + PSO), ResNet32 on MNIST: Table 3's Adv2 after fine-tuning, and
    # Table 1's test accuracy of the original and the fine-tuned model (percent)
    "fi_at": {"adv_test": 76.92, "clean": (99.25, 99.32)},
}


# ---------------------------------------------------------------- reading and formatting

def load(name: str) -> dict[str, Any]:
    """A result file by name; FileNotFoundError names it when it is not committed."""
    path = RESULTS / name
    if not path.is_file():
        raise FileNotFoundError(f"a table row cites benchmarks/results/{name}, which is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def setting(name: str) -> dict[str, Any]:
    """The one setting an ``aigan_tables`` file holds (its ``results`` has a single key)."""
    (record,) = load(name)["results"].values()
    return record


def pct(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.2f}%"


def paper_pct(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}%"


def secs(value: float | None) -> str:
    if value is None:
        return NONE
    if value >= 100:
        return f"{value:,.0f} s"
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def cite(name: str) -> str:
    return f"`{name}`"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def target_term(cfg: dict[str, Any]) -> str:
    """G's target term as the config records it (records made before the option say ce)."""
    if cfg.get("target_loss", "ce") == "cw":
        return f"C&W margin, kappa {cfg.get('kappa', 0):g}"
    return "cross-entropy"


def substitute(part: dict[str, Any]) -> str:
    """The black-box local model: chosen from queries (auto), fixed, or the paper's Model C
    (records made before the option have no ``local_arch``)."""
    arch = part["config"].get("local_arch")
    if arch == "auto":
        return f"auto: {part['local_selection']['arch']}"
    return "model_c (the paper's)" if arch in (None, "model_c") else f"{arch} (fixed)"


# ---------------------------------------------------------------- the tables

CLASSIFIERS = "classifiers_mnist5k.json"


HEADLINE_CLASSIFIERS = ("model_b",)  # the shipped model every headline row attacks


def classifiers() -> str:
    """Every ``classifiers_<dataset>.json`` row, ``mnist5k``'s first."""
    files = sorted(RESULTS.glob("classifiers_*.json"),
                   key=lambda f: (f.name != CLASSIFIERS, f.name))
    if not files:
        return NOTHING_YET
    rows = [[f"`{r['arch']}`", f"`{r['dataset']}`", pct(r["test_accuracy"]),
             secs(r["train_seconds"]), f"`{r['command']}`", cite(f.name)]
            for f in files for r in load(f.name)["rows"]]
    return markdown(["model", "dataset", "test accuracy", "training", "command", "JSON"], rows)


def attack_speed() -> str:
    name = "attack_speed.json"
    data = load(name)
    labels = {"fgsm": "FGSM", "pgd40": "PGD-40 (step 0.01)", "cw_l2": "C&W L2"}
    rows = []
    for model, attacks in data["results"].items():
        clean = pct(data["clean_accuracy"][model])
        for key, r in attacks.items():
            ours, theirs, both = r["ours"], r["theirs"], r["mean_l2_both_fooled"]
            rows.append([f"{model} ({clean} clean)", labels.get(key, key),
                         secs(ours["seconds_median"]), secs(theirs["seconds_median"]),
                         f"{r['time_ratio']:.2f}",
                         f"{pct(ours['success_rate'])} / {pct(theirs['success_rate'])}",
                         f"{both['ours']:.2f} / {both['theirs']:.2f}", cite(name)])
    return markdown(["model", "attack", "ours", "torchattacks", "time ratio",
                     "success ours / theirs", "mean L2 where both fool: ours / theirs", "JSON"],
                    rows)


# (row label, file): the current defaults, one row per setting.
WHITEBOX = [
    ("`mnist5k` Model A, eps 0.3", "aigan_tables_mnist5k-a_epyc.json"),
    ("`mnist5k` Model B, eps 0.3", "aigan_tables_mnist5k-b_retrained_cw20.json"),
    ("`fashion-mnist` Model B, eps 0.1", "aigan_tables_fashion-b-0.1_16k_retrained_cw20.json"),
    ("`fashion-mnist` Model B, eps 0.3", "aigan_tables_fashion-b-0.3.json"),
]


def whitebox() -> str:
    rows = []
    for label, name in WHITEBOX:
        r = setting(name)
        w, cfg = r["whitebox"], r["whitebox"]["config"]
        paper = PAPER["whitebox"].get(r["arch"]) if r["dataset"] == "mnist5k" else None
        rows.append([
            label, f"{cfg['epochs']} x {cfg['train_images']:,}", target_term(cfg),
            f"**{pct(w['success'])}**", pct(r.get("pgd100", {}).get("success")),
            pct(r.get("pgd100_ce", {}).get("success")), pct(r.get("advgan", {}).get("success")),
            " / ".join(paper_pct(p) for p in paper) if paper else NONE,
            secs(w["train_seconds"]), f"{r['n_eval']:,}", cite(name)])
    return markdown(["setting", "epochs x images", "G's target term", "AI-GAN",
                     "PGD-100 (C&W loss)", "PGD-100 (cross-entropy)", "AdvGAN (one per target)",
                     "paper AI-GAN / AdvGAN", "AI-GAN training", "test images", "JSON"], rows)


BLACKBOX = [
    ("`mnist5k` Model A, eps 0.3",
     "aigan_tables_mnist5k-a_epyc_blackbox_local-model-a_target-focus-0.5.json"),
    ("`mnist5k` Model B, eps 0.3", "aigan_tables_mnist5k-b_10ep_epyc_blackbox_auto.json"),
    ("`fashion-mnist` Model B, eps 0.1",
     "aigan_tables_fashion-b-0.1_4k_s20_60ep_auto_target-focus-0.5.json"),
    ("`fashion-mnist` Model B, eps 0.3", "aigan_tables_fashion-b-0.3.json"),
]


def blackbox() -> str:
    rows = []
    for label, name in BLACKBOX:
        r = setting(name)
        b, w, cfg = r["blackbox"], r["whitebox"], r["blackbox"]["config"]
        split = b.get("split", {})
        paper = PAPER["blackbox"].get(r["arch"]) if r["dataset"] == "mnist5k" else None
        rows.append([
            label, f"{cfg['epochs']} x {cfg['train_images']:,}", substitute(b),
            f"{cfg.get('target_focus') or 0:g}", f"**{pct(b['success'])}**",
            pct(w["success"]), f"{b['success'] / w['success']:.3f}",
            f"{pct(split.get('success_on_local'))} / "
            f"{pct(split.get('target_hit_given_local_hit'))}",
            f"{b['target_queries']:,}", paper_pct(paper), cite(name)])
    return markdown(["setting", "epochs x images", "substitute", "target_focus", "black-box",
                     "white-box (same file)", "ratio", "on f_d / carried over", "target queries",
                     "paper AI-GAN", "JSON"], rows)


TIMING = [
    ("`mnist5k` Model A, 1,000 examples", "aigan_tables_mnist5k-a.json"),
    ("`mnist5k` Model B, 1,000 examples", "aigan_tables_mnist5k-b.json"),
    ("`mnist5k` Model B, 1,000 examples", "aigan_tables_mnist5k-b_shuffle-48.json"),
    ("`fashion-mnist` Model B, eps 0.1, 500 examples", "aigan_tables_fashion-b-0.1.json"),
]
TIMED = ("fgsm", "pgd20", "cw_l2", "advgan", "aigan")


def timed(entry: dict[str, Any]) -> str:
    star = f" (on {entry['measured_on']}, scaled)" if entry.get("extrapolated") else ""
    return f"{secs(entry['seconds'])}{star}, {pct(entry['success'])}"


def timing() -> str:
    rows = []
    for label, name in TIMING:
        t = setting(name)["timing"]
        cfg = t["aigan"]["config"]
        generator = f"{cfg.get('g_arch') or 'unet'}, width {cfg['g_ch']}"
        ratio = t["pgd20"]["seconds"] / t["aigan"]["seconds"]
        rows.append([label, generator, *(timed(t[k]) for k in TIMED), f"1/{ratio:.0f}",
                     cite(name)])
    rows.append(["paper, Table VI (MNIST, 1,000 attacks)", NONE,
                 *(PAPER["time"][k] for k in TIMED), NONE, NONE])
    return markdown(["setting", "AI-GAN generator", "FGSM", "PGD-20", "C&W L2",
                     "AdvGAN (width 16)", "AI-GAN", "AI-GAN / PGD-20 time", "JSON"], rows)


# The package's default generator (``aigan_tables.py --parts table6``), one file per setting.
TABLE6 = [("`mnist5k` Model B (shipped), eps 0.3", "aigan_table6_mnist5k-b.json"),
          ("`mnist5k` Model A, eps 0.3", "aigan_table6_mnist5k-a.json"),
          ("`fashion-mnist` Model B, eps 0.1", "aigan_table6_fashion-b-0.1.json")]
# The same settings with other generators, each trained by the default's command plus flags
# (``--default-flag``): what each departure from the default buys, at what speed. "one block"
# (``--g-res-blocks 1``; on fashion-mnist also 40 epochs of 16,000 images) also fills the
# weakest-targets table; on fashion-mnist the others train on fewer images or fewer epochs.
TABLE6_VARIANTS = {
    "aigan_table6_mnist5k-b.json": (("one block", "aigan_table6_mnist5k-b_res1.json"),),
    "aigan_table6_mnist5k-a.json": (("one block", "aigan_table6_mnist5k-a_res1.json"),),
    "aigan_table6_fashion-b-0.1.json": (
        ("one block", "aigan_table6_fashion-b-0.1_res1.json"),
        ("fewer images", "aigan_table6_fashion-b-0.1_16k-images_120-epochs.json"),
        ("fewer images, longer", "aigan_table6_fashion-b-0.1_200-epochs.json"),
        ("fewer epochs", "aigan_table6_fashion-b-0.1_60k-images_60-epochs.json")),
}
LEVERS = (("chunks", "cache-sized chunks"), ("fold_batchnorm", "batch norm folded"),
          ("channels_last", "channels-last weights"), ("bfloat16", "bfloat16 autocast"),
          ("served", "all, as served"))


def table6_parts() -> list[tuple[str, str, dict[str, Any]]]:
    """(label, file, its table6 part) for every committed table6 file."""
    return [(label, name, setting(name)["table6"]) for label, name in TABLE6
            if (RESULTS / name).is_file()]


def default_generator() -> str:
    """Table VI for the default generator: success beside PGD-100 / PGD-20 on the same
    pairs, seconds for the same 1,000 examples, the ratio, the training time."""
    rows = []
    for label, name, t6 in table6_parts():
        # the part's own thread count; a part that predates recording it ran with the
        # file's (a later run of another part rewrites the file's)
        tm = t6["timing"]
        threads = tm.get("threads", load(name).get("threads"))
        gap = 100 * (t6["pgd100"]["success"] - t6["default"]["success"])
        rows.append([label, t6["inference"]["precision"], pct(t6["default"]["success"]),
                     pct(t6["pgd100"]["success"]), pct(t6["pgd20"]["success"]),
                     f"{gap:.2f}", secs(tm["default"]), secs(tm["pgd20"]), secs(tm["pgd100"]),
                     f"1/{1 / tm['default_over_pgd20']:.0f}", str(threads),
                     secs(t6["train_seconds"]), cite(name)])
    if not rows:
        return NOTHING_YET
    rows.append(["paper, Table VI (MNIST)", NONE, "98.50% (Model B)", NONE, NONE, NONE,
                 PAPER["time"]["aigan"], PAPER["time"]["pgd20"], NONE, NONE, NONE, NONE,
                 NONE])
    return markdown(["setting", "serves in", "default G", "PGD-100", "PGD-20",
                     "points below PGD-100", "G, 1,000", "PGD-20, 1,000", "PGD-100, 1,000",
                     "G / PGD-20 time", "threads", "training", "JSON"], rows)


def default_levers() -> str:
    """What each inference lever buys alone, over the float32 reference path."""
    rows = []
    for label, name, t6 in table6_parts():
        lv = t6["levers"]
        sec, up = lv["seconds"], lv["speedup"]
        comp = lv.get("compile") or {}
        compiled = (f"{comp['speedup']:.2f}x" if "speedup" in comp
                    else ("not run" if not comp else "failed"))
        timed = (f"in turns, {lv['processes']} processes" if lv.get("in_turns")
                 else "one after another, 1 process")
        rows.append([label, secs(sec["reference"]),
                     *(f"{up[k]:.2f}x" for k, _ in LEVERS), compiled,
                     f"{sec['paper_unet_reference'] / sec['reference']:.1f}x slower",
                     timed, cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["setting", "reference (float32, one batch)", *(v for _, v in LEVERS),
                     "torch.compile (forward alone)", "paper U-Net, reference path", "timed",
                     "JSON"], rows)


def variants(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, file, table6 part) of every measured variant of ``name``'s setting."""
    return [(what, file, setting(file)["table6"]) for what, file in TABLE6_VARIANTS.get(name, ())
            if (RESULTS / file).is_file()]


def variant(name: str, what: str) -> dict[str, Any] | None:
    """The table6 part of ``name``'s setting with the variant ``what``, if measured."""
    return next((part for label, _, part in variants(name) if label == what), None)


def paper_configuration(name: str, t6: dict[str, Any]) -> dict[str, Any] | None:
    """The paper configuration's success on the default's pairs: the table6 part's own
    ``before``, else the same file's ``whitebox`` part where it counts the same pairs."""
    if t6.get("before"):
        return t6["before"]
    whitebox = setting(name).get("whitebox")
    if whitebox and whitebox.get("pairs") == t6["default"].get("pairs"):
        return whitebox
    return None


def generator_shape(name: str, t6: dict[str, Any]) -> str:
    """Residual blocks, epochs and training images of a table6 part's generator; the images
    come from the setting where the part predates recording them."""
    cfg = t6["config"]
    blocks = cfg.get("g_res_blocks", 1)
    images = t6.get("train_images") or setting(name)["train_images"]
    return (f"{blocks} residual block{'s' if blocks > 1 else ''}, {cfg['epochs']} epochs "
            f"of {images:,} images")


def default_variants() -> str:
    """The default generator beside its variants on the same pairs: success, its gap to
    PGD-100, forging time and its ratio to PGD-20's (each timed in its own run), training."""
    rows = []
    for label, name, t6 in table6_parts():
        others = variants(name)
        if not others:
            continue
        for what, file, part in [("default", name, t6), *others]:
            tm = part["timing"]
            gap = 100 * (part["pgd100"]["success"] - part["default"]["success"])
            flops = part.get("flops_per_example")
            rows.append([label, f"{what}: {generator_shape(file, part)}",
                         pct(part["default"]["success"]), f"{gap:.2f}",
                         f"{tm['default']:.3f} s", secs(tm["pgd20"]),
                         f"1/{1 / tm['default_over_pgd20']:.0f}", compiled_ratio(part),
                         f"1/{flops['pgd20'] / flops['default']:.0f}" if flops else NONE,
                         str(len(tm.get("processes", [])) or 1),
                         cores(tm.get("other_cores")), secs(part["train_seconds"]),
                         cite(file)])
    if not rows:
        return NOTHING_YET
    return markdown(["setting", "generator", "success", "points below PGD-100", "G, 1,000",
                     "PGD-20, 1,000", "G / PGD-20 time", "compiled G / PGD-20 time",
                     "G / PGD-20 FLOPs", "timed in (processes)",
                     "other processes (cores)", "training", "JSON"], rows)


def compiled_ratio(t6: dict[str, Any]) -> str:
    """The generator served through torch.compile over PGD-20, timed in the same rounds, with
    its first call's seconds (the compilation); "-" where not measured."""
    comp = t6.get("compiled")
    if not comp:
        return NONE
    if comp["failed"]:
        return "compile failed"
    tm = t6["timing"]
    return (f"1/{1 / tm['default_compiled_over_pgd20']:.0f} "
            f"(compiling {comp['first_call_seconds']:.0f} s)")


def cores(value: float | None) -> str:
    """Cores other processes kept busy while a timing ran ("-" where not recorded)."""
    return NONE if value is None else f"{value:.2f}"


def default_targets() -> str:
    """The default generator's three weakest targets, beside the one-block G's, the paper
    configuration's and (on ``fashion-mnist``) the same G on fewer training images."""
    rows = []
    for label, name, t6 in table6_parts():
        per = t6["default"]["per_target"]
        one, paper, fewer = (variant(name, "one block"), paper_configuration(name, t6),
                             variant(name, "fewer images"))
        others = (one and one["default"]["per_target"], paper and paper["per_target"],
                  fewer and fewer["default"]["per_target"])
        for t, v in sorted(per.items(), key=lambda kv: kv[1])[:3]:
            rows.append([label, t, pct(v), *(pct(o.get(t)) if o else NONE for o in others),
                         pct(t6["pgd100"]["per_target"].get(t)), cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["setting", "target", "default G", "one-block G", "paper configuration",
                     "fewer images", "PGD-100", "JSON"], rows)


DDP_CHECK = "ddp_check_mnist5k.json"


def ddp_check() -> str:
    """PGD-AT in one process and under torchrun: clean and PGD-10 accuracy side by side."""
    if not (RESULTS / DDP_CHECK).is_file():
        return NOTHING_YET
    record = load(DDP_CHECK)
    rows = [[label, f"{record['epochs']}", pct(r["clean"]), pct(r["pgd10"]),
             secs(r["wall_seconds"]), cite(DDP_CHECK)]
            for label, r in (("one process, two threads", record["results"]["ranks1"]),
                             ("torchrun, two ranks", record["results"]["ranks2"]))]
    return markdown(["run", "epochs", "clean", "PGD-10", "wall time", "JSON"], rows)


SELECTION = ["substitute_selection_mnist5k_margin.json",
             "substitute_selection_fashion-0.1_4k_margin.json"]
CANDIDATES = ("model_c", "model_a", "model_b", "lenet5")


def selection() -> str:
    rows = []
    for name in SELECTION:
        data = load(name)
        for target, r in data["results"].items():
            chosen = max(r["scores"], key=r["scores"].get)
            cells = [f"{r['scores'][c]:+.2f} / {pct(r['success'][c])}" for c in CANDIDATES]
            rows.append([f"`{data['dataset']}` {target}, eps {data['eps']:g}", *cells, chosen,
                         cite(name)])
    return markdown(["target", *CANDIDATES, "chosen", "JSON"], rows)


TRANSFER = "substitute_transfer_mnist5k-b_10ep.json"
TRANSFER_MODELS = {"distilled": "the run's distilled f_d (Model C)",
                   "model_c_on_labels": "Model C trained on labels",
                   "distilled_miss_weight_0.3": "f_d distilled with distill_miss_weight 0.3"}


def transfer() -> str:
    data = load(TRANSFER)
    rows = []
    for generator, r in data["results"].items():
        rows.append([f"{generator} generator", f"{r['pairs']:,}", pct(r["success_on_target"]),
                     *(pct(r[m]["success"]) for m in TRANSFER_MODELS), cite(TRANSFER)])
    return markdown(["AI-GAN, 10 epochs", "pairs", "on the target (Model B)",
                     *TRANSFER_MODELS.values(), "JSON"], rows)


AIGAN_DEFENDED = "aigan_defended_mnist5k.json"
ARCH_LABELS = {"model_a": "Model A", "model_b": "Model B"}
DEFENSE_LABELS = {"fgsm-at": "FGSM-AT (Adv.)", "ensemble-at": "ensemble AT (Ens.)",
                  "pgd-at": "PGD-AT (Iter.Adv)"}


def ours_paper(ours: float | None, paper: float | None) -> str:
    """``ours (paper)`` where the paper has a figure; ours a fraction, the paper's percent."""
    return pct(ours) if paper is None else f"{pct(ours)} ({paper_pct(paper)})"


def aigan_defended() -> str:
    """AI-GAN's Table V: success of examples crafted on the vanilla model, judged on its
    defended versions; the vanilla model's white-box success beside."""
    if not (RESULTS / AIGAN_DEFENDED).is_file():
        return NOTHING_YET
    data = load(AIGAN_DEFENDED)
    header, columns = ["attack"], []
    for arch in data["results"]:
        name = ARCH_LABELS.get(arch, arch)
        header.append(f"{name} vanilla, white-box")
        columns.append((arch, None))
        for defense in data["defenses"]:
            header.append(f"{name} {DEFENSE_LABELS.get(defense, defense)}")
            columns.append((arch, defense))

    def cell(arch: str, defense: str | None, attack: str) -> str:
        r = data["results"][arch]
        if defense is None:
            return pct(r.get("crafted", {}).get(attack, {}).get("whitebox_success"))
        paper = data["paper"].get(arch, {}).get(defense, {}).get(attack)
        return ours_paper(r.get("cells", {}).get(defense, {}).get(attack, {}).get("success"),
                          paper)

    rows = [[spec["label"], *(cell(a, d, attack) for a, d in columns), cite(AIGAN_DEFENDED)]
            for attack, spec in data["attacks"].items()]
    clean = [pct(data["results"][a]["models"].get(d or "vanilla", {}).get("clean_accuracy"))
             for a, d in columns]
    rows.append([f"clean accuracy (first {data['n']:,} test images)", *clean,
                 cite(AIGAN_DEFENDED)])
    return markdown([*header, "JSON"], rows)


DEFENSE_ROWS = {"A": "standard (A)", "B": "PGD-AT (B)", "C": "adversarial networks (C)",
                "EAT": "ensemble AT (EAT)"}
DEFENSE_COLUMNS = {"clean": "No Noise", "fgs": "FGS", "pgd10": "PGD-10",
                   "cascade": "cascade worst case", **{
                       f"{kind}({s}')": f"{kind}({s}')" for s in "ABC" for kind in ("FGS", "PGD")}}


def defense_files() -> list[str]:
    """The committed ``defense_tables.py`` results (not its --smoke files)."""
    return sorted(p.name for p in RESULTS.glob("defense_tables_*.json")
                  if not p.name.endswith("-smoke.json"))


def defense_tables() -> str:
    """Wang & Yu's Tables 1 and 4, one table per committed file: ours (paper)."""
    names = defense_files()
    if not names:
        return NOTHING_YET
    parts = []
    for name in names:
        data = load(name)
        paper = data.get("paper") or {}
        rows = []
        for key, label in DEFENSE_ROWS.items():
            row = data["rows"].get(key)
            if row is None:
                continue
            ours = {**row, **row.get("blackbox", {})}
            rows.append([label, *(ours_paper(ours.get(c), paper.get(key, {}).get(c))
                                  for c in DEFENSE_COLUMNS), cite(name)])
        limit = data.get("limit_train")
        trained = f", models trained on the first {limit:,} images" if limit else ""
        parts.append(f"**`{data['dataset']}`, `{data['arch']}`, eps {data['eps']:g}, first "
                     f"{data['n']:,} test images{trained}**\n\n"
                     + markdown(["training", *DEFENSE_COLUMNS.values(), "JSON"], rows))
    return "\n\n".join(parts)


def generator_files() -> list[str]:
    """The committed ``generator_tables.py`` results (not its --smoke files)."""
    return sorted(p.name for p in RESULTS.glob("generator_tables_*.json")
                  if not p.name.endswith("-smoke.json"))


GENERATOR_TABLE6 = {"clean": "No Noise", "fgs": "FGS", "pgd10": "PGD-10",
                    **{f"{kind}({s}')": f"{kind}({s}')" for s in "AB" for kind in ("FGS", "PGD")}}


def generator_tables() -> str:
    """Wang & Yu's Tables 5 (10, 11) and 6 per committed file: ours (the paper's CIFAR-10)."""
    parts = []
    for name in generator_files():
        data = load(name)
        paper = data.get("paper") or {}
        labels = {"original": "no noise", **{k: f"{v['label']} (`{v['generator']}`, k = "
                                                f"{v['width']})"
                                             for k, v in data["variants"].items()}}
        limit = data.get("limit_train")
        where = (f"`{data['dataset']}`, `{data['arch']}`, eps {data['eps']:g}, first "
                 f"{data['n']:,} test images"
                 + (f", models and generators trained on the first {limit:,} images"
                    if limit else ""))
        for key in sorted(k for k in data if k.startswith("table") and k != "table6"):
            table = data[key]
            theirs = paper.get(key, {}).get("rows", {})
            rows = [[labels.get(row, row), *(ours_paper(cells.get(c), theirs.get(row, {}).get(c))
                                              for c in table["columns"]), cite(name)]
                    for row, cells in table["rows"].items()]
            parts.append(f"**{key.replace('table', 'Table ')}: generators attacking the fixed "
                         f"model {table['target']} ({where})**\n\n"
                         + markdown(["perturbation", *table["columns"], "JSON"], rows))
        if "table6" in data:
            theirs = paper.get("table6", {}).get("rows", {})
            rows = [[labels.get(row, row), *(ours_paper(cells.get(c), theirs.get(row, {}).get(c))
                                              for c in GENERATOR_TABLE6), cite(name)]
                    for row, cells in data["table6"]["rows"].items()]
            parts.append(f"**Table 6: adversarial networks co-trained with each generator "
                         f"({where})**\n\n"
                         + markdown(["generator", *GENERATOR_TABLE6.values(), "JSON"], rows))
    return "\n\n".join(parts) if parts else NOTHING_YET


# ---------------------------------------------------------------- README.md's headline table

def epochs(record: dict[str, Any], part: str) -> str:
    return f"{record[part]['config']['epochs']} epochs"


def headline_rows() -> list[tuple[str, str, str, str, str]]:
    """(what, advforge, beside it, paper, file) for README.md's results table."""
    a, b = setting(WHITEBOX[0][1]), setting(WHITEBOX[1][1])
    bb_a = setting(BLACKBOX[0][1])
    t = setting(TIMING[1][1])["timing"]
    rows = []
    if (RESULTS / CLASSIFIERS).is_file():
        rows += [(f"`{r['arch']}` on `{r['dataset']}`, test accuracy (CLI defaults)",
                  pct(r["test_accuracy"]), f"trained in {secs(r['train_seconds'])}", NONE,
                  CLASSIFIERS) for r in load(CLASSIFIERS)["rows"]
                 if r["arch"] in HEADLINE_CLASSIFIERS]
    rows += [
        (f"AI-GAN white-box, `mnist5k` Model A, eps 0.3, {epochs(a, 'whitebox')}",
         pct(a["whitebox"]["success"]), f"PGD-100 {pct(a['pgd100']['success'])}",
         paper_pct(PAPER["whitebox"]["model_a"][0]), WHITEBOX[0][1]),
        (f"AI-GAN white-box, `mnist5k` Model B, eps 0.3, {epochs(b, 'whitebox')}",
         pct(b["whitebox"]["success"]),
         f"PGD-100 {pct(b['pgd100']['success'])}, AdvGAN {pct(b['advgan']['success'])}",
         paper_pct(PAPER["whitebox"]["model_b"][0]), WHITEBOX[1][1]),
        (f"AI-GAN black-box, `mnist5k` Model A, {epochs(bb_a, 'blackbox')}, Model A "
         "substitute, target_focus 0.5", pct(bb_a["blackbox"]["success"]),
         f"white-box {pct(bb_a['whitebox']['success'])}",
         paper_pct(PAPER["blackbox"]["model_a"]), BLACKBOX[0][1]),
    ]
    rows += default_headline() or [
        ("1,000 targeted examples, `mnist5k` Model B, paper-configuration generator, one CPU "
         "thread", f"AI-GAN {secs(t['aigan']['seconds'])}",
         f"PGD-20 {secs(t['pgd20']['seconds'])}",
         f"AI-GAN {PAPER['time']['aigan']}, PGD-20 {PAPER['time']['pgd20']}", TIMING[1][1])]
    rows += ae4dnn_headline()
    rows += fi_at_headline()
    return rows


def default_headline() -> list[tuple[str, str, str, str, str]]:
    """The default AI-GAN generator per table6 setting: success and time for 1,000."""
    rows = []
    for label, name, t6 in table6_parts():
        tm = t6["timing"]
        rows.append((f"default AI-GAN G, {label}: success; 1,000 in",
                     f"{pct(t6['default']['success'])}, {secs(tm['default'])}",
                     f"PGD-100 {pct(t6['pgd100']['success'])}; PGD-20 {secs(tm['pgd20'])} "
                     f"(1/{1 / tm['default_over_pgd20']:.0f})",
                     f"{PAPER['time']['aigan']} (PGD-20 {PAPER['time']['pgd20']})", name))
    return rows


def fi_at_headline() -> list[tuple[str, str, str, str, str]]:
    """Influence-guided fine-tuning at the defaults over the full splits of
    ``fashion-mnist`` (where Algorithm 2 finds enough images to measure): the test-split set
    Adv2 and clean test accuracy before and after. One row: the paper's model (ResNet32)
    once it is measured so, else Model B."""
    runs = []
    for name, label, part in fi_pso_parts("table3"):
        extra = part["command"].split(" --out ", 1)[-1].partition(" ")[2]
        if label.startswith("`fashion-mnist`") and not extra:
            runs.append((not label.endswith("resnet32"), name, label, part))
    if not runs:
        return []
    _, name, label, part = min(runs)
    before, after = (part["table3"][m] for m in ("original", "fine_tuned"))
    theirs = PAPER["fi_at"]
    return [(f"`fi-at`, {label}: accuracy on the test-split FI + PSO set; clean",
             f"{pct(before['adv_test']['accuracy'])} to {pct(after['adv_test']['accuracy'])} "
             f"(n = {after['adv_test']['n']:,}); {pct(before['test']['accuracy'])} to "
             f"{pct(after['test']['accuracy'])}",
             f"train-split set {pct(before['adv_train']['accuracy'])} to "
             f"{pct(after['adv_train']['accuracy'])}",
             f"0% to {paper_pct(theirs['adv_test'])}; {paper_pct(theirs['clean'][0])} to "
             f"{paper_pct(theirs['clean'][1])}", name)]


def ae4dnn_headline() -> list[tuple[str, str, str, str, str]]:
    """AE4DNN at the beta its rule chose, on ``mnist5k``, beside AAE at the nearest mean L2."""
    name = "ae4dnn_mnist5k.json"
    if not (RESULTS / name).is_file() or "table3" not in load(name):
        return []
    part = load(name)["table3"]
    row = next((r for r in part["rows"] if r["beta"] == part["chosen_beta"]), None)
    if row is None:
        return []
    a, b = (row[k]["sets"]["outside_S"] for k in ("ae4dnn", "atn"))
    return [(f"AE4DNN target 7, `mnist5k` Model B, beta {row['beta']:g} by its rule: valid "
             f"examples (L2 <= 6.5) on the {a['inputs']:,} inputs outside S",
             f"{pct(a['rate'])}, mean L2 {l2(a['mean_l2'])}",
             f"AAE (phi {row['phi']:g}) {pct(b['rate'])}, mean L2 {l2(b['mean_l2'])}",
             f"{PAPER['ae4dnn']['rate_d']}% / {PAPER['ae4dnn']['rate_e']}% (D / E)", name)]


def headline() -> str:
    rows = [[what, ours, beside, paper, cite(f"benchmarks/results/{name}")]
            for what, ours, beside, paper, name in headline_rows()]
    return markdown(["measurement", "advforge", "beside it", "paper (MNIST)", "JSON"], rows)


APGD_AGREEMENT = "apgd_agreement_mnist5k.json"  # always committed; other datasets when run


def apgd_agreement_files() -> list[str]:
    return sorted({APGD_AGREEMENT, *(f.name for f in RESULTS.glob("apgd_agreement_*.json"))})


def apgd_agreement() -> str:
    rows = []
    for name in apgd_agreement_files():
        data = load(name)
        path = Path(data["model"])  # a defense_tables model is named by its layout dir too
        model = f"{path.parent.name}/{path.name}" if len(path.name) <= 3 else path.name
        for attack, r in data["rows"].items():
            rows.append([attack, f"`{data['dataset']}` {model}, eps {data['eps']:g}",
                         f"{data['n']} (clean {pct(data['clean_accuracy'])})",
                         pct(r["ours"]["robust_accuracy"]), pct(r["theirs"]["robust_accuracy"]),
                         secs(r["ours"]["seconds_median"]), secs(r["theirs"]["seconds_median"]),
                         f"{r['time_ratio']:.2f}", cite(name)])
    return markdown(["attack (100 steps)", "model", "images", "robust acc. ours",
                     "torchattacks", "ours", "torchattacks", "time ratio", "JSON"], rows)


ROBUSTNESS = "robustness_pgd-at_model_b_mnist5k.json"


def robustness() -> str:
    """``advforge robustness`` on the PGD-AT Model B: each step of the cascade."""
    data = load(ROBUSTNESS)
    rows = [["clean", NONE, pct(data["clean_accuracy"]), NONE, cite(ROBUSTNESS)]]
    for step in data["attacks"]:
        hyper = step["hyper"]
        budget = hyper.get("n_queries", hyper.get("steps"))
        unit = "queries" if "n_queries" in hyper else "steps"
        rows.append([f"{step['attack']} ({budget} {unit})", str(step["added"]),
                     pct(step["robust_accuracy"]), secs(step["seconds"]), cite(ROBUSTNESS)])
    rows.append(["worst case", NONE, pct(data["robust_accuracy"]), NONE, cite(ROBUSTNESS)])
    return markdown([f"`mnist5k` PGD-AT Model B, eps {data['eps']:g}, first {data['n']} "
                     "test images", "newly fooled", "robust accuracy", "time", "JSON"], rows)


AUDITS = {"PGD-AT Model B": "robustness_audit_pgd-at_model_b_mnist5k.json",
          "adv-net D1": "robustness_audit_adv-net_d1_mnist5k.json"}


def robustness_audit() -> str:
    """The gradient-masking audit of ``advforge robustness`` on each defended model: one row
    per check, each model's verdict and figures."""
    reports = {name: load(file) for name, file in AUDITS.items()}
    checks: dict[str, dict[str, Any]] = {}
    for name, data in reports.items():
        for check in data["audit"]:
            checks.setdefault(check["name"], {})[name] = check
    rows = []
    for check, by_model in checks.items():
        cells = []
        for name in reports:
            c = by_model.get(name)
            verdict = {True: "pass", False: "**FLAG**", None: "info"}[c["passed"]] if c else NONE
            cells.append(f"{verdict}: {c['detail']}" if c else NONE)
        rows.append([f"`{check}`", *cells])
    header = ["check (eps 0.3, first "
              + "/".join(str(d["n"]) for d in reports.values()) + " test images)",
              *(f"{name} (`{file}`)" for name, file in AUDITS.items())]
    return markdown(header, rows)


ADVNET_SCHEDULE = "advnet_schedule_mnist5k-d1.json"


def advnet_schedule() -> str:
    """Adversarial networks on ``mnist5k``: each schedule's accuracy at each checkpoint."""
    if not (RESULTS / ADVNET_SCHEDULE).is_file():
        return NOTHING_YET
    data = load(ADVNET_SCHEDULE)
    rows = []
    for name, entry in data["variants"].items():
        flags = " ".join(entry["flags"]) or "(recipe)"
        for c in entry["checkpoints"]:
            rows.append([f"{name}: `{flags}`", str(c["epoch"]), str(c["d_updates"]),
                         secs(c["train_seconds"]), pct(c["clean"]), pct(c["g_noise"]),
                         pct(c["fgs"]), pct(c["pgd10"]), cite(ADVNET_SCHEDULE)])
    return markdown([f"variant (eps {data['eps']:g}, first {data['n']} test images)", "epoch",
                     "D updates", "train time", "clean", "G's noise", "FGS", "PGD-10", "JSON"],
                    rows)


# ---------------------------------------------------------------- FI + PSO (Shi et al. 2020)

def fi_pso_files() -> list[str]:
    """``fi_pso_<dataset>_<arch>.json``, ``mnist5k`` first."""
    return sorted((f.name for f in RESULTS.glob("fi_pso_*.json")),
                  key=lambda n: (not n.startswith("fi_pso_mnist5k"), n))


def fi_pso_parts(part: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(file, "dataset / arch", that part's record) for every file holding ``part``."""
    out = []
    for name in fi_pso_files():
        data = load(name)
        if part in data:
            out.append((name, f"`{data['dataset']}` {data['arch']}", data[part]))
    return out


def fi_pso_measure() -> str:
    """The FI measure: its speed and how image FI relates to confidence."""
    rows = []
    for name, label in ((n, lbl) for n, lbl, _ in fi_pso_parts("fi_speed")):
        data = load(name)
        speed = data["fi_speed"]
        for split in ("train", "test"):
            rel = data.get("survey", {}).get(split, {}).get("confidence_relation")
            if rel is None:
                continue
            dev = rel["max_relative_deviation"]
            rows.append([label, f"{speed['images']:,} in {secs(speed['seconds'])} "
                         f"({speed['threads']} thread)", f"{split} ({rel['n']:,})",
                         f"{rel['spearman']:.3f}", NONE if dev is None else f"{dev:.1e}",
                         f"{rel['kept_by_fi']} / {rel['kept_by_confidence']}", cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["model", "both FI levels (bar 10 s)", "split (images)",
                     "Spearman(image FI, p(true))", "largest relative gap of FI from (1-p)/p",
                     "kept: FI >= 0.2 / p(true) <= 0.833", "JSON"], rows)


def fi_pso_fig4() -> str:
    """Fig. 4's nine settings, success over n images each."""
    rows = []
    parts = [(n, lbl, p, "first correctly classified")
             for key in ("fig4", "fig4@prob") for n, lbl, p in fi_pso_parts(key)]
    parts += [(n, lbl, p, "largest image FI") for n, lbl, p in fi_pso_parts("fig4_vulnerable")]
    for name, label, part, images in parts:
        for r in part["rows"]:
            pixels = NONE if "median_pixels" not in r else str(r["median_pixels"])
            rows.append([label, r["setting"]["name"], part.get("scale", "log"),
                         f"{r['n']}, {images}", pct(r["met"]),
                         pct(r["misclassified"]), pixels, f"{r['mean_l0']:.1f}",
                         f"{r['mean_l2']:.2f}", secs(r["seconds_per_image"]), cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["model", "setting", "f0 scale", "images", "requirements met",
                     "misclassified",
                     "median m searched", "mean L0", "mean L2", "time per image", "JSON"], rows)


def fi_pso_speed() -> str:
    """PSO, all pixels: seconds per image (bar 2 s at N_p = 200, T = 100)."""
    verdict = {True: "yes", False: "**no**", None: NONE}
    rows = [[label, f"N_p {part['particles']}, T {part['iters']}", r["setting"],
             secs(r["seconds_per_image"]), f"{r['mean_iterations']:.0f}",
             pct(r.get("met")), NONE if "mean_l2" not in r else f"{r['mean_l2']:.2f}",
             verdict[r["passes"]], f"{part['threads']}", cite(name)]
            for name, label, part in fi_pso_parts("pso_speed") for r in part["rows"]]
    if not rows:
        return NOTHING_YET
    return markdown(["model", "swarm", "setting (16 images batched)", "time per image",
                     "iterations", "requirements met", "mean L2",
                     "within 2 s", "threads", "JSON"], rows)


def fi_pso_universality() -> str:
    """Table 2: one P_err = 0.99 perturbation on every other class; ours (paper)."""
    rows = []
    for name, label, part in fi_pso_parts("universality"):
        paper = part["paper"]
        for variant in part["variants"]:
            for split in ("train", "test"):
                table = variant[split]
                cells = [f"{k}: {pct(v['misclassified'])} / {pct(v['to_target'])}"
                         for k, v in table["per_class"].items() if int(k) != table["target"]]
                total = table["total"]
                rows.append([label, f"{variant['name']}: class {part['source_class']} image, "
                             f"L2 {variant['l2']:.2f}, p = {variant['probability']:.3f} to "
                             f"class {table['target']}", split, "; ".join(cells),
                             f"{pct(total['misclassified'])} / {pct(total['to_target'])}",
                             f"{paper_pct(paper[split]['total'][0])} / "
                             f"{paper_pct(paper[split]['total'][1])}", cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["model", "perturbation", "split",
                     "per true class: misclassified / to the target",
                     "total: misclassified / to the target",
                     "paper total (MNIST, ResNet32, to class 4)", "JSON"], rows)


FI_AT_CELLS = (("adv_train", "Adv1"), ("train_plus_adv_train", "train + Adv1"),
               ("adv_test", "Adv2"), ("test", "clean test"),
               ("test_plus_adv_test", "test + Adv2"),
               ("adv_test_sources", "Adv2's clean sources"))


def fi_pso_table3() -> str:
    """Table 3: fine-tuning on Algorithm 2's set; ours (paper), every cell with its n."""
    rows = []
    runs = [(name, f"`{data['dataset']}` {data['arch']}", data[key])
            for name in fi_pso_files() for data in [load(name)]
            for key in sorted(data) if key == "table3" or key.startswith("table3@")]
    for name, label, part in runs:
        a2, success = part["algorithm2"], part["targeted_success"]
        extra = part["command"].split(" --out ", 1)[-1].partition(" ")[2]
        found = (f"`{extra}`; " if extra else "") + "; ".join(
            f"{p}: {a2[p]['selected']} selected, {a2[p]['succeeded']}/{a2[p]['attacked']} "
            f"attacked met the target ({pct(success[p])})" for p in ("train", "test"))
        for model in ("original", "fine_tuned"):
            cells = []
            for key, _ in FI_AT_CELLS:
                cell = part["table3"][model].get(key)
                if cell is None:  # a run whose sets predate their source rows
                    cells.append(NONE)
                    continue
                theirs = part["paper"][model].get(key)
                cells.append(f"{pct(cell['accuracy'])} (n={cell['n']:,}"
                             + (f"; paper {paper_pct(theirs)})" if theirs is not None else ")"))
            rows.append([label, model.replace("_", "-"), *cells,
                         found if model == "original" else NONE, cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["model", "row", *(t for _, t in FI_AT_CELLS), "Algorithm 2", "JSON"], rows)


# ---------------------------------------------------------------- AE4DNN and ATN/AAE

def ae4dnn_files() -> list[str]:
    """``ae4dnn_<dataset>.json``, ``mnist5k`` first."""
    return sorted((f.name for f in RESULTS.glob("ae4dnn_*.json")),
                  key=lambda n: (n != "ae4dnn_mnist5k.json", n))


def ae4dnn_parts(part: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(file, dataset, that part's record, the paper's figures) for every file holding it."""
    out = []
    for name in ae4dnn_files():
        data = load(name)
        if part in data:
            out.append((name, f"`{data['dataset']}`", data[part], data["paper"]))
    return out


def l2(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def ae4dnn_bound() -> str:
    """Formula 3's bound on beta over S: mean +- std over the initialisations."""
    rows = []
    for name, dataset, part, paper in ae4dnn_parts("bound"):
        for init, label in (("start_at_mean", "output at S's mean (as trained)"),
                            ("default_init", "default output bias (sigmoid ~0.5)")):
            for ce in ("paper", "authors"):
                b = part[init][ce]
                rows.append([dataset, label, {"paper": "-log p_t (paper)",
                                              "authors": "16.1 (1 - p_t) (authors' code)"}[ce],
                             f"{b['mean']:.4f} +- {b['std']:.4f} ({part['inits']} inits)",
                             f"{paper['bound']['mean']} +- {paper['bound']['std']}",
                             cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["data", "g at init", "cross-entropy", "bound", "paper", "JSON"], rows)


def _sweep_table(part_name: str, weight: str, paper_key: str) -> str:
    rows = []
    for name, dataset, part, paper in ae4dnn_parts(part_name):
        table = paper[paper_key]
        theirs = dict(zip(table[weight], zip(table["mean_l2"], table["adv"], strict=True),
                          strict=True))
        for r in part["rows"]:
            mark = " (chosen)" if r[weight] == part["chosen"] else ""
            their = theirs.get(r[weight])
            rows.append([dataset, f"{r[weight]:g}{mark}", l2(r["mean_l2"]),
                         f"{r['valid']} / {r['inputs']}", pct(r["heldout_rate"]),
                         f"{r['epochs']}", secs(r["train_seconds"]),
                         NONE if their is None else f"{their[0]} / {their[1]}", cite(name)])
        paper_only = [f"{w:g}: {a} / {b}" for w, (a, b) in theirs.items()
                      if w not in [r[weight] for r in part["rows"]]]
        if paper_only:
            rows.append([dataset, "paper", NONE, NONE, NONE, NONE, NONE,
                         "; ".join(paper_only), cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["data", weight, "mean L2 on S", "valid on S", "held-out rate",
                     "epochs", "train", "paper: mean L2 / #adv", "JSON"], rows)


def ae4dnn_table1() -> str:
    """Table I: the beta sweep of ``--beta auto`` (fractions of Formula 3's bound)."""
    return _sweep_table("sweep", "beta", "table1")


def ae4dnn_table2() -> str:
    """Table II: the AAE phi sweep (``--phi auto``), then the wider phis of ``aae_wide``."""
    text = _sweep_table("aae", "phi", "table2")
    wide = _sweep_table("aae_wide", "phi", "table2")
    if wide == NOTHING_YET:
        return text
    return text + "\n" + "\n".join(line for line in wide.splitlines()[2:]
                                   if "| paper |" not in line)


def ae4dnn_table3() -> str:
    """Table III: matched pairs, adversarial rate on inputs never used in training."""
    rows = []
    for name, dataset, part, _ in ae4dnn_parts("table3"):
        sets = part["sets"]
        for r in part["rows"]:
            a, b = r["ae4dnn"], r["atn"]
            cells = [f"{pct(a['sets'][k]['rate'])} / {pct(b['sets'][k]['rate'])}"
                     for k in sets]
            rows.append([dataset, f"{r['beta']:g}", f"{r['phi']:g}",
                         f"{l2(a['sets']['outside_S']['mean_l2'])} / "
                         f"{l2(b['sets']['outside_S']['mean_l2'])}", *cells,
                         f"{secs(a['forge_seconds_10k'])} / {secs(b['forge_seconds_10k'])}",
                         cite(name)])
        header = ["data", "beta", "phi", "mean L2 AE4DNN / AAE",
                  *(f"rate {k} (n={n:,}) AE4DNN / AAE" for k, n in sets.items()),
                  "10,000 forged AE4DNN / AAE", "JSON"]
    if not rows:
        return NOTHING_YET
    return markdown(header, rows)


def ae4dnn_table5() -> str:
    """Table V: transfer of the first 1,000 test images' examples to the zoo's models."""
    rows, models = [], []
    for name, dataset, part, _ in ae4dnn_parts("transfer"):
        models = list(part["zoo"])
        for r in part["rows"]:
            cells = [" / ".join(f"{pct(r[k]['transfer'][m]['of_valid'])} "
                                f"({pct(r[k]['transfer'][m]['of_inputs'])})"
                                for k in ("ae4dnn", "atn")) for m in models]
            rows.append([dataset, f"{r['beta']:g}", f"{r['phi']:g}",
                         f"{r['ae4dnn']['source_valid']} / {r['atn']['source_valid']}",
                         *cells, cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["data", "beta", "phi", "valid on the source AE4DNN / AAE",
                     *(f"{m} AE4DNN / AAE" for m in models), "JSON"], rows)


def ae4dnn_table4() -> str:
    """Table IV: min / max L2 and total time on S."""
    rows = []
    labels = {"ae4dnn": "AE4DNN (train + forge)", "lbfgs": "box-constrained L-BFGS",
              "cw_l2": "C&W L2"}
    for name, dataset, part, paper in ae4dnn_parts("table4"):
        for key, label in labels.items():
            r, theirs = part[key], paper["table4"][key]
            rows.append([dataset, label, f"{r['adversarial']} / {r['valid']} of {part['n']}",
                         f"{l2(r['min_l2'])} - {l2(r['max_l2'])}", secs(r["seconds"]),
                         f"{theirs['min_l2']} - {theirs['max_l2']}, ~{theirs['minutes']} min",
                         cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["data", "method", "adversarial / valid (L2 <= 6.5)", "min - max L2",
                     "time", "paper", "JSON"], rows)


def ae4dnn_timing() -> str:
    """One autoencoder's training and 10,000 forged examples (bars: 2 min, 2 s)."""
    rows = []
    for name, dataset, part, paper in ae4dnn_parts("timing"):
        rows.append([dataset, f"{part['beta']:g}", str(part["threads"]),
                     ", ".join(f"{v:.2f}" for v in part["load_average_before"]),
                     f"{secs(part['train_seconds'])} ({part['epochs']} epochs)",
                     secs(part["forge_seconds_10k"]), pct(part["heldout_rate"]),
                     f"~1 min, {paper['table3']['forge_seconds_10k']} s", cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["data", "beta", "threads", "load average before", "training (bar 2 min)",
                     "10,000 forged (bar 2 s)", "held-out rate", "paper", "JSON"], rows)


def ae4dnn_all_targets() -> str:
    """``--target all`` at the chosen weights: held-out rate per target."""
    rows = []
    for kind, weight, part_name in (("ae4dnn", "beta", "all_targets"),
                                    ("atn", "phi", "all_targets_aae")):
        for name, dataset, part, _ in ae4dnn_parts(part_name):
            r = part[kind]
            per = ", ".join(f"{t}: {pct(v['rate'])}" for t, v in r["per_target"].items())
            rows.append([dataset, f"{kind} {weight}={r[weight]:g}", pct(r["heldout"]["rate"]),
                         per, secs(r["train_seconds"]), cite(name)])
    if not rows:
        return NOTHING_YET
    return markdown(["data", "attacker", "held-out rate, all targets", "per target",
                     "training", "JSON"], rows)


TABLES: dict[str, Callable[[], str]] = {
    "headline": headline, "classifiers": classifiers, "attack-speed": attack_speed,
    "aigan-whitebox": whitebox, "aigan-blackbox": blackbox, "aigan-timing": timing,
    "aigan-default": default_generator, "aigan-default-levers": default_levers,
    "aigan-default-targets": default_targets, "aigan-default-variants": default_variants,
    "ddp-check": ddp_check,
    "substitute-selection": selection, "substitute-transfer": transfer,
    "aigan-defended": aigan_defended, "defense-tables": defense_tables,
    "generator-tables": generator_tables,
    "apgd-agreement": apgd_agreement, "robustness": robustness,
    "advnet-schedule": advnet_schedule, "robustness-audit": robustness_audit,
    "fi-pso-measure": fi_pso_measure, "fi-pso-fig4": fi_pso_fig4, "fi-pso-speed": fi_pso_speed,
    "fi-pso-universality": fi_pso_universality, "fi-pso-table3": fi_pso_table3,
    "ae4dnn-bound": ae4dnn_bound, "ae4dnn-table1": ae4dnn_table1,
    "ae4dnn-table2": ae4dnn_table2, "ae4dnn-table3": ae4dnn_table3,
    "ae4dnn-table5": ae4dnn_table5, "ae4dnn-table4": ae4dnn_table4,
    "ae4dnn-all-targets": ae4dnn_all_targets, "ae4dnn-timing": ae4dnn_timing,
}


def cited_files() -> list[str]:
    """Every result file a table row names (the classifier, Table V and defense-table files
    only when they exist)."""
    names = ["attack_speed.json", *apgd_agreement_files(), ROBUSTNESS, TRANSFER, *SELECTION,
             *AUDITS.values(),
             *defense_files(), *generator_files(), *fi_pso_files(), *ae4dnn_files(),
             *(n for _, n, _ in table6_parts()),
             *(f for _, n, _ in table6_parts() for _, f, _ in variants(n)),
             *(n for _, n in WHITEBOX + BLACKBOX + TIMING)]
    names += [n for n in (AIGAN_DEFENDED, ADVNET_SCHEDULE, DDP_CHECK) if (RESULTS / n).is_file()]
    names += [f.name for f in RESULTS.glob("classifiers_*.json")]
    return sorted(set(names))


# ---------------------------------------------------------------- regions in the documents

REGION = re.compile(r"(<!-- tables\.py: ([a-z0-9-]+) -->\n).*?(<!-- /tables\.py: \2 -->)", re.S)


def render(text: str) -> str:
    """``text`` with every marked region replaced by its freshly generated table."""
    def fill(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r} in a tables.py marker")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(3)}"

    return REGION.sub(fill, text)


def regions(text: str) -> list[str]:
    return [m.group(2) for m in REGION.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate the benchmark tables from the JSON.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the marked regions")
    mode.add_argument("--check", action="store_true", help="exit 1 if a region is stale")
    args = p.parse_args(argv)
    if not (args.write or args.check):
        for name, make in TABLES.items():
            print(f"## {name}\n\n{make()}\n")
        return 0
    stale = []
    for doc in DOCUMENTS:
        path = ROOT / doc
        text = path.read_text(encoding="utf-8")
        fresh = render(text)
        if fresh != text:
            stale.append(doc)
            if args.write:
                path.write_text(fresh, encoding="utf-8")
    if args.check and stale:
        print("out of date (run python benchmarks/tables.py --write): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
