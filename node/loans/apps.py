from django.apps import AppConfig


class LoansConfig(AppConfig):
    name = "node.loans"
    label = "loans"
