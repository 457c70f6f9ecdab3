"""What experiment tracking adds to the install: the distributions that kedro-mlflow and
MLflow bring and no other dependency of the project needs, with their installed size.

Usage (from the project root, in the project's environment)::

    python benchmarks/tracking_footprint.py                    # the table
    python benchmarks/tracking_footprint.py --pins > tracking-only.txt
    pip download --no-deps --no-cache-dir -d wheels -r tracking-only.txt
    time pip install --no-deps --no-cache-dir --target scratch -r tracking-only.txt

The dependencies are those of ``pyproject.toml`` (``--extras test,jupyter`` adds
extras); their requirements are followed through the installed distributions' metadata.
"""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TRACKING = ("kedro-mlflow", "mlflow")
Root = tuple[str, tuple[str, ...]]


def requirements(name: str, extras: tuple[str, ...] = ()) -> list[Root]:
    """The requirements of an installed distribution (with ``extras``) that apply."""
    found = []
    for text in metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        environments = [{"extra": extra} for extra in (extras or ("",))]
        if marker is not None and not any(marker.evaluate(e) for e in environments):
            continue
        found.append((requirement.name, tuple(requirement.extras)))
    return found


def closure(roots: list[Root]) -> set[str]:
    """Every installed distribution that ``roots`` need, by canonical name."""
    seen: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if key in seen and set(extras) <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | set(extras)
        todo += requirements(name, extras)
    return set(seen)


def installed_bytes(name: str) -> int:
    distribution = metadata.distribution(name)
    paths = (Path(distribution.locate_file(f)) for f in distribution.files or [])
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", default="pyproject.toml")
    parser.add_argument("--extras", default="", help="e.g. test,jupyter")
    parser.add_argument("--pins", action="store_true", help="name==version lines only")
    args = parser.parse_args()
    project = tomllib.loads(Path(args.pyproject).read_text())["project"]
    texts = list(project["dependencies"])
    for extra in filter(None, args.extras.split(",")):
        texts += project["optional-dependencies"][extra]
    direct = [(r.name, tuple(r.extras)) for r in map(Requirement, texts)]
    tracking = {canonicalize_name(n) for n in TRACKING}
    others = closure([d for d in direct if canonicalize_name(d[0]) not in tracking])
    mine = closure([d for d in direct if canonicalize_name(d[0]) in tracking])
    rows = sorted(
        ((installed_bytes(n), n, metadata.version(n)) for n in mine - others),
        reverse=True,
    )
    if args.pins:
        for _, name, version in rows:
            print(f"{name}=={version}")
        return
    for size, name, version in rows:
        print(f"{size / 2**20:8.1f} MiB  {name}=={version}")
    total = sum(size for size, _, _ in rows)
    print(f"{len(rows)} distributions, {total / 2**20:.1f} MiB installed")


if __name__ == "__main__":
    main()
