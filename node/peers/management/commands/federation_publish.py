"""Publish this node's entry in the ring's node directory (public URL, status, verify keys with windows).

    manage.py federation_publish                     # current key from node.key_id / node.public_key_file
    manage.py federation_publish --status suspended  # peers stop calling this node and refuse its requests
    manage.py federation_publish --grace 86400       # a replaced key stays valid one more day (default 7 days)
    manage.py federation_publish --show              # print the entry in the ring, change nothing
    manage.py federation_publish --remove            # delete this node's entry (a node leaving the network for good)

After a key rotation (new key pair, new node.key_id) run it again: the previous key stays in the entry with
not_after = now + grace, so peers accept both until then. Prints the entry as JSON (public keys only).
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from federation.keys import KeyFileError
from federation.peers import (
    STATUSES,
    PublishError,
    publish_self,
    ring_entry_delete,
    ring_entry_get,
)
from replication.ring import RingUnavailable


class Command(BaseCommand):
    help = "Write this node's row of the federation peer directory (ring table node_directory)."

    def add_arguments(self, parser):
        parser.add_argument("--status", choices=STATUSES, default="active")
        parser.add_argument("--grace", type=int, default=None, metavar="SECONDS",
                            help="how long a replaced key stays valid (default: settings, 7 days)")
        parser.add_argument("--show", action="store_true", help="print the published entry and change nothing")
        parser.add_argument("--remove", action="store_true",
                            help="delete this node's entry (peers forget it unless their configuration names it)")

    def handle(self, *args, status: str, grace: int | None, show: bool, remove: bool, **options):
        try:
            if remove:
                ring_entry_delete(settings.DISTRICT.code)
                self.stdout.write(f"removed {settings.DISTRICT.code} from the node directory")
                return
            if show:
                entry = ring_entry_get(settings.DISTRICT.code)
                if entry is None:
                    raise CommandError(f"no node_directory entry for {settings.DISTRICT.code} yet")
            else:
                entry = publish_self(status=status, grace=timedelta(seconds=grace) if grace is not None else None)
        except (PublishError, KeyFileError) as exc:
            raise CommandError(str(exc)) from None
        except RingUnavailable as exc:
            raise CommandError(f"the ring is unavailable: {exc}") from None
        self.stdout.write(json.dumps(entry.to_json(), indent=2))
