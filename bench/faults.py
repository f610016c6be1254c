"""The long fault run: several rounds of worker SIGKILL, Redis restart and PostgreSQL outage under load.

Run as root on a machine whose local PostgreSQL and Redis it may stop and start (like CI):
    .venv/bin/python bench/faults.py --rounds 5 --outage 10 --database postgresql://postgres@127.0.0.1:5432/test \
        --broker redis://127.0.0.1:6379/0 [--out docs/faults.md]
or, where others use those servers, with a PostgreSQL cluster and a Redis of its own on free ports:
    .venv/bin/python bench/faults.py --private-servers --rounds 3 [--out docs/faults.md]

The same scenario as ``tests/integration/test_faults.py`` (``tests/integration/faults.py``), longer:
more rounds, longer database outages, a faster upload stream. Exits non-zero when anything was lost,
stuck, duplicated or answered with something other than 202/503.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testsupport.factories import sample_photos  # noqa: E402
from testsupport.faults import FaultRun  # noqa: E402
from testsupport.live_stack import PrivateServers, SharedServers, Stack, servers_controllable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL stays down per round")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between faults")
    parser.add_argument("--upload-every", type=float, default=0.1)
    parser.add_argument("--timeout", type=int, default=10, help="RECOGNITION_TIMEOUT_S for the sweeper")
    parser.add_argument("--worker-pool", default="prefork")
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument("--private-servers", action="store_true",
                        help="start a PostgreSQL and a Redis of its own instead of stopping the machine's")
    parser.add_argument("--out", type=Path, default=None, help="append a Markdown summary here")
    args = parser.parse_args()
    problem = servers_controllable()
    if problem:
        print(problem, file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    servers = PrivateServers(tmp) if args.private_servers else SharedServers
    database, broker = (servers.database_url, servers.broker_url) if args.private_servers else (args.database,
                                                                                                 args.broker)
    try:
        return run(args, tmp, servers, database, broker)
    finally:
        if args.private_servers:
            servers.close()


def run(args, tmp: Path, servers, database: str, broker: str) -> int:
    stack = Stack(tmp, database, broker, RECOGNITION_TIMEOUT_S=args.timeout, SWEEP_MAX_REQUEUES=50)
    stack.prepare()
    photos = [p.read_bytes() if isinstance(p, Path) else p for p, _ in sample_photos(per_class=2, classes=5)]
    stack.start_worker(args.worker_concurrency, args.worker_pool)
    try:
        warm_up = stack.upload(photos[0])
        stack.wait_finished(warm_up, timeout=180)
        fault_run = FaultRun(stack, photos, upload_every=args.upload_every, servers=servers)
        fault_run.outcome.accepted.append(warm_up)
        outcome = fault_run.run(rounds=args.rounds, pause=args.pause, outage=args.outage, drain_timeout=600)
    finally:
        stack.stop()
    print("\n".join(outcome.events))
    print(outcome.summary())
    ok = not (outcome.bad_answers or outcome.stuck or outcome.failed_without_reason
              or outcome.rows != len(set(outcome.accepted)))
    for line in outcome.bad_answers[:20]:
        print("  BAD", line)
    if args.out:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## bench/faults.py, {time.strftime('%Y-%m-%d %H:%M')} UTC\n\n"
                     f"`--rounds {args.rounds} --outage {args.outage} --pause {args.pause} "
                     f"--upload-every {args.upload_every} --timeout {args.timeout} --worker-pool {args.worker_pool} "
                     f"--worker-concurrency {args.worker_concurrency}"
                     f"{' --private-servers' if args.private_servers else ''}`: "
                     f"**{'passed' if ok else 'FAILED'}** — {outcome.summary()}.\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
