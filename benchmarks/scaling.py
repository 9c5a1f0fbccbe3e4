"""Training throughput on 1, 2 and 4 devices, and on 2 processes of 2 devices
(``jax.distributed`` on 127.0.0.1): the data-parallel path end to end.

    python -m benchmarks.scaling --json benchmarks/results/scaling_cpu.json

Every configuration is a fresh ``python -m jaxkd.train`` (forced host devices
on a CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) training the
same model on the same batches: by default a vanilla BERT-tiny tagger (the
demo's student) on the demo's 1,000 WNUT-16 tweets, global batch 32, for
``--epochs`` epochs. The figure is the last epoch's training time
(``total_s`` of results.json: compiled steps, compilation excluded), as
sentences per second, in all and per device.

On one CPU the forced devices share the same cores: the table shows what the
sharding costs (collectives, smaller per-device batches), not a speed-up.
On GPUs or TPUs each device brings its own compute.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._timing import environment

ROOT = Path(__file__).resolve().parents[1]  # the repository: the runs' working directory and PYTHONPATH

CONFIG = """
from jaxkd.presets import demo_config


def get_config():
    c = demo_config("student", "vanilla", train_sentences={sentences}, epochs={epochs})
    c.model.checkpoint = {checkpoint!r}
    c.model.num_layers = {num_layers}
    c.timing.forward_batches = 0
    c.log.tensorboard = False
    c.log.progress = "never"
    return c
"""

SETUPS = ((1, 1), (2, 1), (4, 1), (4, 2))  # (devices in all, processes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(config: Path, workdir: Path, devices: int, processes: int) -> dict:
    """results.json of one training run over ``devices`` split among ``processes``."""
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"), PYTHONPATH=str(ROOT))
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices // processes}"
    base = [
        sys.executable, "-m", "jaxkd.train", "--config", str(config), "--workdir", str(workdir), "--config.mesh.data=0"
    ]
    if processes == 1:
        commands = [base]
    else:
        port = _free_port()
        coordinator = ["--coordinator_address", f"127.0.0.1:{port}", "--num_processes", str(processes)]
        commands = [base + coordinator + ["--process_id", str(i)] for i in range(processes)]
    procs = [
        subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    for p in procs:
        _, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"{devices} devices, {processes} processes: exit {p.returncode}\n{err[-2000:]}")
    return json.loads((workdir / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="offline:bert-tiny")
    parser.add_argument("--num-layers", type=int, default=0)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "scaling.py"
        config.write_text(
            CONFIG.format(
                sentences=args.sentences, epochs=args.epochs, checkpoint=args.checkpoint, num_layers=args.num_layers
            )
        )
        for devices, processes in SETUPS:
            print(f"[scaling] {devices} device(s), {processes} process(es) ...", file=sys.stderr, flush=True)
            results = measure(config, Path(tmp) / f"run{devices}x{processes}", devices, processes)
            seconds = results["epochs"][-1]["total_s"]
            sentences = args.sentences
            rows.append({
                "devices": devices,
                "processes": processes,
                "epoch_s": seconds,
                "sentences_per_s": sentences / seconds,
                "per_device": sentences / seconds / devices,
                "losses": [e["loss"] for e in results["epochs"]],
                "dev_f1": results["dev"]["f1"],
            })
    single = rows[0]["sentences_per_s"]
    lines = [
        f"{'devices':>7} {'processes':>9} {'epoch s':>8} {'sent/s':>8} {'per device':>10} {'vs 1':>6} {'dev F1':>7}"
    ]
    for r in rows:
        lines.append(f"{r['devices']:>7} {r['processes']:>9} {r['epoch_s']:>8.2f} {r['sentences_per_s']:>8.1f} "
                     f"{r['per_device']:>10.1f} {r['sentences_per_s'] / single:>6.2f} {r['dev_f1']:>7.2f}")
    print("\n".join(lines))
    if args.json:
        out = {"environment": environment(), "setup": vars(args) | {"json": str(args.json)}, "rows": rows}
        args.json.write_text(json.dumps(out, indent=2))
        args.json.with_suffix(".txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
