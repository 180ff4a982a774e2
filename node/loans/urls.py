from django.urls import path

from node.loans import apis

urlpatterns = [
    path("schedules/preview", apis.SchedulePreviewApi.as_view(), name="schedule-preview"),
    path("products/", apis.ProductListApi.as_view(), name="products"),
    path("loans/", apis.LoanListApi.as_view(), name="loans"),
    path("loans/<int:loan_id>/", apis.LoanDetailApi.as_view(), name="loan-detail"),
    path("loans/<int:loan_id>/schedule", apis.LoanScheduleApi.as_view(), name="loan-schedule"),
    path("loans/<int:loan_id>/credit-report", apis.LoanCreditReportApi.as_view(), name="loan-credit-report"),
    path("loans/<int:loan_id>/submit", apis.LoanSubmitApi.as_view(), name="loan-submit"),
    path("loans/<int:loan_id>/review", apis.LoanReviewApi.as_view(), name="loan-review"),
    path("loans/<int:loan_id>/approve", apis.LoanApproveApi.as_view(), name="loan-approve"),
    path("loans/<int:loan_id>/reject", apis.LoanRejectApi.as_view(), name="loan-reject"),
    path("loans/<int:loan_id>/withdraw", apis.LoanWithdrawApi.as_view(), name="loan-withdraw"),
    path("loans/<int:loan_id>/disbursement/initiate", apis.LoanInitiateApi.as_view(), name="loan-disbursement-initiate"),
    path("loans/<int:loan_id>/disbursement/confirm", apis.LoanConfirmApi.as_view(), name="loan-disbursement-confirm"),
    path("loans/<int:loan_id>/write-off", apis.LoanWriteOffApi.as_view(), name="loan-write-off"),
    path("loans/<int:loan_id>/reschedule", apis.LoanRescheduleApi.as_view(), name="loan-reschedule"),
    path("auth/step-up", apis.StepUpApi.as_view(), name="step-up"),
]
