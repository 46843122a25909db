"""Shape-inspector benchmark: tui-nn vs torchinfo on a 70B Llama-style decoder on meta, whole
process each; the 70B decoder in-process; ResNet-152 vs torchinfo in one process.

    python benchmarks/bench_inspect.py            # all cases
    python benchmarks/bench_inspect.py --pairs 3  # only the whole-process 70B comparison
    python benchmarks/bench_inspect.py --case llama70b
    python benchmarks/bench_inspect.py --case diff70b  # --diff of two 70B-class decoders
    python benchmarks/bench_inspect.py --pairs 5 --baseline /path/to/other/checkout

Targets (2-core CPU machine): `tui-nn inspect llama70b.py:Llama70B --input 1x512x8192 --json`
takes at most 0.4 of torchinfo's time summarising the same model on meta (both whole
processes, python start and imports included, run in alternating turns so load hits both;
wall time, and CPU time, which other work on the box inflates less); the 70B decoder
inspects in under 10 s and under 2 GB of peak RSS; `--diff` of two 70B-class decoders takes
under 2× one inspection. `--baseline` also times another checkout's tui-nn in the same turns.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from llama70b import Llama

LLAMA_FILE = ROOT / "benchmarks" / "llama70b.py"
LLAMA_INPUT = (1, 512, 8192)
# torchinfo's side: build the same decoder on meta, summarise every depth on meta.
TORCHINFO_SCRIPT = f"""
import sys, torch, torchinfo
sys.path.insert(0, {str(LLAMA_FILE.parent)!r})
from llama70b import Llama70B
with torch.device("meta"):
    model = Llama70B()
torchinfo.summary(model, input_size={LLAMA_INPUT!r}, device="meta", verbose=0, depth=100)
"""


# --- cases -----------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def case_llama70b() -> dict:
    from tui_nn.shapes import inspect_model

    wall0, cpu0 = time.perf_counter(), time.process_time()
    from tui_nn.zoo.building import building_on

    with building_on("meta"):
        model = Llama()
    built = time.perf_counter() - wall0
    t1 = time.perf_counter()
    result = inspect_model(model, ["1x2048:int64"])
    inspected = time.perf_counter() - t1
    assert result.ok, result.diagnosis
    return {"case": "llama70b", "params": result.totals.params,
            "param_gib_if_materialised": result.totals.param_bytes / 2**30,
            "mult_adds": result.totals.mult_adds, "rows": len(result.all_rows),
            "build_s": built, "inspect_s": inspected, "total_s": built + inspected,
            "cpu_s": time.process_time() - cpu0, "peak_rss_mb": _peak_rss_mb()}


def case_resnet152() -> dict:
    import torchinfo
    import torchvision

    from tui_nn.shapes import inspect_model

    # The same CPU-built model for both tools: tui-nn traces a meta copy of it.
    model = torchvision.models.resnet152(weights=None)
    inspect_model(torchvision.models.resnet18(weights=None), (3, 64, 64))  # warm both up
    torchinfo.summary(torchvision.models.resnet18(weights=None), input_size=(1, 3, 64, 64),
                      verbose=0)
    runs = 3
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(runs):
        ours = inspect_model(model, (1, 3, 224, 224))
    tui_s = (time.perf_counter() - t0) / runs
    tui_cpu = (time.process_time() - c0) / runs
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(runs):
        theirs = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0, depth=100)
    torchinfo_s = (time.perf_counter() - t1) / runs
    torchinfo_cpu = (time.process_time() - c1) / runs
    t2 = time.perf_counter()
    from_source = inspect_model("torchvision.models:resnet152", (1, 3, 224, 224))
    source_s = time.perf_counter() - t2
    assert ours.totals.params == theirs.total_params == from_source.totals.params
    return {"case": "resnet152", "params": ours.totals.params, "rows": len(ours.all_rows),
            "tui_nn_s": tui_s, "torchinfo_s": torchinfo_s, "ratio": tui_s / torchinfo_s,
            "tui_nn_cpu_s": tui_cpu, "torchinfo_cpu_s": torchinfo_cpu,
            "tui_nn_from_source_s": source_s, "peak_rss_mb": _peak_rss_mb()}


def case_diff70b() -> dict:
    """`--diff` of two 70B-class decoders (80 and 81 layers): both inspections plus the
    alignment, against one inspection of the first."""
    from tui_nn.shapes import inspect_model
    from tui_nn.shapes.diff import diff_inspections
    from tui_nn.zoo.building import building_on

    with building_on("meta"):
        a, b = Llama(), Llama(n_layers=81)
    inspect_model(a, ["1x2048:int64"])  # warm-up: first-call costs are not the diff's
    t0 = time.perf_counter()
    one = inspect_model(a, ["1x2048:int64"])
    one_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    first, second = inspect_model(a, ["1x2048:int64"]), inspect_model(b, ["1x2048:int64"])
    t2 = time.perf_counter()
    diff = diff_inspections(first, second)
    t3 = time.perf_counter()
    assert one.ok and diff.counts["inserted"] > 0
    return {"case": "diff70b", "rows": [len(first.all_rows), len(second.all_rows)],
            "counts": diff.counts, "one_inspection_s": one_s, "two_inspections_s": t2 - t1,
            "align_s": t3 - t2, "diff_s": t3 - t1, "ratio": (t3 - t1) / one_s}


CASES = {"llama70b": case_llama70b, "resnet152": case_resnet152, "diff70b": case_diff70b}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], root: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process (CPU time suffers less from other load)."""
    started, cpu = time.perf_counter(), _children_cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-400:]}")
    return wall, _children_cpu_s() - cpu


def compare_with_torchinfo(pairs: int, baseline: Path | None = None) -> None:
    shape = "x".join(map(str, LLAMA_INPUT))
    ours = [sys.executable, "-m", "tui_nn", "inspect", f"{LLAMA_FILE}:Llama70B",
            "--input", shape, "--json"]
    turns = [("tui", ours, ROOT), ("torchinfo", [sys.executable, "-c", TORCHINFO_SCRIPT], ROOT)]
    if baseline is not None:
        turns.append(("baseline", ours, baseline))
    times: dict[str, list[tuple[float, float]]] = {who: [] for who, _, _ in turns}
    for i in range(pairs):  # alternate who goes first: load drifts over a run
        for who, cmd, root in (turns if i % 2 == 0 else turns[::-1]):
            times[who].append(_timed(cmd, root))
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    walls = {k: ", ".join(f"{w:.2f}" for w, _ in v) for k, v in times.items()}
    ratio, cpu_ratio = wall["tui"] / wall["torchinfo"], cpu["tui"] / cpu["torchinfo"]
    verdict = "OK" if max(ratio, cpu_ratio) <= 0.4 else "MISSED"
    print(f"70B decoder {shape}, whole process, median of {pairs} alternating turns (load "
          f"{os.getloadavg()[0]:.1f}): tui-nn inspect --json {wall['tui']:.2f} s "
          f"({walls['tui']}; CPU {cpu['tui']:.2f} s) vs torchinfo on meta "
          f"{wall['torchinfo']:.2f} s ({walls['torchinfo']}; CPU {cpu['torchinfo']:.2f} s): "
          f"wall ratio {ratio:.2f}, CPU ratio {cpu_ratio:.2f} [target <= 0.4: {verdict}]")
    if baseline is not None:
        print(f"  baseline {baseline}: {wall['baseline']:.2f} s ({walls['baseline']}; CPU "
              f"{cpu['baseline']:.2f} s): wall ratio {wall['baseline'] / wall['torchinfo']:.2f},"
              f" CPU ratio {cpu['baseline'] / cpu['torchinfo']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--pairs", type=int, default=0,
                        help="only the whole-process comparison with torchinfo, N turns")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout whose tui-nn is timed in the same turns")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return
    if args.pairs:
        compare_with_torchinfo(args.pairs, args.baseline)
        return
    # Other work on a 2-core machine inflates wall times: print the load and the CPU times.
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    compare_with_torchinfo(3, args.baseline)
    for name in CASES:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True,
                             text=True, check=True)
        process_s = time.perf_counter() - started  # python start + imports included
        d = json.loads(out.stdout.strip().splitlines()[-1])
        if name == "llama70b":
            verdict = "OK" if d["total_s"] < 10 and d["peak_rss_mb"] < 2048 else "MISSED"
            print(f"Llama-style 70B ({d['params'] / 1e9:.2f} B params, "
                  f"{d['param_gib_if_materialised']:.0f} GiB if materialised, {d['rows']} rows):"
                  f" build on meta {d['build_s']:.2f} s + inspect {d['inspect_s']:.2f} s = "
                  f"{d['total_s']:.2f} s (CPU {d['cpu_s']:.2f} s; whole process with imports "
                  f"{process_s:.1f} s), peak RSS {d['peak_rss_mb']:.0f} MB "
                  f"[target < 10 s, < 2048 MB: {verdict}]")
        elif name == "diff70b":
            verdict = "OK" if d["ratio"] < 2 else "MISSED"
            print(f"--diff of two 70B-class decoders ({d['rows'][0]} and {d['rows'][1]} rows): "
                  f"{d['diff_s']:.2f} s (alignment {d['align_s']:.3f} s) vs one inspection "
                  f"{d['one_inspection_s']:.2f} s: ×{d['ratio']:.2f} [target < 2: {verdict}]")
        else:
            print(f"ResNet-152 ({d['params'] / 1e6:.1f} M params, {d['rows']} rows, 1×3×224×224):"
                  f" tui-nn {d['tui_nn_s']:.2f} s (CPU {d['tui_nn_cpu_s']:.2f} s) vs torchinfo "
                  f"{d['torchinfo_s']:.2f} s (CPU {d['torchinfo_cpu_s']:.2f} s): ×{d['ratio']:.2f};"
                  f" from source, built on meta: {d['tui_nn_from_source_s']:.2f} s; "
                  f"peak RSS {d['peak_rss_mb']:.0f} MB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
