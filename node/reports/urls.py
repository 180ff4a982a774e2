from django.urls import path

from node.reports import apis

urlpatterns = [
    path("reports/", apis.ReportListApi.as_view(), name="reports"),
    path("reports/<slug:name>", apis.ReportApi.as_view(), name="report"),
]
