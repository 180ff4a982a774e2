from django.urls import path

from node.repayments import apis

urlpatterns = [
    path("loans/<int:loan_id>/repayments", apis.LoanRepaymentsApi.as_view(), name="loan-repayments"),
    path("loans/<int:loan_id>/balance", apis.LoanBalanceApi.as_view(), name="loan-balance"),
    path("loans/<int:loan_id>/payoff", apis.LoanPayoffApi.as_view(), name="loan-payoff"),
    path("loans/<int:loan_id>/overpayment-refunds", apis.LoanOverpaymentRefundsApi.as_view(),
         name="loan-overpayment-refunds"),
    path("loans/<int:loan_id>/overpayment-transfers", apis.LoanOverpaymentTransfersApi.as_view(),
         name="loan-overpayment-transfers"),
    path("loans/<int:loan_id>/mobile-money", apis.LoanMobileMoneyApi.as_view(), name="loan-mobile-money"),
    path("mobile-money/confirmations", apis.MobileMoneyConfirmationApi.as_view(), name="mobile-money-confirmations"),
    path("mobile-money/paybill", apis.MobileMoneyPaybillApi.as_view(), name="mobile-money-paybill"),
    path("mobile-money/paybill/check", apis.MobileMoneyPaybillCheckApi.as_view(), name="mobile-money-paybill-check"),
    path("mobile-money/unapplied", apis.MobileMoneyUnappliedApi.as_view(), name="mobile-money-unapplied"),
    path("mobile-money/<int:payment_id>/apply", apis.MobileMoneyApplyApi.as_view(), name="mobile-money-apply"),
    path("mobile-money/<int:payment_id>/refund", apis.MobileMoneyRefundApi.as_view(), name="mobile-money-refund"),
    path("loans/<int:loan_id>/transactions", apis.LoanTransactionsApi.as_view(), name="loan-transactions"),
    path("loans/<int:loan_id>/charges", apis.LoanChargesApi.as_view(), name="loan-charges"),
    path("loans/<int:loan_id>/waivers", apis.LoanChargeWaiversApi.as_view(), name="loan-charge-waivers"),
    path("loans/<int:loan_id>/recoveries", apis.LoanRecoveriesApi.as_view(), name="loan-recoveries"),
    path("overpayment-refunds/<int:refund_id>/reverse", apis.OverpaymentRefundReverseApi.as_view(),
         name="overpayment-refund-reverse"),
    path("waivers/<int:waiver_id>/reverse", apis.ChargeWaiverUndoApi.as_view(), name="charge-waiver-undo"),
    path("recoveries/<int:recovery_id>/reverse", apis.RecoveryReverseApi.as_view(), name="recovery-reverse"),
    path("repayments/<int:repayment_id>", apis.RepaymentDetailApi.as_view(), name="repayment-detail"),
    path("repayments/<int:repayment_id>/reverse", apis.RepaymentReverseApi.as_view(), name="repayment-reverse"),
    path("products/<int:product_id>/repayment-config", apis.ProductRepaymentConfigApi.as_view(),
         name="product-repayment-config"),
]
