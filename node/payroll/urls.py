from django.urls import path

from node.payroll import apis

urlpatterns = [
    path("payroll/employers", apis.EmployerListApi.as_view(), name="payroll-employers"),
    path("payroll/employers/<int:employer_id>", apis.EmployerDetailApi.as_view(), name="payroll-employer"),
    path("payroll/employers/<int:employer_id>/enrolments", apis.EnrolmentListApi.as_view(),
         name="payroll-enrolments"),
    path("payroll/enrolments/<int:enrolment_id>", apis.EnrolmentDetailApi.as_view(), name="payroll-enrolment"),
    path("payroll/employers/<int:employer_id>/deductions", apis.DeductionsApi.as_view(), name="payroll-deductions"),
    path("payroll/employers/<int:employer_id>/imports", apis.ImportListApi.as_view(), name="payroll-imports"),
    path("payroll/employers/<int:employer_id>/reconciliation", apis.ReconciliationApi.as_view(),
         name="payroll-reconciliation"),
    path("payroll/employers/<int:employer_id>/imports/<int:import_id>", apis.ImportDetailApi.as_view(),
         name="payroll-import"),
]
