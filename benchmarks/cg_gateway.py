"""Instructions per request through the gateway, counted by callgrind: load-independent A/B.

    .venv/bin/python benchmarks/cg_gateway.py                     # full pipeline, defaults
    .venv/bin/python benchmarks/cg_gateway.py --variant transport=aiohttp --variant server=uvicorn
    .venv/bin/python benchmarks/cg_gateway.py --tenants           # 10 vs 100,000 keys
    .venv/bin/python benchmarks/cg_gateway.py --scenario stream --requests 400

Each variant is a fresh gateway (``benchkit/targets.gateway``) started under callgrind with
counting off, warmed up, then counted over ``--requests`` requests at ``--connections``
(``benchkit/cg.py``). A variant is ``key=value[,key=value]`` with keys ``transport``,
``server`` (``serve --server``), ``tenants`` (1 = seed the tenant-scale population) or any
``SWITCHBOARD_*``/env name. ``--tenants`` is shorthand for the two tenant-scale variants.
Prints one line per variant and the ratio to the first.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import cg, targets
from benchkit.fake import FakeProvider
from benchkit.procs import progress


def measure_variant(
    fake: FakeProvider,
    workdir: Path,
    spec: dict[str, str],
    *,
    scenario: str,
    requests: int,
    connections: int,
) -> float:
    env = {k: v for k, v in spec.items() if k not in ("transport", "server", "tenants")}
    out_dir = workdir / "cg"
    gw = targets.gateway(
        fake,
        workdir,
        None,
        transport=spec.get("transport", "reqwest"),
        server=spec.get("server"),
        tenants=spec.get("tenants") == "1",
        wrap=lambda cmd: cg.wrap(cmd, out_dir),
        extra_env=env,
    )
    try:
        req = gw.requests[scenario]
        assert gw.proc is not None
        return cg.instructions_per_request(
            gw.proc.pid,
            out_dir,
            req.url,
            req.body,
            req.headers,
            requests=requests,
            connections=connections,
            stream=b'"stream":true' in req.body,
            wire=req.wire,
        )
    finally:
        gw.stop()


def parse_variant(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", default="pipeline")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--tenants", action="store_true", help="10 keys vs the tenant-scale seed")
    args = p.parse_args()
    if not cg.available():
        print("valgrind (callgrind) is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    variants = [parse_variant(v) for v in args.variant]
    if args.tenants:
        variants = [{**v, "tenants": t} for v in (variants or [{}]) for t in ("0", "1")]
    variants = variants or [{}]
    root = Path(tempfile.mkdtemp(prefix="cg-gateway-"))
    fake = FakeProvider(root / "fake", cpus=None).start()
    results: list[tuple[str, float]] = []
    try:
        for n, spec in enumerate(variants):
            label = ",".join(f"{k}={v}" for k, v in spec.items()) or "default"
            progress(f"variant {label}: starting the gateway under callgrind")
            per = measure_variant(
                fake,
                root / f"v{n}",
                spec,
                scenario=args.scenario,
                requests=args.requests,
                connections=args.connections,
            )
            results.append((label, per))
            progress(f"variant {label}: {per:,.0f} instructions per request")
    finally:
        fake.stop()
        shutil.rmtree(root, ignore_errors=True)
    base = results[0][1]
    print(f"{args.scenario}, {args.requests} requests at {args.connections} connections:")
    for label, per in results:
        print(f"  {label:<40} {per:>14,.0f} instr/request   {per / base:.3f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
