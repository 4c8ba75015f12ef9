"""Print one setting's tables, the paper's MNIST figure beside ours."""

from __future__ import annotations

from typing import Any

from aigan_bench.cache import config_difference
from aigan_bench.paper import PAPER


def pct(v: float | None) -> str:
    """A rate as a percentage, "-" when undefined."""
    return "-" if v is None else f"{100 * v:6.2f}%"


def paper(v: float | None) -> str:
    """A paper figure (already in percent), "-" when the paper has none."""
    return "-" if v is None else f"{v:6.2f}%"


def print_setting(name: str, arch: str | None, res: dict[str, Any]) -> None:
    """The four tables of one setting, the paper's MNIST figure beside ours."""
    mnist = res.get("dataset") == "mnist5k" and arch in ("model_a", "model_b")
    paper_arch = arch if mnist else None  # the paper's figures apply to MNIST Models A and B
    print(f"\n=== {name}: {res.get('dataset')} / {arch} / eps {res.get('eps')} ===")
    if res.get("whitebox") or res.get("pgd100") or res.get("advgan"):
        print_whitebox(res, paper_arch)
    if tm := res.get("timing"):
        print_timing(tm)
    if bb := res.get("blackbox"):
        print_blackbox(bb, res.get("whitebox"), paper_arch)
    if ab := res.get("ablation"):
        print_ablation(ab, res.get("whitebox"))
    if t6 := res.get("table6"):
        print_table6(t6)


def print_table6(t6: dict[str, Any]) -> None:
    """Table VI for the package's default generator: success beside PGD-100 and PGD-20 on
    the same pairs, time for the same 1,000 examples, the levers, the weakest targets."""
    tm, gen = t6["timing"], t6["default"]
    gap = t6["pgd100"]["success"] - gen["success"]
    ratio = 1 / tm["default_over_pgd20"]  # the median over processes of each one's ratio
    print(f"Table VI, default generator ({t6['inference']['precision']}; trained in "
          f"{t6['train_seconds']:.0f}s)")
    print(f"  success over {gen['pairs']} pairs: default {pct(gen['success'])}, "
          f"PGD-100 {pct(t6['pgd100']['success'])}, PGD-20 {pct(t6['pgd20']['success'])}; "
          f"gap to PGD-100 {100 * gap:.2f} points ({'PASS' if gap <= 0.02 else 'FAIL'} <= 2)")
    print(f"  seconds for {tm['n']}: default {tm['default']:.3f}, PGD-20 {tm['pgd20']:.2f}, "
          f"PGD-100 {tm['pgd100']:.2f}; PGD-20 / default = {ratio:.0f} "
          f"({'PASS' if ratio >= 100 else 'FAIL'} >= 100; paper {PAPER['table6']['pgd20']} / "
          f"{PAPER['table6']['aigan']})")
    if flops := t6.get("flops_per_example"):
        print(f"  MFLOPs per example: default {flops['default'] / 1e6:.1f}, PGD-20 "
              f"{flops['pgd20'] / 1e6:.0f} (1/{flops['pgd20'] / flops['default']:.0f})")
    if comp := t6.get("compiled"):
        if comp["failed"]:
            print(f"  compiled G: torch.compile failed here ({comp['failed']}); eager figures")
        else:
            print(f"  compiled G (torch.compile): {tm['default_compiled']:.3f} s, PGD-20 / "
                  f"compiled = {1 / tm['default_compiled_over_pgd20']:.0f}; its first call "
                  f"(compiling) took {comp['first_call_seconds']:.1f} s")
    if (others := tm.get("other_cores")) is not None and others > 0.1:
        print(f"  note: other processes kept {others:.1f} cores busy while this was timed")
    lv = t6["levers"]
    print("  inference levers alone (speed-up over float32, one batch, unfolded, NCHW): "
          + ", ".join(f"{k} {v:.2f}x" for k, v in lv["speedup"].items() if k != "reference"))
    if (comp := lv.get("compile")) and "speedup" in comp:
        print(f"  torch.compile on the forward alone: {comp['speedup']:.2f}x "
              f"(compiling took {comp['compile_seconds']:.0f}s)")
    before = t6.get("before")
    weakest = sorted(gen["per_target"].items(), key=lambda kv: kv[1])[:3]
    print("  weakest targets (default" + (", paper configuration)" if before else ")") + ": "
          + ", ".join(f"{t}: {pct(v)}" + (f" ({pct(before['per_target'].get(str(t)))})"
                                          if before else "") for t, v in weakest))


def print_whitebox(res: dict[str, Any], arch: str | None) -> None:
    """Tables II and III: success by target class of AI-GAN, PGD-100 (both losses), AdvGAN."""
    wb, pgd, adv = res.get("whitebox"), res.get("pgd100"), res.get("advgan")
    pgd_ce = res.get("pgd100_ce")
    paper2 = PAPER["table2"][arch] if arch else [None] * 10
    print("Table II/III (targeted success by target class; success over correctly "
          "classified inputs)")
    print(f"{'target':>6} {'AI-GAN':>8} {'PGD-100':>8} {'PGD-CE':>8} {'AdvGAN':>8} "
          f"{'paper AI-GAN':>13}")
    rows = (wb, pgd, pgd_ce, adv)
    for c in range(10 if arch else res.get("num_classes", 10)):
        cells = [pct(r["per_target"].get(str(c))) if r else "-" for r in rows]
        print(f"{c:>6} {cells[0]:>8} {cells[1]:>8} {cells[2]:>8} {cells[3]:>8} "
              f"{paper(paper2[c] if c < len(paper2) else None):>13}")
    avg = [pct(r["success"]) if r else "-" for r in rows]
    pa = PAPER["table2"]["average"].get(arch) if arch else None
    print(f"{'all':>6} {avg[0]:>8} {avg[1]:>8} {avg[2]:>8} {avg[3]:>8} {paper(pa):>13}")
    if arch:
        print(f"  paper Table III AdvGAN: {paper(PAPER['table3']['advgan'][arch])}")
    if wb and pgd and None not in (wb["success"], pgd["success"]):
        gap = 100 * (pgd["success"] - wb["success"])
        print(f"  AI-GAN vs PGD-100: {gap:+.2f} points behind "
              f"({'PASS' if gap <= 2 else 'FAIL'} <= 2)")
    if wb and pgd_ce and None not in (wb["success"], pgd_ce["success"]):
        gap = 100 * (pgd_ce["success"] - wb["success"])
        print(f"  AI-GAN vs cross-entropy PGD-100: {gap:+.2f} points behind "
              "(for information: the yardstick is the C&W-margin PGD-100)")
    if wb and adv and None not in (wb["success"], adv["success"]):
        print(f"  AI-GAN {'>=' if wb['success'] >= adv['success'] else '<'} AdvGAN; "
              f"training: AI-GAN {wb['train_seconds']:.0f}s (one model) vs AdvGAN "
              f"{adv['train_seconds']:.0f}s (one per target)")


def print_timing(tm: dict[str, Any]) -> None:
    """Table VI: seconds for the same targeted examples, with each attack's success."""
    print(f"Table VI (seconds for {tm['n']} targeted examples; success beside)")
    for k in ("fgsm", "pgd20", "cw_l2", "advgan", "aigan"):
        r = tm[k]
        note = f" (from {r['measured_on']})" if r["extrapolated"] else ""
        print(f"  {k:7} {r['seconds']:9.3f}s{note:12} success {pct(r['success'])}  "
              f"paper {PAPER['table6'][k]}")
    ratio = tm["aigan_over_pgd20"]
    print(f"  AI-GAN / PGD-20 time: 1/{1 / ratio:.0f} "
          f"({'PASS' if ratio <= 0.01 else 'FAIL'} <= 1/100)")


def print_blackbox(bb: dict[str, Any], wb: dict[str, Any] | None, arch: str | None) -> None:
    """Table IV: black-box AI-GAN, where its success is lost, and the transfer baselines."""
    defined = wb and wb["success"] and bb["success"] is not None
    ratio = bb["success"] / wb["success"] if defined else None
    pb = PAPER["table4"]["aigan"].get(arch) if arch else None
    print(f"Table IV (black-box, targeted): AI-GAN {pct(bb['success'])} "
          f"(paper {paper(pb)}), {bb['target_queries']} target queries")
    if sel := bb.get("local_selection"):
        print(f"  local model chosen by local_arch=auto: {sel['arch']} "
              f"({selection_scores(sel)})")
    if sp := bb.get("split"):
        print(f"  on the distilled local model {pct(sp['success_on_local'])}; of those "
              f"hits {pct(sp['target_hit_given_local_hit'])} also hit the target")
    if cr := bb.get("whitebox_generator_on_local"):
        print(f"  the white-box AI-GAN's examples: {pct(cr['success_on_target'])} on the "
              f"target, {pct(cr['success_on_local'])} on the distilled local model")
    print_transfer(bb, arch)
    if ratio is not None:
        print(f"  black-box / white-box: {ratio:.3f} ({'PASS' if ratio >= 0.9 else 'FAIL'}"
              " >= 0.90; paper 0.97)")
        if diff := config_difference(wb.get("config"), bb.get("config"), "black_box"):
            print(f"  note: the two were trained with different settings: {diff}")


def print_transfer(bb: dict[str, Any], arch: str | None) -> None:
    """Table IV's baselines: attacks crafted on the distilled local model, on the target."""
    print(f"  baselines crafted on the distilled local model, first "
          f"{bb['transfer_images']} test images:")
    untargeted = bb.get("transfer_untargeted_from_local", {})
    for k, r in bb["transfer_from_local"].items():
        pk = PAPER["table4"].get(k.split("_")[0], {}).get(arch) if arch else None
        u = f", untargeted misclassification {pct(untargeted[k]['success'])}" \
            if k in untargeted else ""
        print(f"  {k:6} from the local model: {pct(r['success'])} (paper {paper(pk)})"
              f"{u}")


def print_ablation(ab: dict[str, Any], wb: dict[str, Any] | None) -> None:
    """AI-GAN without SimCLR pre-training and without the attacker, beside the default."""
    print("Ablation (success, training seconds)")
    if wb:
        print(f"  {'default':12} {pct(wb['success'])} {wb['train_seconds']:8.0f}s")
    for k, r in ab.items():
        if not isinstance(r, dict):  # part_seconds
            continue
        print(f"  {k:12} {pct(r['success'])} {r['train_seconds']:8.0f}s")
        if wb and (diff := config_difference(wb.get("config"), r.get("config"),
                                             "pretrain", "attacker")):
            print(f"    note: trained with different settings than the default: {diff}")


def selection_scores(sel: dict[str, Any]) -> str:
    """A substitute selection's per-candidate figures: the ranking score (the target's mean
    targeted margin) with the transfer success beside it, or the transfer success alone for
    a record that ranked by it (no ``success`` key)."""
    if "success" not in sel:
        return "targeted transfer: " + ", ".join(
            f"{a} {pct(v)}" for a, v in sel["scores"].items())
    return "target margin / targeted transfer: " + ", ".join(
        f"{a} {v:+.2f} / {pct(sel['success'][a])}" for a, v in sel["scores"].items())
