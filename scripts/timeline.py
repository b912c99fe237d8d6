"""Summarise a test timeline written with UMODELS_TEST_TIMELINE=FILE (see tests/conftest.py).

    python scripts/timeline.py FILE [--top N] [--write-scope-seconds tests/scope_seconds.json]

For each backend's suite in the file (``bash .ci/run`` appends all three): per pytest worker, its
number of tests, busy seconds, when it ended and how long it then sat idle until the last worker
finished; and the N longest test modules (or classes within a module) with the XLA compilations
they ran and the seconds those took (JAX only; zero on the other backends).

``--write-scope-seconds`` stores every scope's seconds per backend in a JSON file (the backends in
the timeline replace theirs, the others are kept); tests/conftest.py queues the longest scopes
first from it, so that the pytest-xdist workers end together.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import NamedTuple


class Row(NamedTuple):
    worker: str
    start: float
    end: float
    compiles: int
    compile_seconds: float
    nodeid: str


def scope_of(nodeid: str) -> str:
    """pytest-xdist's loadscope unit (as in tests/conftest.py): the module, or the class."""
    return nodeid.rsplit("::", 1)[0]


def scope_seconds(rows: list[Row]) -> dict[str, float]:
    seconds: dict[str, float] = collections.defaultdict(float)
    for row in rows:
        seconds[scope_of(row.nodeid)] += row.end - row.start
    return dict(seconds)


def summarise(rows: list[Row], top: int) -> None:
    first = min(row.start for row in rows)
    last = max(row.end for row in rows)
    busy_total = sum(row.end - row.start for row in rows)
    compile_total = sum(row.compile_seconds for row in rows)
    print(f"{len(rows)} tests, {last - first:.0f} s from the first start to the last end; "
          f"busy {busy_total:.0f} s, of which compiling {compile_total:.0f} s")
    by_worker = collections.defaultdict(list)
    for row in rows:
        by_worker[row.worker].append(row)
    for worker, items in sorted(by_worker.items()):
        busy = sum(item.end - item.start for item in items)
        end = max(item.end for item in items)
        print(f"  {worker}: {len(items)} tests, busy {busy:.0f} s, ends {end - first:.0f} s "
              f"(idle at the end {last - end:.0f} s)")
    scopes = collections.defaultdict(lambda: [0.0, 0, 0.0])
    for row in rows:
        scope = scopes[scope_of(row.nodeid)]
        scope[0] += row.end - row.start
        scope[1] += row.compiles
        scope[2] += row.compile_seconds
    print("longest scopes (module, or class within a module): seconds, compilations, compiling seconds")
    for name, (seconds, compiles, compiling) in sorted(scopes.items(), key=lambda item: -item[1][0])[:top]:
        print(f"  {seconds:7.1f} s  {compiles:6d}  {compiling:7.1f} s  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timeline")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--write-scope-seconds", type=Path, metavar="JSON",
                        help="store each scope's seconds per backend here (tests/scope_seconds.json)")
    args = parser.parse_args()
    suites = collections.defaultdict(list)
    with open(args.timeline) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("\t", 6)
            if len(fields) != 7:
                raise SystemExit(f"{args.timeline}, line {number}: expected 7 tab-separated fields "
                                 f"(backend, worker, start, end, compilations, compiling seconds, test id), "
                                 f"got {len(fields)}; was it written by an older tests/conftest.py?")
            backend, worker, start, end, compiles, compiling, nodeid = fields
            suites[backend].append(Row(worker, float(start), float(end), int(compiles), float(compiling), nodeid))
    if not suites:
        raise SystemExit(f"{args.timeline} holds no tests")
    for backend, rows in suites.items():
        print(f"== {backend}")
        summarise(rows, args.top)
    if args.write_scope_seconds:
        path = args.write_scope_seconds
        stored = json.loads(path.read_text()) if path.exists() else {}
        for backend, rows in suites.items():
            stored[backend] = {scope: round(seconds, 1) for scope, seconds
                               in sorted(scope_seconds(rows).items(), key=lambda item: -item[1])}
        path.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"wrote {path} ({', '.join(f'{backend}: {len(stored[backend])} scopes' for backend in suites)})")


if __name__ == "__main__":
    main()
