"""A request's fixed cost through the whole server, against an earlier revision in the same run.

    python bench/overhead.py 665c91f

Checks the revision out in a temporary git worktree, and serves the bundled sample from it and from this
tree (one server each, keys on). Cheap reads the engine hardly touches (answers from the response cache,
/healthz) are asked 400 times per round, the rounds alternating between the two servers; prints each
read's median per round, the median of those, and this tree's over the revision's.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from harness import gamelens_server

ROOT = Path(__file__).resolve().parent.parent
KEY = "glk_bench_overhead_key_0123456789"
READS = ["/api/v1/games?limit=1&fields=app_id", "/api/v1/games?genres=Indie&limit=20", "/healthz"]
ROUNDS, ASKED, WARM = 5, 400, 50


def medians(base: str, path: str) -> float:
    """The median time of ASKED requests, in ms, after WARM unmeasured ones."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as http:
        for _ in range(WARM):
            http.get(path).raise_for_status()
        took = []
        for _ in range(ASKED):
            start = time.perf_counter()
            http.get(path).raise_for_status()
            took.append(time.perf_counter() - start)
    return statistics.median(took) * 1000


def main(revision: str) -> None:
    with tempfile.TemporaryDirectory(prefix="gamelens-overhead-") as tmp, ExitStack() as servers:
        old_tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old_tree), revision],
                       check=True)
        try:
            bases = {}
            for name, src in ((revision, old_tree / "src"), ("this tree", ROOT / "src")):
                base, _ = servers.enter_context(gamelens_server(
                    Path(tmp) / name.replace(" ", "-"), PYTHONPATH=str(src), GAMELENS_AUTH="on",
                    GAMELENS_ADMIN_KEY=KEY))
                httpx.post(f"{base}/api/v1/uploads/sample?wait=true", headers={"Authorization": f"Bearer {KEY}"},
                           timeout=300).raise_for_status()
                bases[name] = base
            runs = {(path, name): [] for path in READS for name in bases}
            for path in READS:
                for _ in range(ROUNDS):
                    for name, base in bases.items():
                        runs[(path, name)].append(medians(base, path))
            print(f"p50 ms per request, median of {ROUNDS} rounds of {ASKED} (each round's median in brackets)")
            for path in READS:
                old, new = (statistics.median(runs[(path, name)]) for name in bases)
                spread = {name: ", ".join(f"{x:.2f}" for x in runs[(path, name)]) for name in bases}
                print(f"{path:40} {revision}: {old:.3f} [{spread[revision]}]  this tree: {new:.3f} "
                      f"[{spread['this tree']}]  ratio {new / old:.2f}")
        finally:
            servers.close()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], check=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "HEAD~1")
