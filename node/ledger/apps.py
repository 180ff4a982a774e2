from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "node.ledger"
    label = "ledger"
    verbose_name = "General ledger"
