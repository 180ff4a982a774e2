from django.urls import path

from node.credit import apis

urlpatterns = [
    path("borrowers/<int:borrower_id>/credit-report", apis.BorrowerCreditReportApi.as_view(),
         name="borrower-credit-report"),
    path("me/credit-history", apis.MyCreditHistoryApi.as_view(), name="my-credit-history"),
    path("network/policy", apis.NetworkPolicyApi.as_view(), name="network-policy"),
]
