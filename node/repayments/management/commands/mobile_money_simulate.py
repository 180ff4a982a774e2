"""Play the mobile-money provider (development and the demo; docs/mobile-money.md): take a prompt the ``file``
backend recorded — the newest, or ``--request-id`` — and send the node its signed confirmation, as the provider
would once the phone's owner approved (or, with ``--fail``, declined) it.

    manage.py mobile_money_simulate                       # the newest prompt is paid in full
    manage.py mobile_money_simulate --request-id <uuid> --fail "Insufficient balance"

With ``--paybill ACCOUNT --amount X`` it plays a payer who sends X to the MFI's business number (``--business-number``,
default: the only MFI of the node that has one) with ACCOUNT (a loan reference) as the account, no prompt involved;
``--validate`` first asks the node whether it takes the payment (M-Pesa's C2B validation) and, refused, sends nothing.
"""

from __future__ import annotations

import json
import time
import uuid

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from node.repayments import mobile_money_gateway as gateway


class Command(BaseCommand):
    help = "Send the node a signed mobile-money confirmation for a recorded prompt (plays the provider)."

    def add_arguments(self, parser):
        parser.add_argument("--request-id", help="the prompt to answer (default: the newest recorded)")
        parser.add_argument("--fail", metavar="REASON", help="decline the payment with this reason")
        parser.add_argument("--amount", help="the amount taken (default: the amount asked for)")
        parser.add_argument("--transaction-id", help="the provider's transaction id (default: a new one)")
        parser.add_argument("--url", help="where to send it (default: the prompt's callback URL)")
        parser.add_argument("--paybill", metavar="ACCOUNT", help="a paybill payment with this account reference")
        parser.add_argument("--business-number", help="paybill: the MFI's business number")
        parser.add_argument("--phone", default="26650000000", help="paybill: the payer's number")
        parser.add_argument("--validate", action="store_true",
                            help="paybill: ask the node first (C2B validation); refused, the payer keeps the money")

    def handle(self, *args, **opts):
        if not settings.MOBILE_MONEY_SECRET:
            raise CommandError("This node has no mobile_money_secret: nothing it would accept can be signed.")
        if opts["paybill"]:
            return self._paybill(opts)
        prompts = gateway.read_prompts()
        if opts["request_id"]:
            prompts = [p for p in prompts if p["request_id"] == opts["request_id"]]
        if not prompts:
            raise CommandError(f"No recorded prompt to answer in {settings.MOBILE_MONEY_FILE_PATH}.")
        prompt = prompts[-1]
        if opts["fail"]:
            body = {"request_id": prompt["request_id"], "status": "failed", "reason": opts["fail"]}
        else:
            body = {"request_id": prompt["request_id"], "status": "success",
                    "transaction_id": opts["transaction_id"] or f"SIM{uuid.uuid4().hex[:10].upper()}",
                    "amount": opts["amount"] or prompt["amount"]}
        self._send(opts["url"] or prompt["callback_url"], body)

    def _paybill(self, opts):
        from node.mfis.models import Mfi

        if not opts["amount"]:
            raise CommandError("--paybill needs --amount.")
        number = opts["business_number"]
        if not number:
            numbers = list(Mfi.objects.exclude(paybill_number=None).values_list("paybill_number", flat=True))
            if len(numbers) != 1:
                raise CommandError(f"Give --business-number (MFIs with one here: {', '.join(numbers) or 'none'}).")
            number = numbers[0]
        body = {"transaction_id": opts["transaction_id"] or f"SIM{uuid.uuid4().hex[:10].upper()}",
                "business_number": number, "account_reference": opts["paybill"], "amount": opts["amount"],
                "phone": opts["phone"]}
        url = opts["url"] or settings.DISTRICT.public_url.rstrip("/") + "/api/v1/mobile-money/paybill"
        if opts["validate"]:
            answer = self._send(url + "/check", body)
            if not answer.get("accept"):
                raise CommandError(f"refused at the phone ({answer.get('reason')}): {answer.get('message')}")
        self._send(url, body)

    def _send(self, url: str, body: dict) -> dict:
        raw = json.dumps(body).encode()
        ts = str(int(time.time()))
        r = requests.post(url, data=raw, timeout=20, headers={
            "Content-Type": "application/json", "X-Letsema-Timestamp": ts,
            "X-Letsema-Signature": gateway.signature(settings.MOBILE_MONEY_SECRET, ts, raw)})
        self.stdout.write(f"{r.status_code} {r.text}")
        if r.status_code not in (200, 201):
            raise CommandError(f"the node answered {r.status_code}")
        return r.json()
