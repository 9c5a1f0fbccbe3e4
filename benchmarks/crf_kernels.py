"""Times the jaxkd.crf kernels over a grid of shapes, and pytorch-crf beside them.

    python -m benchmarks.crf_kernels [--json PATH] [--quick]

For every B=32, L in {16, 64, 256}, N in {9, 23, 73} and both log Z algorithms
it times, on compiled functions after warm-up (medians, ``block_until_ready``):

* ``nll_grad``  : mean NLL of gold tags and its gradient w.r.t. emissions,
                  transitions, start and end (one jitted value_and_grad);
* ``marginals`` : unary + pairwise marginals;
* ``viterbi``   : best path with on-device back-trace (algorithm-independent);
* ``kbest3``    : 3 best paths in one pass (algorithm-independent).

If ``torch`` and ``pytorch-crf`` are importable (``bin/bench-crf`` installs
them), the same NLL + backward and Viterbi decoding are timed with
pytorch-crf's ``CRF`` on the same data in the same process, its NLL is checked
against ours, and the speed-ups are printed as ratios.

The parallel algorithm does O(L N^3) work; on a CPU the shapes whose B L N^3
exceeds ``--max-parallel-work`` are skipped (said so in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._timing import environment, median_seconds, torch_device, torch_sync
from jaxkd import crf

OPS = ("nll_grad", "marginals", "viterbi", "kbest3")


def make_data(batch, length, num_tags, seed=0):
    """Random scores, gold tags and lengths in [L/2, L] (row 0 full length)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, length // 2), length + 1, size=batch)
    lengths[0] = length
    mask = np.arange(length)[None] < lengths[:, None]
    return dict(
        emissions=rng.normal(size=(batch, length, num_tags)).astype(np.float32),
        mask=mask,
        tags=np.where(mask, rng.integers(0, num_tags, size=(batch, length)), 0).astype(np.int32),
        transitions=(0.1 * rng.normal(size=(num_tags, num_tags))).astype(np.float32),
        start=(0.1 * rng.normal(size=num_tags)).astype(np.float32),
        end=(0.1 * rng.normal(size=num_tags)).astype(np.float32),
    )


def jax_ops(algorithm):
    def nll(e, m, y, t, a, z):
        return jnp.mean(crf.log_partition(e, m, t, a, z, algorithm=algorithm) - crf.sequence_score(e, m, y, t, a, z))

    nll_grad = jax.jit(jax.value_and_grad(nll, argnums=(0, 3, 4, 5)))
    return {
        "nll_grad": lambda d: nll_grad(d["emissions"], d["mask"], d["tags"], d["transitions"], d["start"], d["end"]),
        "marginals": lambda d: crf.marginals(
            d["emissions"], d["mask"], d["transitions"], d["start"], d["end"], algorithm=algorithm
        ),
        "viterbi": lambda d: crf.viterbi(d["emissions"], d["mask"], d["transitions"], d["start"], d["end"]),
        "kbest3": lambda d: crf.kbest(d["emissions"], d["mask"], d["transitions"], d["start"], d["end"], 3),
    }, nll


def torch_ops(data):
    """pytorch-crf on the same data and the same kind of device as jax, or None
    when it is not installed."""
    try:
        import torch
        from torchcrf import CRF
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch_device()
    n = data["emissions"].shape[-1]
    model = CRF(n, batch_first=True)
    with torch.no_grad():
        model.transitions.copy_(torch.from_numpy(data["transitions"]))
        model.start_transitions.copy_(torch.from_numpy(data["start"]))
        model.end_transitions.copy_(torch.from_numpy(data["end"]))
    model.to(device)
    emissions = torch.from_numpy(data["emissions"]).to(device).requires_grad_(True)
    tags = torch.from_numpy(data["tags"]).long().to(device)
    mask = torch.from_numpy(data["mask"]).bool().to(device)

    def nll_grad(_):
        model.zero_grad()
        emissions.grad = None
        loss = -model(emissions, tags, mask=mask, reduction="mean")
        loss.backward()
        torch_sync(device)
        return loss

    def viterbi(_):
        with torch.no_grad():
            return model.decode(emissions, mask=mask)

    with torch.no_grad():
        nll_value = float(-model(emissions, tags, mask=mask, reduction="mean"))
    return {"nll_grad": nll_grad, "viterbi": viterbi}, nll_value


def time_torch(fn, repeats, min_total_s):
    for _ in range(2):
        fn(None)
    times = []
    while len(times) < repeats or sum(times) < min_total_s:
        t0 = time.perf_counter()
        fn(None)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write results to this path")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--tags", type=int, nargs="+", default=[9, 23, 73])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--min-total-s", type=float, default=0.2, help="keep timing a cell until this much time")
    parser.add_argument(
        "--max-parallel-work",
        type=float,
        default=None,
        help="skip parallel cells with B*L*N^3 above this (default: 3e8 on CPU, no limit elsewhere)",
    )
    parser.add_argument("--quick", action="store_true", help="L=64, N=9 only (the pytorch-crf comparison point)")
    parser.add_argument("--no-torch", action="store_true", help="skip the pytorch-crf comparison")
    return parser


def time_jax_cell(jdata, work: int, limit: float, args) -> dict:
    """Median seconds of every (op, algorithm) of one shape; None where the
    parallel algorithm's work ``B L N^3`` is over ``limit``."""
    cell = {}
    for algorithm in crf.ALGORITHMS:
        ops, _ = jax_ops(algorithm)
        for op in OPS:
            if op in ("viterbi", "kbest3") and algorithm == "parallel":
                continue  # decoding does not depend on the log Z algorithm
            if algorithm == "parallel" and work > limit:
                cell[(op, algorithm)] = None
                continue
            cell[(op, algorithm)] = median_seconds(ops[op], jdata, repeats=args.repeats, min_total_s=args.min_total_s)
    return cell


def time_torch_cell(data, jdata, args) -> dict:
    """pytorch-crf's median seconds per op on the same data (empty when it is
    not installed), after checking that its NLL is ours."""
    got = torch_ops(data)
    if got is None:
        return {}
    tops, torch_nll = got
    _, nll = jax_ops("sequential")
    ours = float(jax.jit(nll)(*(jdata[k] for k in ("emissions", "mask", "tags", "transitions", "start", "end"))))
    if not np.isclose(ours, torch_nll, rtol=1e-4, atol=1e-4):
        raise SystemExit(f"NLL disagrees with pytorch-crf: {ours} vs {torch_nll}")
    return {op: time_torch(fn, args.repeats, args.min_total_s) for op, fn in tops.items()}


def _cell(x) -> str:
    return f"{x:11.6f}" if isinstance(x, float) else f"{('skipped' if x is None else x):>11}"


def report_cell(length: int, num_tags: int, batch: int, cell: dict, torch_times: dict) -> list[dict]:
    """Prints one shape's table lines and returns its result rows."""
    rows = []
    for op in OPS:
        seq = cell.get((op, "sequential"))
        par = cell.get((op, "parallel"), "n/a" if op in ("viterbi", "kbest3") else None)
        tt = torch_times.get(op)
        fastest = min(x for x in (seq, par) if isinstance(x, float))
        ratio = tt / fastest if tt else None
        torch_text = _cell(tt) if tt else f"{chr(45):>11}"
        ratio_text = f"{ratio:9.1f}x" if ratio else f"{chr(45):>10}"
        print(f"{length:>4} {num_tags:>3} {op:<10} {_cell(seq)} {_cell(par)} {torch_text} {ratio_text}", flush=True)
        rows.append(
            dict(
                op=op,
                batch=batch,
                length=length,
                num_tags=num_tags,
                sequential_s=seq,
                parallel_s=par if isinstance(par, float) else None,
                torch_s=tt,
                torch_over_jax=ratio,
            )
        )
    return rows


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.quick:
        args.lengths, args.tags = [64], [9]
    env = environment()
    limit = args.max_parallel_work
    if limit is None:
        limit = 3e8 if jax.default_backend() == "cpu" else float("inf")
    print(
        f"# jaxkd.crf kernels on {env['device']} (jax {env['jax_version']}, {env['date']}), B={args.batch}", flush=True
    )
    print("# median seconds per call of compiled functions after warm-up; 'torch' = pytorch-crf, same data", flush=True)
    rows = []
    header = f"{'L':>4} {'N':>3} {'op':<10} {'sequential':>11} {'parallel':>11} {'torch':>11} {'torch/jax':>10}"
    print(header)
    for length in args.lengths:
        for num_tags in args.tags:
            data = make_data(args.batch, length, num_tags)
            jdata = jax.device_put({k: v for k, v in data.items()})
            cell = time_jax_cell(jdata, args.batch * length * num_tags**3, limit, args)
            torch_times = {} if args.no_torch else time_torch_cell(data, jdata, args)
            rows += report_cell(length, num_tags, args.batch, cell, torch_times)
    out = {**env, "benchmark": "crf_kernels", "batch": args.batch, "results": rows}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"# wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
