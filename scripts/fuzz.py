#!/usr/bin/env python3
"""Long fuzzing runs over every parser, for a given time, keeping what they find as regression inputs.

    PYTHONPATH=src python scripts/fuzz.py --seconds 600
    PYTHONPATH=src python scripts/fuzz.py --seconds 120 --targets manifest,config --engine hypothesis

Targets (``tests/hardening_targets.py``): TOML configs, model manifests
(mutated, sealed and not), captures through the meter, flow files through
the reader (``tests/fuzz/harness.py``) and NetFlow/IPFIX datagrams through
the collector. The time is shared out evenly between the targets.

Engines: ``atheris`` (coverage-guided, libFuzzer; ``pip install atheris``):
each target runs in a child process whose crash inputs libFuzzer writes to
``tests/fuzz_regressions/TARGET-<sha1>``. ``hypothesis``: each target's
seeds mutated by hypothesis strategies (byte flips, inserts, deletes, cuts,
repeated stretches, splices of two seeds, random bytes) in rounds until its
time is up; a failing input is written to the same place. ``auto`` (the
default) takes atheris where it imports, else hypothesis, and says which.

``tests/test_hardening_regressions.py`` replays every kept input in each
test run. The last line printed is one table row per target: inputs tried,
seconds, failures kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]
REGRESSIONS = REPO / "tests" / "fuzz_regressions"
MAX_LEN = 1 << 16


def keep(target: str, data: bytes, error: BaseException | None = None) -> Path:
    """Write a failing input as a regression file (and its traceback beside it, for the record)."""
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    path = REGRESSIONS / f"{target}-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    if error is not None:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        (REGRESSIONS / "notes").mkdir(exist_ok=True)
        (REGRESSIONS / "notes" / f"{path.name}.txt").write_text(text)
    return path


def _quiet() -> None:
    logging.disable(logging.CRITICAL)  # rejects and refusals are logged; the fuzzer's counts are the record
    warnings.simplefilter("ignore")


# ---- hypothesis ----------------------------------------------------------------------------------


def fuzz_hypothesis(target: str, seconds: float, work: Path, model: Path | None) -> dict:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from tests.hardening_targets import run_target, seeds

    (work / "seeds").mkdir(parents=True, exist_ok=True)
    start = seeds(target, work / "seeds", model=model)
    op = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "cut", "repeat", "splice"]),
                   st.integers(0, 1 << 20), st.integers(0, 255), st.integers(1, 256))

    def mutate(data: bytes, ops, other: bytes) -> bytes:
        b = bytearray(data)
        for kind, at, byte, n in ops:
            at = at % (len(b) + 1)
            if kind == "flip" and b:
                b[at % len(b)] ^= 1 << (byte % 8)
            elif kind == "set" and b:
                b[at % len(b)] = byte
            elif kind == "insert":
                b[at:at] = bytes([byte]) * (n % 16 + 1)
            elif kind == "delete":
                del b[at:at + n]
            elif kind == "cut":
                del b[at:]
            elif kind == "repeat":
                b[at:at] = b[at:at + n]
            elif kind == "splice":
                cut = at % (len(other) + 1)
                b[at:] = other[cut:cut + len(b) - at + n]
        return bytes(b[:MAX_LEN])

    inputs = st.one_of(
        st.tuples(st.sampled_from(start), st.lists(op, min_size=1, max_size=8), st.sampled_from(start))
        .map(lambda t: mutate(t[0], t[1], t[2])),
        st.binary(max_size=512),
    )
    counts = {"inputs": 0, "failures": 0}
    folder = work / "case"
    found: list[Path] = []

    @settings(max_examples=25, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def one_round(data):
        counts["inputs"] += 1
        try:
            run_target(target, data, folder, model=model)
        except Exception as exc:  # every exception is a finding: keep the input, go on fuzzing
            counts["failures"] += 1
            found.append(keep(target, data, exc))

    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        one_round()
    return {**counts, "seconds": time.monotonic() - t0, "kept": [p.name for p in found]}


# ---- atheris ------------------------------------------------------------------------------------


def fuzz_atheris_child(target: str, seconds: float, work: Path, model: Path | None) -> None:
    """Runs in its own process: libFuzzer exits the process when its time is up."""
    import atheris

    with atheris.instrument_imports(include=["flowsentinel"]):
        import flowsentinel.collector.decoder  # noqa: F401
        import flowsentinel.config  # noqa: F401
        import flowsentinel.io.readers  # noqa: F401
        import flowsentinel.metering.capture  # noqa: F401
        import flowsentinel.persistence  # noqa: F401
    from tests.hardening_targets import run_target, seeds

    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (work / "seeds").mkdir(exist_ok=True)
    for i, data in enumerate(seeds(target, work / "seeds", model=model)):
        (corpus / f"seed-{i}").write_bytes(data)
    folder = work / "case"
    REGRESSIONS.mkdir(parents=True, exist_ok=True)

    def one_input(data: bytes) -> None:
        run_target(target, data, folder, model=model)

    _quiet()
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(seconds)}", f"-max_len={MAX_LEN}",
                   f"-artifact_prefix={REGRESSIONS}/{target}-", "-timeout=60", "-rss_limit_mb=3072",
                   "-print_final_stats=1"], one_input)
    atheris.Fuzz()


def fuzz_atheris(target: str, seconds: float, work: Path, model: Path | None) -> dict:
    before = set(REGRESSIONS.glob(f"{target}-*")) if REGRESSIONS.is_dir() else set()
    t0 = time.monotonic()
    cmd = [sys.executable, __file__, "--child", target, "--seconds", str(int(seconds)), "--work", str(work)]
    if model is not None:
        cmd += ["--model", str(model)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300)
    runs = [line for line in proc.stderr.splitlines() if "stat::number_of_executed_units" in line]
    executed = int(runs[-1].split(":")[-1]) if runs else 0
    after = set(REGRESSIONS.glob(f"{target}-*")) if REGRESSIONS.is_dir() else set()
    kept = sorted(p.name for p in after - before)
    if proc.returncode != 0 and not kept:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise SystemExit(f"atheris run of {target} failed (exit {proc.returncode}) without keeping an input:\n{tail}")
    return {"inputs": executed, "failures": len(kept), "seconds": time.monotonic() - t0, "kept": kept}


# ---- main ---------------------------------------------------------------------------------------


def main() -> int:
    from tests.hardening_targets import TARGETS, small_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600, help="total time, shared by the targets (default 600)")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}")
    p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    p.add_argument("--json", type=Path, help="also write the counts here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        fuzz_atheris_child(args.child, args.seconds, args.work, args.model)
        return 0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
            print("atheris is not importable here (pip install atheris); fuzzing with hypothesis", file=sys.stderr)
    _quiet()
    work = Path(tempfile.mkdtemp(prefix="flowsentinel-fuzz-"))
    model = small_model(work / "model-build") if "manifest" in targets else None
    share = args.seconds / len(targets)
    rows = []
    for target in targets:
        run = fuzz_atheris if engine == "atheris" else fuzz_hypothesis
        result = run(target, share, work / target, model)
        rows.append({"target": target, "engine": engine, **result})
        print(f"{target}: {result['inputs']:,} inputs in {result['seconds']:.0f} s, {result['failures']} kept"
              + (f" ({', '.join(result['kept'])})" if result["kept"] else ""), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print("| target | engine | inputs | seconds | kept |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['target']} | {r['engine']} | {r['inputs']:,} | {r['seconds']:.0f} | {r['failures']} |")
    return 1 if any(r["failures"] for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
