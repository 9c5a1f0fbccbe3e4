"""The saved epochs of a run: ``<workdir>/checkpoints/``, an orbax
``CheckpointManager`` with a step per saved epoch e (0-based)::

    <workdir>/checkpoints/<e>/
        params/          the tagger's parameters
        opt_state/       the optimizer's state
        loop/            JSON: the loop's epoch, history and best
        metrics/         dev F1 and epoch, which rank the steps
        digests.json     SHA-256 of every file of the three items

Two steps are kept, each by its own policy: ``latest`` (the last epoch saved)
and ``best`` (the highest dev score; of equal scores, the earlier epoch); they are
one step when the last epoch is the best. Orbax writes a step into a temporary
directory and commits it by a rename, so a kill at any moment leaves the
previous steps whole (the next writer removes the temporary directory).
``digests.json`` is written after the commit, and a marker
``checkpoints/.saving-<e>`` spans the whole save: a step with the marker and
no digests (a kill between the commit and the digests) is never trusted: the
next writer removes it and redoes the epoch, and a reader refuses it. A step
whose files differ from its digests is refused. (Steps of runs saved before
digests existed have neither file and are read unverified.)

``Checkpoints(workdir, mid_epoch=True)`` is the same for the checkpoint
of a run stopped inside an epoch (``<workdir>/mid_epoch/<step>``, the step
counted over the run; the latest alone is kept, and none once the epoch's own
is saved): see :func:`jaxkd.training.state.save_mid_epoch`.

Reading is by name and item: ``restore("best", params=template)`` reads the
parameters alone, into the template's structure, dtypes and shardings (a run
saved on 4 devices restores onto 1). Nothing in a run is executed: arrays go
through tensorstore, everything else is JSON.

With several processes (``jax.distributed``) every process calls
:meth:`Checkpoints.save` and :meth:`Checkpoints.restore` together; orbax
writes each array shard once, and the JSON files are written by process 0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers as policies

from jaxkd.training import faults, full_disk, orbax_reports
from jaxkd.training.mesh import barrier, is_main_process
from jaxkd.training.steps import path_names

NAMES = ("best", "latest")
DIGESTS = "digests.json"
SAVING = ".saving-{step}"  # in checkpoints/: a save of that step has begun and not finished
MID_EPOCH = "mid_epoch"  # <workdir>/mid_epoch/<step>: where a run stopped inside an epoch


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose contents are damaged."""


def _rank(metrics: dict) -> tuple:
    """Higher is better: the dev score, then the earlier epoch (runs before
    2026-12 named the score ``dev_f1``)."""
    return (metrics["dev_score"] if "dev_score" in metrics else metrics["dev_f1"], -metrics["epoch"])


class _LoopHandler(ocp.JsonCheckpointHandler):
    """Orbax's JSON handler, with the tests' fault point inside a save (the
    step's temporary directory exists; the arrays are being written)."""

    async def async_save(self, directory, item=None, args=None):
        faults.point("save", "writing")
        return await super().async_save(directory, item, args)


@ocp.args.register_with_handler(_LoopHandler, for_save=True)
@dataclasses.dataclass
class _LoopSave(ocp.args.JsonSave):
    pass


@ocp.args.register_with_handler(_LoopHandler, for_restore=True)
@dataclasses.dataclass
class _LoopRestore(ocp.args.JsonRestore):
    pass


class Checkpoints:
    """The saved epochs of the run in ``workdir`` (see the module docstring).

    ``writable=False`` opens them read-only (an absent directory is a run with
    no checkpoint); ``writable=True`` creates the directory and removes what
    a save cut short left behind.
    """

    def __init__(self, workdir: str | Path, *, writable: bool = False, mid_epoch: bool = False):
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / (MID_EPOCH if mid_epoch else "checkpoints")
        self.mid_epoch = mid_epoch
        _refuse_legacy(self.directory)
        self._unverified = _unverified_steps(self.directory)
        if writable:
            _discard(self.directory, self._unverified)
            self._unverified = set()
        self._manager = None
        if writable or self.directory.is_dir():
            ranked = {} if mid_epoch else {"best_fn": _rank, "best_mode": "max"}
            options = ocp.CheckpointManagerOptions(
                **ranked,
                preservation_policy=policies.LatestN(n=1) if mid_epoch else policies.AnyPreservationPolicy(
                    [policies.LatestN(n=1), policies.BestN(get_metric_fn=_rank, n=1)]
                ),
                enable_async_checkpointing=False,
                create=writable,
                cleanup_tmp_directories=writable,
                save_root_metadata=writable,  # (orbax's read_only=True logs warnings on every open)
            )
            self._manager = ocp.CheckpointManager(self.directory, options=options)

    def step(self, name: str) -> int | None:
        """The epoch saved as ``name`` ("best" or "latest"); None if there is none."""
        if name not in NAMES:
            raise ValueError(f"a checkpoint is named {' or '.join(NAMES)}; got {name!r}")
        if self._manager is None:
            return None
        return self._manager.best_step() if name == "best" else self._manager.latest_step()

    def require(self, name: str) -> int:
        step = self.step(name)
        if step is None:
            raise FileNotFoundError(
                f"{self.directory} holds no {name!r} checkpoint: train first "
                f"(python -m jaxkd.train ... --workdir {self.workdir})"
            )
        return step

    def save(self, step: int, *, params, opt_state, loop_state: dict, dev_score: float | None) -> None:
        """Saves ``step`` (the epoch; mid-epoch: the step counted over the run)
        (all processes call it); ``opt_state=None`` saves none (a step that
        cannot be resumed); ``dev_score`` ranks the steps for ``best`` (None:
        mid-epoch)."""
        marker = self.directory / SAVING.format(step=step)
        if is_main_process():
            write_json(marker, {"step": step})
        barrier("jaxkd-saving")
        faults.point("save", "before-save")
        items = {"params": ocp.args.StandardSave(params), "loop": _LoopSave(loop_state)}
        if opt_state is not None:
            items["opt_state"] = ocp.args.StandardSave(opt_state)
        with full_disk.reported_once(self.directory, (params, opt_state), mid_epoch=self.mid_epoch):
            self._manager.save(
                step, args=ocp.args.Composite(**items), force=True,
                metrics=None if dev_score is None else {"dev_score": float(dev_score), "epoch": step},
            )
            self._manager.wait_until_finished()
        faults.point("save", "committed")
        step_dir = self.directory / str(step)
        if is_main_process():
            write_json(step_dir / DIGESTS, {item: file_digests(step_dir / item) for item in items}, indent=0)
        barrier("jaxkd-digests")
        faults.point("save", "saved")
        if is_main_process():
            marker.unlink()

    def remove(self) -> None:
        """Deletes every step (all processes call it): a mid-epoch checkpoint
        once the epoch's own is saved."""
        if self._manager is None:
            return
        if is_main_process():
            for step in self._manager.all_steps():
                shutil.rmtree(self.directory / str(step))
        barrier("jaxkd-remove")
        self._manager.reload()

    def restore(self, name: str, **templates) -> dict:
        """The items named by keyword (``params=``, ``opt_state=``) of checkpoint
        ``name``, each in its template's structure, dtypes and shardings; only
        those items' files are read.

        Raises:
          FileNotFoundError: no such checkpoint.
          ValueError: a template that does not fit (the first missing array, or
            the first shape that differs, is named).
          CheckpointError: damaged files (named).
        """
        step = self.require(name)
        step_dir = self._trusted(step)
        digests = _read_digests(step_dir)
        for item, template in templates.items():
            _check_fits(step_dir / item, template)
            if digests is not None:
                check_files(step_dir / item, digests.get(item, {}))
        args = ocp.args.Composite(**{item: ocp.args.StandardRestore(_abstract(t)) for item, t in templates.items()})
        failure = None
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as err:  # noqa: BLE001 - orbax/tensorstore raise many kinds
            first = (str(err).strip().splitlines() or [""])[0][:300]
            failure = CheckpointError(f"{step_dir}: cannot be read ({type(err).__name__}: {first})")
        if failure is not None:  # outside the except clause, which keeps the failed reads alive
            orbax_reports.collect_abandoned_reads(step_dir)
            raise failure
        return {item: _placed_like(restored[item], template) for item, template in templates.items()}

    def loop_state(self) -> dict | None:
        """The loop state saved with ``latest`` (None without a checkpoint)."""
        step = self.step("latest")
        if step is None:
            return None
        path = self._trusted(step) / "loop"
        digests = _read_digests(path.parent)
        if digests is not None:
            check_files(path, digests.get("loop", {}))
        try:
            return dict(self._manager.restore(step, args=ocp.args.Composite(loop=_LoopRestore()))["loop"])
        except Exception as err:  # noqa: BLE001 - a missing or damaged file
            raise CheckpointError(
                f"{path}: damaged ({type(err).__name__}: {err}); delete {self.directory} to start over"
            ) from None

    def _trusted(self, step: int) -> Path:
        """The directory of ``step``, refused when its save was cut short."""
        if step in self._unverified:
            raise CheckpointError(
                f"{self.directory / str(step)}: its save was cut short after the commit, before its checksums "
                f"(a kill): it is not trusted. Rerun the training command in {self.workdir} to redo that epoch"
            )
        return self.directory / str(step)


def _unverified_steps(directory: Path) -> set[int]:
    """Steps whose save began (a marker) and never wrote digests."""
    markers = directory.glob(SAVING.format(step="*")) if directory.is_dir() else ()
    steps = {int(m.name.rsplit("-", 1)[1]) for m in markers}
    return {s for s in steps if (directory / str(s)).is_dir() and not (directory / str(s) / DIGESTS).is_file()}


def _discard(directory: Path, steps: set[int]) -> None:
    """Removes the unverified ``steps`` and every save marker (process 0), before orbax lists the steps."""
    if is_main_process() and directory.is_dir():
        for step in sorted(steps):
            shutil.rmtree(directory / str(step))
        for marker in directory.glob(SAVING.format(step="*")):
            marker.unlink()
    barrier("jaxkd-discard")


def _placed_like(tree, template):
    """``tree`` as uncommitted as ``template``: orbax commits what it restores
    to a device, and jit compiles a function again for committed arguments,
    so weights restored into a run's uncommitted arrays (one device, no mesh)
    are made uncommitted too (a host copy costs less than a compile)."""
    leaves = jax.tree.leaves(template)
    if leaves and all(isinstance(leaf, jax.Array) and not leaf.committed for leaf in leaves):
        return jax.device_put(jax.device_get(tree))
    return tree


def _abstract(tree):
    """Arrays to restore into: each leaf's shape and dtype, and its sharding
    (the first local device for a leaf without one)."""
    default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def one(leaf):
        sharding = getattr(leaf, "sharding", None)
        return jax.ShapeDtypeStruct(
            leaf.shape, leaf.dtype, sharding=sharding if isinstance(sharding, jax.sharding.Sharding) else default
        )

    return jax.tree.map(one, tree)


def _leaf_names(tree) -> dict[str, tuple]:
    return {
        ".".join(path_names(p)): tuple(getattr(leaf, "shape", ()))
        for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _check_fits(item_dir: Path, template) -> None:
    """Refuses a template whose arrays differ from the saved item's, naming the first."""
    try:
        saved = _leaf_names(ocp.PyTreeCheckpointHandler().metadata(epath.Path(item_dir)))
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{item_dir}: cannot be read ({type(err).__name__}: {str(err)[:300]})") from None
    wanted = _leaf_names(template)
    for name, shape in wanted.items():
        if name not in saved:
            raise ValueError(f"checkpoint {item_dir} does not fit the model: it has no array {name}")
        if saved[name] != shape:
            raise ValueError(
                f"checkpoint {item_dir} does not fit the model: {name} {list(saved[name])} "
                f"where the model has {list(shape)}"
            )
    if len(saved) != len(wanted):
        extra = next(n for n in saved if n not in wanted)
        raise ValueError(
            f"checkpoint {item_dir} holds {len(saved)} arrays but the model expects {len(wanted)} (e.g. {extra})"
        )


def write_json(path: Path, value, *, indent: int = 2) -> None:
    """Writes ``value`` as JSON to a temporary file, flushed to disk, then
    renames it into place: a reader sees the old file or the new one, whole."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=indent)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def file_digests(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory``, by relative path."""
    out = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out[str(file.relative_to(directory))] = digest.hexdigest()
    return out


def _read_digests(step_dir: Path) -> dict | None:
    path = step_dir / DIGESTS
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise CheckpointError(f"{path}: damaged ({err})") from None


def check_files(item_dir: Path, expected: dict[str, str]) -> None:
    """Compares an item's files with their digests (before any is handed to
    orbax, whose reader reports damage with stray tracebacks, or not at all)."""
    found = file_digests(item_dir)
    for name, digest in expected.items():
        if name not in found:
            raise CheckpointError(
                f"{item_dir / name}: missing; the checkpoint is incomplete "
                "(restore it from a copy, or delete it to train again)"
            )
        if found[name] != digest:
            raise CheckpointError(
                f"{item_dir / name}: does not match the checksum it was saved with; the checkpoint is damaged "
                "(restore it from a copy, or delete it to train again)"
            )


LEGACY_NAMES = ("best", "latest", "latest.old", "best.old")


def is_legacy(directory: Path) -> bool:
    """Checkpoints of jaxkd before 2026-11 (``checkpoints/best`` and ``latest``)."""
    return any((directory / name / "structure.json").is_file() for name in LEGACY_NAMES)


def _refuse_legacy(directory: Path) -> None:
    if is_legacy(directory):
        raise CheckpointError(
            f"{directory} holds checkpoints in the layout of jaxkd before 2026-11 (best/ and latest/ directories); "
            f"convert them once with: python -m jaxkd.convert_run {directory.parent}"
        )
