"""Mounted at the site root by config/urls.py: the peer protocol under /_federation/v1/, the staff look-up under
/api/v1/."""

from django.urls import path

from node.credit.apis import FederationDisputesApi
from node.peers import apis
from node.reports.apis import FederationReportFactsApi

urlpatterns = [
    path("_federation/v1/ping", apis.FederationPingApi.as_view(), name="federation-ping"),
    path("_federation/v1/borrowers/status", apis.FederationBorrowerStatusApi.as_view(),
         name="federation-borrower-status"),
    path("_federation/v1/borrowers/authenticate", apis.FederationBorrowerAuthenticateApi.as_view(),
         name="federation-borrower-authenticate"),
    path("_federation/v1/aggregates", apis.FederationAggregatesApi.as_view(), name="federation-aggregates"),
    path("_federation/v1/reports", FederationReportFactsApi.as_view(), name="federation-report-facts"),
    path("_federation/v1/disputes", FederationDisputesApi.as_view(), name="federation-disputes"),
    path("api/v1/network/aggregates", apis.NetworkAggregatesApi.as_view(), name="network-aggregates"),
    path("api/v1/auth/visitor/token", apis.VisitorTokenApi.as_view(), name="visitor-token"),
    path("api/v1/network/borrowers/<str:borrower_key>/where", apis.NetworkBorrowerWhereApi.as_view(),
         name="network-borrower-where"),
]
