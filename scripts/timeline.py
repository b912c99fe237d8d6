"""Summarise a test timeline written with UMODELS_TEST_TIMELINE=FILE (see tests/conftest.py).

    python scripts/timeline.py FILE [--top N]

For each backend's suite in the file (``bash .ci/run`` appends all three): per pytest worker, its
number of tests, busy seconds, when it ended and how long it then sat idle until the last worker
finished; and the N longest test modules (or classes within a module).
"""

from __future__ import annotations

import argparse
import collections


def summarise(rows: list[tuple[str, float, float, str]], top: int) -> None:
    first = min(row[1] for row in rows)
    last = max(row[2] for row in rows)
    print(f"{len(rows)} tests, {last - first:.0f} s from the first start to the last end")
    by_worker = collections.defaultdict(list)
    for row in rows:
        by_worker[row[0]].append(row)
    for worker, items in sorted(by_worker.items()):
        busy = sum(end - start for _, start, end, _ in items)
        end = max(item[2] for item in items)
        print(f"  {worker}: {len(items)} tests, busy {busy:.0f} s, ends {end - first:.0f} s "
              f"(idle at the end {last - end:.0f} s)")
    scopes = collections.defaultdict(float)
    for _, start, end, nodeid in rows:
        path, _, rest = nodeid.partition("::")
        scope = path + ("::" + rest.split("::")[0] if "::" in rest else "")
        scopes[scope] += end - start
    print("longest scopes (module, or class within a module):")
    for scope, seconds in sorted(scopes.items(), key=lambda item: -item[1])[:top]:
        print(f"  {seconds:7.1f} s  {scope}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timeline")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    suites = collections.defaultdict(list)
    with open(args.timeline) as handle:
        for line in handle:
            backend, worker, start, end, nodeid = line.rstrip("\n").split("\t", 4)
            suites[backend].append((worker, float(start), float(end), nodeid))
    if not suites:
        raise SystemExit(f"{args.timeline} holds no tests")
    for backend, rows in suites.items():
        print(f"== {backend}")
        summarise(rows, args.top)


if __name__ == "__main__":
    main()
