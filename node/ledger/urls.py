from django.urls import path

from node.ledger import apis

urlpatterns = [
    path("ledger/accounts/", apis.AccountListApi.as_view(), name="ledger-accounts"),
    path("ledger/trial-balance", apis.TrialBalanceApi.as_view(), name="ledger-trial-balance"),
    path("ledger/accounts/<str:code>/statement", apis.AccountStatementApi.as_view(), name="ledger-account-statement"),
]
