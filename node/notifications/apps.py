from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "node.notifications"
    label = "notifications"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Borrower notifications (SMS and e-mail)"
