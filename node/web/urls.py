"""The web interface, mounted at the site root (config.urls): it shares no prefix with /api/, /admin/,
/_federation/ or /healthz."""

from django.urls import path
from django.views.i18n import set_language

from node.web.views import admin, borrower, network, payroll, public, reports, staff

app_name = "web"

urlpatterns = [
    path("", public.home, name="home"),
    path("login/", public.LoginView.as_view(), name="login"),
    path("logout/", public.LogoutView.as_view(), name="logout"),
    path("language/", set_language, name="set-language"),
    path("calculator/", public.calculator, name="calculator"),
    # borrowers
    path("register/", borrower.register, name="register"),
    path("me/", borrower.dashboard, name="me"),
    path("me/phone/", borrower.phone, name="me-phone"),
    path("me/consent/", borrower.consent, name="me-consent"),
    path("me/apply/", borrower.apply, name="me-apply"),
    path("me/notifications/", borrower.notifications, name="me-notifications"),
    path("me/credit/", borrower.credit_history, name="me-credit"),
    path("me/loans/<int:loan_id>/", borrower.loan_detail, name="me-loan"),
    path("me/loans/<int:loan_id>/withdraw", borrower.loan_withdraw, name="me-loan-withdraw"),
    path("me/loans/<int:loan_id>/pay", borrower.loan_pay, name="me-loan-pay"),
    path("me/loans/<int:loan_id>/<slug:kind>.pdf", borrower.loan_pdf, name="me-loan-pdf"),
    # loan officers and MFI admins
    path("staff/", staff.queue, name="staff-queue"),
    path("staff/loans/<int:loan_id>/", staff.loan_detail, name="staff-loan"),
    path("staff/loans/<int:loan_id>/credit-report", staff.credit_report, name="staff-loan-credit-report"),
    path("staff/loans/<int:loan_id>/repayments", staff.repayment_record, name="staff-loan-repayment"),
    path("staff/loans/<int:loan_id>/reversals", staff.repayment_reverse, name="staff-loan-reversal"),
    path("staff/loans/<int:loan_id>/recoveries", staff.recovery_record, name="staff-loan-recovery"),
    path("staff/loans/<int:loan_id>/refunds", staff.overpayment_refund, name="staff-loan-refund"),
    path("staff/loans/<int:loan_id>/transfers", staff.overpayment_transfer, name="staff-loan-transfer"),
    path("staff/loans/<int:loan_id>/undo", staff.entry_reverse, name="staff-loan-undo"),
    path("staff/loans/<int:loan_id>/waivers", staff.charges_waive, name="staff-loan-waiver"),
    path("staff/loans/<int:loan_id>/charges", staff.charge_add, name="staff-loan-charge"),
    path("staff/loans/<int:loan_id>/mobile-money/<int:payment_id>/refund", staff.mobile_money_refund,
         name="staff-loan-momo-refund"),
    path("staff/mobile-money/", staff.mobile_money_unapplied, name="staff-momo"),
    path("staff/mobile-money/<int:payment_id>/<slug:action>", staff.mobile_money_resolve, name="staff-momo-resolve"),
    path("staff/loans/<int:loan_id>/<slug:kind>.pdf", staff.loan_pdf, name="staff-loan-pdf"),
    path("staff/loans/<int:loan_id>/disburse", staff.disbursement_confirm, name="staff-loan-disburse"),
    path("staff/loans/<int:loan_id>/<slug:action>", staff.loan_action, name="staff-loan-action"),
    path("staff/disbursements/", staff.disbursements, name="staff-disbursements"),
    path("staff/disputes/", staff.disputes, name="staff-disputes"),
    path("staff/disputes/<uuid:dispute_id>/answer", staff.dispute_answer, name="staff-dispute-answer"),
    path("staff/borrowers/", staff.borrowers, name="staff-borrowers"),
    path("staff/borrowers/<int:borrower_id>/", staff.borrower_detail, name="staff-borrower"),
    path("staff/payroll/", payroll.employers, name="payroll-employers"),
    path("staff/payroll/<int:employer_id>/", payroll.employer, name="payroll-employer"),
    path("staff/payroll/<int:employer_id>/deductions", payroll.deductions, name="payroll-deductions"),
    path("staff/payroll/<int:employer_id>/enrolments", payroll.enrol, name="payroll-enrol"),
    path("staff/payroll/<int:employer_id>/enrolments/<int:enrolment_id>/end", payroll.enrolment_end,
         name="payroll-enrolment-end"),
    path("staff/payroll/<int:employer_id>/imports", payroll.import_upload, name="payroll-import-upload"),
    path("staff/payroll/<int:employer_id>/reconciliation", payroll.reconciliation, name="payroll-reconciliation"),
    path("staff/payroll/<int:employer_id>/imports/<int:import_id>/", payroll.import_report, name="payroll-import"),
    # MFI admins
    path("staff/team/", admin.team, name="admin-team"),
    path("staff/team/<int:user_id>/", admin.team_member, name="admin-team-member"),
    path("staff/products/", admin.products, name="admin-products"),
    path("staff/settings/", admin.settings_page, name="admin-settings"),
    # analysts, MFI admins and Letsema admins
    path("reports/", reports.index, name="reports"),
    path("reports/<slug:name>/", reports.report, name="report"),
    # Letsema admins and operators
    path("network/", network.node_status, name="network-node"),
    path("network/districts/", network.districts, name="network-districts"),
    path("network/mfis/", network.mfis, name="network-mfis"),
]
