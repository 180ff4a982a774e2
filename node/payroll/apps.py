from django.apps import AppConfig


class PayrollConfig(AppConfig):
    name = "node.payroll"
    label = "payroll"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from node.payroll.services import keep_rows_on_replayed_repayments
        from node.repayments.signals import repayment_replayed

        repayment_replayed.connect(keep_rows_on_replayed_repayments, dispatch_uid="payroll-rows-follow-replays")
