"""Train a teacher or distill a student.

    python -m jaxkd.train --config configs/wnut16_minilm.py:teacher --workdir runs/teacher
    python -m jaxkd.train --config configs/conll03.py:efficient --workdir runs/efficient \\
        --config.teacher_workdir=runs/teacher --config.data.source=/data/conll2003

``--config.a.b=value`` overrides any key (an unknown key is an error listing
the valid ones; the keys are declared in ``jaxkd/config.py``). Rerunning the
same command in the same workdir resumes an interrupted run. Outcome:
``<workdir>/results.json``. On SIGTERM (a scheduler's preemption) the run
saves after its current step and exits with code 75: rerun it to continue.

Several processes (hosts) train one run together through ``jax.distributed``:
start the same command in each with ``--coordinator_address HOST:PORT
--num_processes P --process_id I`` (HOST:PORT reaches process 0), or with
``--distributed`` alone where jax finds them itself (Slurm, Open MPI, TPU).
The workdir must be one shared directory.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from jaxkd.config import valid_keys
from jaxkd.evaluate import METRIC_NAMES
from jaxkd.training.loop import Preempted, TrainingError, run
from jaxkd.training.mesh import initialize_processes, is_main_process
from jaxkd.training.preemption import EXIT_CODE

_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, logs and results.json")
_RESUME = flags.DEFINE_bool("resume", True, "continue an interrupted run found in --workdir (the default)")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "several processes: HOST:PORT where process 0 listens")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "several processes: how many", lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "several processes: this one's index, 0 to num_processes - 1", lower_bound=0
)
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "several processes, found by jax in the cluster's environment (Slurm, Open MPI, TPU)"
)
_CONFIG = None  # the --config flag, defined by cli() over the configuration it loaded


def _fail(message: str) -> None:
    print(f"jaxkd.train: error: {message}", file=sys.stderr)
    sys.exit(2)


def _start_processes() -> None:
    """jax.distributed, before any other JAX work, when the flags ask for it."""
    given = [_COORDINATOR.value is not None, _NUM_PROCESSES.value is not None, _PROCESS_ID.value is not None]
    if any(given) and not all(given):
        raise app.UsageError(
            "--coordinator_address, --num_processes and --process_id go together (or --distributed alone)"
        )
    if all(given) and _PROCESS_ID.value >= _NUM_PROCESSES.value:
        raise app.UsageError(f"--process_id {_PROCESS_ID.value} is not below --num_processes {_NUM_PROCESSES.value}")
    if all(given) or _DISTRIBUTED.value:
        initialize_processes(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    _start_processes()
    if _WORKDIR.value is None:
        raise app.UsageError("--workdir is required")
    try:
        results = run(_CONFIG.value, _WORKDIR.value, resume=_RESUME.value)
    except Preempted as stop:
        if is_main_process():
            print(f"[jaxkd] {stop} (exit code {EXIT_CODE})", file=sys.stderr)
        sys.exit(EXIT_CODE)
    except KeyboardInterrupt:  # a second Ctrl-C: the checkpoints are whole at any moment
        print("[jaxkd] stopped at once; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        sys.stderr.flush()
        os._exit(130)  # not through orbax's writer threads, which would report the interrupted save
    except (TrainingError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    except OSError as err:  # a read-only workdir, a full disk, ...
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err} (in --workdir {_WORKDIR.value})")
    except (AttributeError, KeyError) as err:
        # A fault inside training, not a configuration key: keep it apart from
        # the unknown-key errors that cli() reports for flag parsing.
        raise RuntimeError(f"jaxkd.train failed inside training: {type(err).__name__}: {err}") from err
    if "dev" in results and is_main_process():
        name = METRIC_NAMES[results["dev"]["metric"]]
        print(
            f"[jaxkd] {results['mode']} {results['method']}: best epoch {results['best_epoch']}, "
            f"dev {name} {results['dev']['score']:.2f}, test {name} {results['test']['score']:.2f} -> "
            f"{_WORKDIR.value}/results.json"
        )


def _config_arg(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the ``--config`` file argument, ``argv`` without it)."""
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            return a.split("=", 1)[1], argv[:i] + argv[i + 1:]
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1], argv[:i] + argv[i + 2:]
    return None, argv


def load_config_file(spec: str):
    """The configuration of ``path.py[:arg]`` (its ``get_config(arg)``), as
    ml_collections reads config files; every problem as one line, exit code 2."""
    path, _, arg = spec.partition(":")
    if not Path(path).is_file():
        _fail(f"--config {path}: no such file (e.g. configs/wnut16_minilm.py:teacher)")
    try:
        module_spec = importlib.util.spec_from_file_location("_jaxkd_config", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module.get_config(arg) if arg else module.get_config()
    except Exception as err:  # noqa: BLE001 - whatever the config file raises
        _fail(f"--config {spec}: the configuration cannot be built: {type(err).__name__}: {err}")


def _define_config_flag(config, argv: list[str]):
    """The ``--config`` flag over ``config``; ml_collections defines a flag for
    each ``--config.KEY`` override in ``argv`` here (an unknown key raises).
    A flag of an earlier call in this process is replaced, overrides and all."""
    for name in [n for n in flags.FLAGS if n == "config" or n.startswith("config.")]:
        delattr(flags.FLAGS, name)
    return config_flags.DEFINE_config_dict(
        "config", config, "the configuration (--config FILE.py[:ARG])", lock_config=True, sys_argv=argv
    )


def cli(argv: list[str] | None = None) -> None:
    """The command line: the configuration file is executed once, and
    ``--config.KEY=VALUE`` overrides apply to what it built."""
    global _CONFIG
    spec, argv = _config_arg(list(sys.argv if argv is None else argv))
    if spec is None:
        _fail("--config is required (e.g. --config configs/wnut16_minilm.py:teacher)")
    config = load_config_file(spec)
    try:
        _CONFIG = _define_config_flag(config, argv)
        app.run(main, argv=argv)
    except SystemExit as exit_:
        if exit_.code == 1:  # absl's flag-parsing and usage errors: a user error
            sys.exit(2)
        raise
    except (AttributeError, KeyError) as err:
        # ml_collections raises these while parsing an override of a key that
        # does not exist (main() turns the same types from training into a
        # RuntimeError, so they are not reported as a key error here).
        keys = valid_keys(config)
        unknown = [a.split("=", 1)[0][len("--config."):] for a in argv if a.startswith("--config.")]
        bad = [k for k in unknown if k not in keys] or unknown
        print(
            f"jaxkd.train: error: unknown configuration key {', '.join(bad)} ({err}).\nValid keys: {', '.join(keys)}",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    cli()
