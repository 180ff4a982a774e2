from django.apps import AppConfig


class BorrowersConfig(AppConfig):
    name = "node.borrowers"
    label = "borrowers"
