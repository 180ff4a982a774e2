"""Operator commands for failover and drills, registered into ``python -m cluster`` (``./letsema``):

    ./letsema pg-promote <district>     promote the district's standby (the primary must be down)
    ./letsema pg-rejoin <district>      pg_rewind the old primary and start it as the new primary's standby
    ./letsema pg-async <district>       stop waiting for a dead standby (synchronous replication off)
    ./letsema pg-status <district>      roles and replication of the district's pair (JSON)
    ./letsema drill pg-failover [--district X] [--i-know-this-is-not-local]
    ./letsema drill cassandra-node [--node N] [--district X]
    ./letsema drill peer-down --district X [--observer Y] [--seconds S]
    ./letsema drill ring-outage [--district X] [--seconds S]
    ./letsema drill restore [--district X]

Runbook: docs/runbooks/pg-failover.md.
"""

from __future__ import annotations

import argparse
import json

from cluster import pg_standby
from cluster.commands import cluster_lock
from cluster.profiles import Profile

COMMANDS = ("pg-promote", "pg-rejoin", "pg-async", "pg-status", "drill")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for cmd, text in (("pg-promote", "promote a district's PostgreSQL standby (after its primary failed)"),
                      ("pg-rejoin", "rewind the old primary and make it the standby of the new one"),
                      ("pg-async", "turn synchronous replication off while a district's standby is down"),
                      ("pg-status", "roles and replication of a district's PostgreSQL pair")):
        sub.add_parser(cmd, help=text).add_argument("district")
    dr = sub.add_parser("drill", help="run a failure drill under load and report RTO/RPO (docs/runbooks/)")
    dr.add_argument("scenario", choices=["pg-failover", "cassandra-node", "peer-down", "ring-outage", "restore"])
    dr.add_argument("--district", default=None, help="default: the last district that has a standby")
    dr.add_argument("--clients", type=int, default=2, help="load generator threads")
    dr.add_argument("--node", type=int, default=3, help="cassandra-node: which ring node to kill (1..3)")
    dr.add_argument("--observer", default=None, help="peer-down: the district that keeps working (default: another)")
    dr.add_argument("--seconds", type=float, default=None,
                    help="peer-down / ring-outage: how long the district / the ring stays down (default 30 / 300)")
    dr.add_argument("--i-know-this-is-not-local", dest="allow_remote", action="store_true",
                    help="allow a drill against a cluster whose addresses are not on this machine")


def run(p: Profile, args: argparse.Namespace) -> int:
    if args.cmd == "drill":
        from cluster import drills
        from cluster.drill_peer_down import peer_down
        from cluster.drill_restore import restore
        from cluster.drill_ring_outage import ring_outage

        with_standby = [c for c in p.districts if pg_standby.has_standby(p, c)]
        code = args.district or (with_standby or p.districts)[-1]
        extra = {"node": args.node} if args.scenario == "cassandra-node" else {}
        if args.scenario == "peer-down":
            extra = {"observer": args.observer, "down_s": args.seconds or 30.0}
        elif args.scenario == "ring-outage":
            extra = {"down_s": args.seconds or 300.0}
        scenarios = {**drills.SCENARIOS, "peer-down": peer_down, "ring-outage": ring_outage, "restore": restore}
        rep = scenarios[args.scenario](p, code, clients=args.clients, allow_remote=args.allow_remote, **extra)
        return 0 if rep.passed else 4
    code = args.district
    if args.cmd == "pg-status":
        print(json.dumps(pg_standby.describe(p, code), indent=2))
        return 0
    with cluster_lock(p):
        if args.cmd == "pg-promote":
            inst = pg_standby.promote(p, code)
            print(f"{code}: {inst.name} (port {inst.port}) is the primary now, asynchronous until "
                  f"'./letsema pg-rejoin {code}'")
        elif args.cmd == "pg-rejoin":
            inst = pg_standby.rejoin(p, code)
            print(f"{code}: {inst.name} (port {inst.port}) streams from the primary; replication is synchronous again")
        elif args.cmd == "pg-async":
            inst = pg_standby.set_async(p, code)
            print(f"{code}: {inst.name} no longer waits for a standby (commits are on one server until "
                  f"'./letsema pg-rejoin {code}')")
    return 0
