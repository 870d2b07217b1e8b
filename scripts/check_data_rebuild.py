"""Check that ``data_samples/`` and ``tests/data/`` come out of their build scripts exactly as
committed, from the origin data files (which are not part of the repository).

This is not a test: the test suite runs in any clone, and this check needs the origin files.
A maintainer who has them (and CI, where they lie beside the checkout) runs::

    python scripts/check_data_rebuild.py DATA_ROOT

It rebuilds both into a temporary directory with ``build_data_samples.py`` and
``build_test_data.py`` and compares: Parquet shards by content, every other file byte for byte.
Exit code 0: identical; 1: a difference (each one printed); 2: no origin files at DATA_ROOT.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
#: (build script, committed directory, files written by hand there) of each rebuilt set.
BUILDS = (
    ("build_data_samples.py", REPO / "data_samples", ()),
    ("build_test_data.py", REPO / "tests" / "data", ("SOURCES.md",)),
)


def files(root: Path, by_hand: tuple[str, ...] = ()) -> list[Path]:
    found = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
    return sorted(p for p in found if p.as_posix() not in by_hand)


def same(fresh: Path, committed: Path) -> bool:
    if committed.suffix == ".parquet":
        return pq.read_table(fresh).equals(pq.read_table(committed))
    return fresh.read_bytes() == committed.read_bytes()


def differences(
    script: str, committed: Path, by_hand: tuple[str, ...], data_root: Path
) -> list[str]:
    """What differs between a fresh build of ``script`` and ``committed``."""
    with tempfile.TemporaryDirectory(prefix="gristmill-rebuild-") as scratch:
        out = Path(scratch)
        command = [sys.executable, str(SCRIPTS / script), str(data_root), "--out", str(out)]
        built = subprocess.run(command, capture_output=True, text=True)
        if built.returncode != 0:
            return [f"{script} failed: {built.stderr.strip()[-2000:]}"]
        fresh_files, committed_files = files(out), files(committed, by_hand)
        found = [
            f"{committed / name}: {'only rebuilt' if name in fresh_files else 'only committed'}"
            for name in sorted(set(fresh_files) ^ set(committed_files))
        ]
        found += [
            f"{committed / name}: differs from its rebuild"
            for name in sorted(set(fresh_files) & set(committed_files))
            if not same(out / name, committed / name)
        ]
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data_root", type=Path, help="the origin data files (with MANIFEST.tsv)")
    args = parser.parse_args(argv)
    if not (args.data_root / "MANIFEST.tsv").is_file():
        print(f"no origin data files at {args.data_root} (MANIFEST.tsv missing)", file=sys.stderr)
        return 2
    found = [d for build in BUILDS for d in differences(*build, args.data_root)]
    for line in found:
        print(line)
    if not found:
        print("data_samples/ and tests/data/ rebuild exactly as committed")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
