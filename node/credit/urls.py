from django.urls import path

from node.credit import apis

urlpatterns = [
    path("borrowers/<int:borrower_id>/credit-report", apis.BorrowerCreditReportApi.as_view(),
         name="borrower-credit-report"),
    path("me/credit-history", apis.MyCreditHistoryApi.as_view(), name="my-credit-history"),
    path("me/credit-history/disputes", apis.MyCreditDisputesApi.as_view(), name="my-credit-disputes"),
    path("credit/disputes", apis.CreditDisputesApi.as_view(), name="credit-disputes"),
    path("credit/disputes/<uuid:dispute_id>/resolve", apis.CreditDisputeResolveApi.as_view(),
         name="credit-dispute-resolve"),
    path("network/policy", apis.NetworkPolicyApi.as_view(), name="network-policy"),
]
