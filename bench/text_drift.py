"""`python -m bench.text_drift`: the text-drift test measured on real texts and the real model.

The bundled model serves as the default does on this CPU (ONNX int8, this CPU's recipe). Its
sentence embeddings of texts it never trained on: the 1,260 validation and test tweets, and
the test splits of the movie-review, Amazon-review and New York Times editorial snippets.

For each of `--reps` random partitions of the unseen tweets into three equal parts (420
each): a basis is fitted on the first (directions) and scaled on the second, as
`sentimon model profile` does, and windows are tested against it at the alert's level
(alpha 1e-4, Bonferroni over the chi-square and the residual z):

- false alarms: the third part, 420 held-out tweets, as one window;
- power: windows of 420 texts where 5%, 10%, 20% or all of the tweets are replaced by
  snippets of one other domain.

It also measures what the arithmetic does: the same test tweets embedded by fp32 against a
basis scaled on int8's embeddings, as a chi-square at N = 3000 (a 5-minute window at
10 req/s), which is why a profile keeps one basis per embedding kind. And the cost: the
scoring of one batch of 1 and of 32 embeddings, in microseconds per text.

Writes bench/results/text-drift.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sentimon.config import BUNDLED_MODEL_DIR
from sentimon.drift.profiling import classify
from sentimon.drift.stats import residual_z, text_critical_values, text_drift_chi2
from sentimon.drift.text import TextBasis, embedding_kind, fit_basis
from sentimon.model.build.pipeline import load_splits
from sentimon.model.cpu import describe_cpu, read_cpuinfo
from sentimon.model.onnx_backend import OnnxModel
from sentimon.model.transformers_backend import TransformersModel

ALPHA = 1e-4
WINDOW = 420
SHARES = (0.05, 0.1, 0.2, 1.0)
OTHER = ("movies", "amazon", "nyt")
RESULTS = Path(__file__).parent / "results" / "text-drift.json"
Rows = npt.NDArray[np.float32]


def flagged(basis: TextBasis, rows: Rows) -> tuple[bool, float, float]:
    """Whether the window `rows` is flagged, with its chi-square and residual z."""
    z, residual = basis.scorer().score(rows)
    n = len(rows)
    chi2 = text_drift_chi2(z.mean(axis=0).tolist(), n, basis.n)
    rz = residual_z(float(residual.mean()), n, basis.residual_mean, basis.residual_sd, basis.n)
    chi2_critical, z_critical = text_critical_values(ALPHA, basis.components)
    return chi2 > chi2_critical or abs(rz) > z_critical, chi2, rz


def scoring_cost(basis: TextBasis, rows: Rows) -> dict[str, float]:
    scorer = basis.scorer()
    out = {}
    for size in (1, 32):
        batch = rows[:size]
        rounds = 2000 if size == 1 else 300
        started = time.perf_counter()
        for _ in range(rounds):
            scorer.score(batch)
        out[f"us_per_text_batch_{size}"] = (time.perf_counter() - started) / rounds / size * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    splits = load_splits(args.cache_dir / "build")
    int8 = OnnxModel.load(str(BUNDLED_MODEL_DIR), cache_dir=args.cache_dir / "onnx")
    kind = embedding_kind(int8.info)
    tweets = splits["tweets"].validation + splits["tweets"].test
    unseen = classify(int8, [e.text for e in tweets])[1]
    others = {d: classify(int8, [e.text for e in splits[d].test])[1] for d in OTHER}

    false_alarms = 0
    chi2s, zs = [], []
    power = {d: dict.fromkeys(SHARES, 0) for d in OTHER}
    for _ in range(args.reps):
        order = rng.permutation(len(unseen))
        fit, scale, held = (unseen[order[i * WINDOW : (i + 1) * WINDOW]] for i in range(3))
        basis = fit_basis(fit, scale, kind, "bench")
        alarm, chi2, rz = flagged(basis, held)
        false_alarms += alarm
        chi2s.append(chi2)
        zs.append(rz)
        for domain, rows in others.items():
            for share in SHARES:
                replaced = round(WINDOW * share)
                window = np.concatenate(
                    [
                        held[rng.permutation(WINDOW)[: WINDOW - replaced]],
                        rows[rng.choice(len(rows), replaced, replace=False)],
                    ]
                )
                power[domain][share] += flagged(basis, window)[0]

    test_texts = [e.text for e in splits["tweets"].test]
    validation_texts = [e.text for e in splits["tweets"].validation]
    fp32 = TransformersModel.load(str(BUNDLED_MODEL_DIR), max_tokens=int8.info.max_tokens)
    int8_basis = fit_basis(
        classify(int8, validation_texts)[1], classify(int8, test_texts)[1], kind, "int8"
    )
    z8, _ = int8_basis.scorer().score(classify(int8, test_texts)[1])
    z32, _ = int8_basis.scorer().score(classify(fp32, test_texts)[1])
    shift = (z32 - z8).mean(axis=0)
    mismatch = text_drift_chi2(shift.tolist(), 3000, int8_basis.n)

    result: dict[str, Any] = {
        "machine": describe_cpu(read_cpuinfo()) or platform.machine(),
        "embedding": kind,
        "reps": args.reps,
        "window": WINDOW,
        "alpha": ALPHA,
        "critical": dict(zip(("chi2", "abs_z"), text_critical_values(ALPHA, 32), strict=True)),
        "false_alarm_rate": false_alarms / args.reps,
        "held_out_chi2_mean": float(np.mean(chi2s)),
        "held_out_z_sd": float(np.std(zs)),
        "power": {d: {str(s): c / args.reps for s, c in v.items()} for d, v in power.items()},
        "fp32_on_int8_basis_chi2_at_3000": mismatch,
        "cost": scoring_cost(int8_basis, unseen),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"text drift on {kind}, {args.reps} partitions, windows of {WINDOW} texts",
        f"held-out tweets: {result['false_alarm_rate']:.1%} flagged "
        f"(chi-square mean {result['held_out_chi2_mean']:.1f} on 32 df, "
        f"residual z sd {result['held_out_z_sd']:.2f})",
        *(
            f"{domain:>7}: " + ", ".join(f"{s} -> {v:.1%}" for s, v in shares.items())
            for domain, shares in result["power"].items()
        ),
        f"fp32 embeddings against the int8 basis: chi-square {mismatch:.1f} at N = 3000",
        ", ".join(f"{k} {v:.1f}" for k, v in result["cost"].items()),
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
