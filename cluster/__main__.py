"""Local Letsema cluster without Docker: ``python -m cluster {up,status,down,reset,ring-stop,ring-start}``.

Normally called through ``./letsema`` (which installs what is missing first).
"""

from __future__ import annotations

import argparse
import sys

from cluster import cassandra, districts, ops_cli
from cluster.commands import down, reset, status, up
from cluster.procs import StepFailed
from cluster.profiles import PROFILES
from config.district import DistrictConfigError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="letsema", description="Local Letsema cluster (no Docker).")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="demo", help=argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start (or resume) every service; safe to re-run")
    u.add_argument("--ring", type=int, default=None, choices=[1, 2, 3],
                   help="Cassandra nodes (default: the existing ring's size, or 1 for a new cluster)")
    u.add_argument("--no-demo-data", action="store_true", help="skip loading the demo data set")
    u.add_argument("--web-workers", type=int, default=2)
    u.add_argument("--standby", action="store_true",
                   help="also run a synchronous streaming standby per district (docs/runbooks/pg-failover.md)")
    sub.add_parser("status", help="list every process with its port and state")
    sub.add_parser("down", help="stop everything cleanly; data is kept")
    sub.add_parser("reset", help="stop everything and wipe the cluster's var/ directory")
    rs = sub.add_parser("ring-stop", help="stop one Cassandra node (drills and tests)")
    rs.add_argument("node", type=int)
    rs.add_argument("--kill", action="store_true", help="SIGKILL instead of a clean stop")
    rst = sub.add_parser("ring-start", help="start one Cassandra node again")
    rst.add_argument("node", type=int)
    ad = sub.add_parser("add-district", help="add a district node to the running cluster (no restart of the others)")
    ad.add_argument("code")
    ad.add_argument("--name", required=True)
    ad.add_argument("--mfi", action="append", default=[], metavar="CODE=NAME", help="an MFI of the district (repeat)")
    ad.add_argument("--web-workers", type=int, default=2)
    for verb, text in (("suspend-district", "peers stop calling the district and refuse its requests"),
                       ("resume-district", "make a suspended or removed district active again")):
        sub.add_parser(verb, help=text).add_argument("code")
    rd = sub.add_parser("remove-district", help="suspend a district and stop its processes (data kept)")
    rd.add_argument("code")
    rd.add_argument("--purge", action="store_true", help="districts added live only: delete data, keys, ring entry")
    ops_cli.add_parsers(sub)  # pg-promote, pg-rejoin, pg-async, pg-status, drill
    args = ap.parse_args(argv)
    p = PROFILES[args.profile]
    try:
        if args.cmd == "up":
            up(p, args.ring or cassandra.ring_size(p) or 1, not args.no_demo_data, args.web_workers,
               standby=args.standby or None)
        elif args.cmd == "status":
            return status(p)
        elif args.cmd == "down":
            down(p)
        elif args.cmd == "reset":
            reset(p)
        elif args.cmd == "ring-stop":
            cassandra.stop_node(p, args.node, kill=args.kill)
        elif args.cmd == "ring-start":
            cassandra.start_node(p, args.node, cassandra.ring_size(p))
        elif args.cmd == "add-district":
            mfis = [tuple(m.split("=", 1)) for m in args.mfi]
            if any(len(m) != 2 or not all(m) for m in mfis):
                raise StepFailed("--mfi takes CODE=NAME, e.g. --mfi \"qacha-credit=Qacha's Nek Credit\"")
            districts.add_district(p, args.code, args.name, mfis, web_workers=args.web_workers)
        elif args.cmd == "suspend-district":
            districts.set_status(p, args.code, "suspended")
        elif args.cmd == "resume-district":
            districts.resume_district(p, args.code)
        elif args.cmd == "remove-district":
            districts.remove_district(p, args.code, purge=args.purge)
        elif args.cmd in ops_cli.COMMANDS:
            return ops_cli.run(p, args)
    except (StepFailed, DistrictConfigError) as exc:
        print(f"\nletsema: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
