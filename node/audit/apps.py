from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "node.audit"
    label = "audit"
    verbose_name = "Audit trail"
