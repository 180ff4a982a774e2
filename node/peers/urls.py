"""Mounted at the site root by config/urls.py: the peer protocol under /_federation/v1/, the staff look-up under
/api/v1/."""

from django.urls import path

from node.peers import apis

urlpatterns = [
    path("_federation/v1/ping", apis.FederationPingApi.as_view(), name="federation-ping"),
    path("_federation/v1/borrowers/status", apis.FederationBorrowerStatusApi.as_view(),
         name="federation-borrower-status"),
    path("api/v1/network/borrowers/<str:borrower_key>/where", apis.NetworkBorrowerWhereApi.as_view(),
         name="network-borrower-where"),
]
