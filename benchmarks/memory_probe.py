"""The gateway's start-up under ``tracemalloc``, run by ``memory_bench.py --python-view``.

Runs what ``serve`` runs in its worker (``create_app`` and the app's lifespan start-up) in this
process, printing the RSS after each stage and the live Python allocations at the end grouped by
the package whose code allocated them (import-time allocations land on the imported module),
plus the packages in ``sys.modules``. Needs DATABASE_URL (migrated) and the secret key in the
environment; ``memory_bench.py`` sets them.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import sys
import tracemalloc
from pathlib import Path

FRAMES = int(os.environ.get("PROBE_FRAMES", "1"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def package_of(filename: str) -> str:
    """``.../site-packages/strawberry/x.py`` -> ``strawberry``; ``.../backend/dlp/x.py`` ->
    ``backend.dlp``; the stdlib -> ``stdlib:<module>``."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        return rest[0].split(".")[0] if rest else filename
    if "backend" in parts:
        i = parts.index("backend")
        return ".".join(parts[i : i + 2]).removesuffix(".py")
    if "python3" in "".join(parts):
        return "stdlib:" + Path(filename).stem
    return filename


def top(snapshot: tracemalloc.Snapshot, n: int = 30) -> None:
    sizes: collections.Counter[str] = collections.Counter()
    for stat in snapshot.statistics("filename"):
        sizes[package_of(stat.traceback[0].filename)] += stat.size
    total = sum(sizes.values())
    print(f"\nlive Python allocations at the end: {total / 2**20:.1f} MB; top packages:")
    for name, size in sizes.most_common(n):
        print(f"  {size / 2**20:7.2f} MB  {name}")


def main() -> None:
    stages: list[tuple[str, float]] = [("interpreter", rss_mb())]
    trace = os.environ.get("PROBE_TRACEMALLOC", "1") == "1"
    if trace:
        tracemalloc.start(FRAMES)
    from backend.app import create_app
    from backend.config import Settings

    stages.append(("import backend.app", rss_mb()))
    app = create_app(Settings.from_env())
    stages.append(("create_app", rss_mb()))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            stages.append(("lifespan start-up (gateway built)", rss_mb()))
            gc.collect()
            if trace:
                snap = tracemalloc.take_snapshot()
                top(snap)
            mods = collections.Counter(m.split(".")[0] for m in list(sys.modules))
            print(f"\n{len(sys.modules)} modules loaded; most by top-level package:")
            for name, count in mods.most_common(25):
                print(f"  {count:5d}  {name}")

    asyncio.run(start())
    print("\nRSS by stage (this process only; tracemalloc adds its own overhead):")
    for name, mb in stages:
        print(f"  {mb:7.1f} MB  {name}")


if __name__ == "__main__":
    main()
