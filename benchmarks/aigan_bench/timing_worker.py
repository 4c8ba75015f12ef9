"""Table VI's timing in a fresh process: the generator (eager, and compiled if asked) and
targeted PGD-20 on the same saved examples, in turns (:func:`aigan_bench.cost.
interleaved_seconds`), then, if asked, the inference levers in turns
(:mod:`aigan_bench.levers`); prints one JSON line.

On one idle machine the ratio of the two times still differs from one process to the next
by a fifth or more (both attacks speed up or slow down, not always together), so the part
runs this worker in several processes and reports the median (:func:`timed_in_processes`).

    python benchmarks/aigan_bench/timing_worker.py --attacker RUN --model DIR --eps E
        --examples FILE.safetensors --repeats R --threads T [--compiled] [--levers]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # run as a script: aigan_bench is its parent's package
    sys.path.insert(0, str(HERE.parent))

from advforge.generative import load_attacker  # noqa: E402
from advforge.models import load_model  # noqa: E402
from advforge.utils.checkpoint import load_safetensors, save_safetensors  # noqa: E402
from aigan_bench.context import pgd_spec  # noqa: E402
from aigan_bench.cost import first_call_seconds, interleaved_seconds, other_load  # noqa: E402
from aigan_bench.levers import lever_calls  # noqa: E402


def seeded_pgd(spec: Any, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               t: torch.Tensor, seed: int) -> Callable[[], Any]:
    """A call of the targeted PGD ``spec`` on (x, t), its random start seeded afresh."""
    return lambda: spec(model, x, y, target=t,
                        generator=torch.Generator(device=x.device).manual_seed(seed))


def attack_calls(attack: Any, model: torch.nn.Module, eps: float, x: torch.Tensor,
                 y: torch.Tensor, t: torch.Tensor, seed: int) -> dict[str, Callable[[], Any]]:
    """The generator and targeted PGD-20 (step 2.5 eps / 20) on (x, t)."""
    return {"default": lambda: attack(None, x, y, target=t),
            "pgd20": seeded_pgd(pgd_spec(eps, 20, 2.5 * eps / 20), model, x, y, t, seed)}


def measure(attack: Any, model: torch.nn.Module, eps: float, x: torch.Tensor, y: torch.Tensor,
            t: torch.Tensor, repeats: int, seed: int, compiled: bool,
            levers: bool = False) -> dict[str, Any]:
    """Seconds of the generator and PGD-20 (and the compiled generator) on (x, t), in turns;
    with ``levers``, also the median seconds of every lever call, in turns."""
    calls = attack_calls(attack, model, eps, x, y, t, seed)
    record: dict[str, Any] = {}
    if compiled:  # the same generator through torch.compile; its first call compiles
        fast = dataclasses.replace(attack, compiled=True)
        record["first_call_seconds"] = first_call_seconds(lambda: fast(None, x, y, target=t))
        calls["default_compiled"] = lambda: fast(None, x, y, target=t)
    with other_load() as load:
        spread = interleaved_seconds(calls, repeats)
    if compiled:
        record["failed"] = fast._forward.failed
    if levers:
        record["levers"] = {k: v["median"] for k, v in interleaved_seconds(
            lever_calls(attack, x, y, t), repeats).items()}
    return {"seconds": {k: v["median"] for k, v in spread.items()}, "spread": spread,
            "other_cores": load["cores"], **record}


def timed_in_processes(attacker: Path, model: Path, eps: float, x: torch.Tensor,
                       y: torch.Tensor, t: torch.Tensor, *, processes: int, repeats: int,
                       seed: int, compiled: bool, levers: bool = False
                       ) -> list[dict[str, Any]]:
    """:func:`measure` in ``processes`` fresh processes one after another, each with this
    process's thread count; their records."""
    with tempfile.TemporaryDirectory() as tmp:
        examples = Path(tmp) / "examples.safetensors"
        save_safetensors(examples, {"x": x.cpu().contiguous(), "y": y.cpu(), "t": t.cpu()})
        argv = [sys.executable, str(Path(__file__).resolve()), "--attacker", str(attacker),
                "--model", str(model), "--eps", str(eps), "--examples", str(examples),
                "--repeats", str(repeats), "--seed", str(seed),
                "--threads", str(torch.get_num_threads()), "--device", str(x.device),
                *(["--compiled"] if compiled else []), *(["--levers"] if levers else [])]
        records = []
        for _ in range(processes):
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"timing worker failed: {proc.stderr.strip()[-400:]}")
            records.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return records


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over processes: of each attack's seconds, and of each process's own ratio of
    the generator's time to PGD-20's (the figure the bar is about: same process)."""
    names = records[0]["seconds"]
    out: dict[str, Any] = {k: statistics.median(r["seconds"][k] for r in records)
                           for k in names}
    for name in [k for k in names if k != "pgd20"]:
        out[f"{name}_over_pgd20"] = statistics.median(
            r["seconds"][name] / r["seconds"]["pgd20"] for r in records)
    cores = [r["other_cores"] for r in records if r["other_cores"] is not None]
    out["other_cores"] = max(cores) if cores else None
    out["processes"] = [{"seconds": r["seconds"], "other_cores": r["other_cores"],
                         **({"levers": r["levers"]} if "levers" in r else {})}
                        for r in records]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--attacker", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--examples", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compiled", action="store_true")
    p.add_argument("--levers", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    saved = load_safetensors(args.examples)
    x, y, t = (saved[k].to(device) for k in ("x", "y", "t"))
    model = load_model(args.model).to(device).eval()
    attack = load_attacker(args.attacker).to(device)
    record = measure(attack, model, args.eps, x, y, t, args.repeats, args.seed, args.compiled,
                     args.levers)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
