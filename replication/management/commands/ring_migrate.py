from django.core.management.base import BaseCommand, CommandError

from replication.migrations_cql import RingMigrationError, apply
from replication.ring import RingSettings, make_cluster


class Command(BaseCommand):
    help = "Create the ring keyspace if needed and apply pending CQL migrations (replication/cql/)."

    def add_arguments(self, parser):
        parser.add_argument("--expect-nodes", type=int, default=None,
                            help="wait until this many ring nodes are visible before creating the keyspace")

    def handle(self, *args, **options):
        s = RingSettings.from_django()
        cluster = make_cluster(s)
        try:
            session = cluster.connect()
            apply(session, s.keyspace, s.replication_factor, s.local_dc, log=self.stdout.write,
                  expect_nodes=options["expect_nodes"])
        except RingMigrationError as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:
            raise CommandError(f"ring unreachable or migration failed: {type(exc).__name__}: {exc}") from None
        finally:
            cluster.shutdown()
