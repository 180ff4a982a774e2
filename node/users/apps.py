from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "node.users"
    label = "users"
