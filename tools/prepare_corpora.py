"""Builds jaxkd/corpora/ from git mirrors of the corpora's public repositories.

    python tools/prepare_corpora.py --wnut17 MIRROR --btc MIRROR --ud-ewt MIRROR

Each MIRROR is a git directory (a clone or a bare mirror) of, in order,
``leondz/emerging_entities_17``, ``GateNLP/broad_twitter_corpus`` and
``UniversalDependencies/UD_English-EWT``. The files are read from the
mirror's HEAD with ``git show``, written gzip-compressed (no timestamp, so
a rebuild is byte-identical) and described in each corpus's ``SOURCE.md``
with the commit they came from; each licence file is copied beside them.

What is changed, and why (also written into ``SOURCE.md``):

* WNUT-17: nothing; the files are the shared task's.
* BTC: the recommended split of its README (``train_dev_test_conll/``);
  token lines whose word is empty or only white space are dropped (they
  are all tagged ``O``; jaxkd's reader refuses an empty word).
* UD English-EWT: ``en_ewt-ud-train.conllu`` is over the mirror's size
  limit, so it is rebuilt by concatenating the per-document files of
  ``not-to-release/sources/`` in the order of ``not-to-release/file-lists/
  files.train`` and checked against the released file's git blob id (the
  same rebuild reproduces dev and test byte for byte). Only what jaxkd reads
  is kept: ``# sent_id`` comments and the ID, FORM, UPOS and XPOS columns
  (the other six are replaced by ``_``); multi-word token ranges and empty
  nodes stay, as the format has them.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "jaxkd" / "corpora"


def _git(mirror: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(mirror), *args], check=True, capture_output=True).stdout


def _show(mirror: Path, path: str) -> bytes:
    return _git(mirror, "show", f"HEAD:{path}")


def _commit(mirror: Path) -> str:
    return _git(mirror, "log", "-1", "--format=%H %cs").decode().strip()


def _write_gz(path: Path, data: bytes) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write(data)


def _source_md(directory: Path, title: str, repo: str, commit: str, licence: str, files: dict, changes: str,
               citation: str) -> None:
    rows = "\n".join(f"| `{out}` | `{src}` | {n:,} |" for out, (src, n) in files.items())
    sha, date = commit.split()
    text = (
        f"# {title}\n\nFrom https://github.com/{repo} at commit `{sha}` ({date}).\n\n"
        f"Licence: {licence} (the licence file beside this one).\n\n"
        f"| file here | source file | sentences |\n| --- | --- | --- |\n{rows}\n\n"
        f"## Changes\n\n{changes}\n\n## Citation\n\n{citation}\n"
    )
    (directory / "SOURCE.md").write_text(text)


def _count_blank_separated(data: bytes) -> int:
    n, inside = 0, False
    for line in data.decode("utf-8").split("\n"):
        if line.strip():
            inside = True
        elif inside:
            n, inside = n + 1, False
    return n + inside


def wnut17(mirror: Path) -> None:
    out = OUT / "wnut17"
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, name in (("train", "wnut17train.conll"), ("dev", "emerging.dev.conll"),
                        ("test", "emerging.test.annotated")):
        data = _show(mirror, name)
        _write_gz(out / f"{split}.conll.gz", data)
        files[f"{split}.conll.gz"] = (name, _count_blank_separated(data))
    readme = _show(mirror, "README.md").decode()
    start = readme.index("## Usage and acknowledgment")
    (out / "LICENSE.md").write_text(
        "The WNUT-17 Emerging Entities data is distributed under the Creative Commons Attribution 4.0 "
        "International licence (CC BY 4.0): https://creativecommons.org/licenses/by/4.0/\n\n"
        "The source repository has no licence file; this is its README's statement, quoted:\n\n"
        + "\n".join("> " + line if line else ">" for line in readme[start:].strip().split("\n")) + "\n"
    )
    _source_md(out, "WNUT-17 Emerging Entities", "leondz/emerging_entities_17", _commit(mirror), "CC BY 4.0",
               files, "None: the files are compressed, not altered.",
               "Leon Derczynski, Eric Nichols, Marieke van Erp, Nut Limsopatham. 2017. Results of the WNUT2017 "
               "Shared Task on Novel and Emerging Entity Recognition. In Proceedings of the 3rd Workshop on "
               "Noisy User-generated Text (W-NUT), EMNLP.")


def btc(mirror: Path) -> None:
    out = OUT / "btc"
    out.mkdir(parents=True, exist_ok=True)
    files, dropped = {}, {}
    for split in ("train", "dev", "test"):
        name = f"train_dev_test_conll/btc.{split}"
        lines = _show(mirror, name).decode("utf-8").split("\n")
        kept = [line for line in lines if not (line.strip() and not line.split("\t")[0].strip())]
        for line in lines:
            if line.strip() and not line.split("\t")[0].strip() and line.split("\t")[-1].strip() != "O":
                raise SystemExit(f"{name}: an empty word with a tag other than O: {line!r}")
        dropped[split] = len(lines) - len(kept)
        data = "\n".join(kept).encode("utf-8")
        _write_gz(out / f"{split}.conll.gz", data)
        files[f"{split}.conll.gz"] = (name, _count_blank_separated(data))
    shutil.copyfile(_path(mirror, "LICENSE"), out / "LICENSE")
    changes = ("The README's recommended split (test: section F; dev: the second half of section H; train: the "
               "rest), as the repository's `train_dev_test_conll/` holds it. Token lines whose word is empty or "
               "only white space are dropped, all of them tagged `O`: "
               + ", ".join(f"{n} in {s}" for s, n in dropped.items()) + ".")
    _source_md(out, "Broad Twitter Corpus", "GateNLP/broad_twitter_corpus", _commit(mirror), "CC BY 4.0", files,
               changes, "Leon Derczynski, Kalina Bontcheva, Ian Roberts. 2016. Broad Twitter Corpus: A Diverse "
               "Named Entity Recognition Resource. In Proceedings of COLING 2016, pages 1169-1179.")


def _path(mirror: Path, name: str) -> Path:
    tmp = OUT / ".tmp"
    tmp.write_bytes(_show(mirror, name))
    return tmp


def _strip_conllu(data: bytes) -> bytes:
    out = []
    for line in data.decode("utf-8").split("\n"):
        if line.startswith("#"):
            if line.startswith("# sent_id"):
                out.append(line)
        elif line:
            f = line.split("\t")
            out.append("\t".join([f[0], f[1], "_", f[3], f[4], "_", "_", "_", "_", "_"]))
        else:
            out.append(line)
    return "\n".join(out).encode("utf-8")


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def ud_ewt(mirror: Path) -> None:
    out = OUT / "ud_english_ewt"
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in ("train", "dev", "test"):
        name = f"en_ewt-ud-{split}.conllu"
        expected = _git(mirror, "rev-parse", f"HEAD:{name}").decode().strip()
        listing = _show(mirror, f"not-to-release/file-lists/files.{split}").decode().split()
        data = b"".join(_show(mirror, f"not-to-release/sources/{doc}") for doc in listing)
        if _git_blob_id(data) != expected:
            raise SystemExit(f"{name}: the documents of files.{split} do not rebuild the released file")
        stripped = _strip_conllu(data)
        _write_gz(out / f"{name}.gz", stripped)
        files[f"{name}.gz"] = (name, stripped.count(b"# sent_id"))
    shutil.copyfile(_path(mirror, "LICENSE.txt"), out / "LICENSE.txt")
    (OUT / ".tmp").unlink()
    changes = ("`en_ewt-ud-train.conllu` was rebuilt from the per-document files of `not-to-release/sources/` in "
               "the order of `not-to-release/file-lists/files.train`; the rebuild has the released file's git blob "
               "id (and the same rebuild gives dev and test byte for byte). Only what jaxkd reads is kept: the "
               "`# sent_id` comments and the columns ID, FORM, UPOS and XPOS; the other six columns (LEMMA, FEATS, "
               "HEAD, DEPREL, DEPS, MISC) are replaced by `_`. Multi-word token ranges and empty nodes are kept. "
               "This derived data is shared under the same licence (CC BY-SA 4.0).")
    _source_md(out, "Universal Dependencies English Web Treebank (UD_English-EWT)",
               "UniversalDependencies/UD_English-EWT", _commit(mirror), "CC BY-SA 4.0", files, changes,
               "Natalia Silveira, Timothy Dozat, Marie-Catherine de Marneffe, Samuel Bowman, Miriam Connor, John "
               "Bauer, Christopher D. Manning. 2014. A Gold Standard Dependency Corpus for English. In Proceedings "
               "of LREC 2014.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wnut17", type=Path)
    parser.add_argument("--btc", type=Path)
    parser.add_argument("--ud-ewt", type=Path)
    args = parser.parse_args()
    for build, mirror in ((wnut17, args.wnut17), (btc, args.btc), (ud_ewt, args.ud_ewt)):
        if mirror is not None:
            build(mirror)
            print(f"{build.__name__}: from {mirror} at {_commit(mirror)}")


if __name__ == "__main__":
    main()
