from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from node.health.metrics import metrics
from node.health.views import healthz
from node.mfis.apis import MfiApi, MfiNotificationsApi, MfiPaybillApi
from node.users.apis import (
    LogoutApi,
    MeApi,
    NodeInfoApi,
    StaffDetailApi,
    StaffListApi,
    TokenObtainApi,
    TokenRefreshApi,
)

api_v1 = [
    path("auth/token/", TokenObtainApi.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/logout", LogoutApi.as_view(), name="logout"),
    path("me/", MeApi.as_view(), name="me"),
    path("node/", NodeInfoApi.as_view(), name="node-info"),
    path("mfis/", MfiApi.as_view(), name="mfis"),
    path("mfis/<slug:code>/paybill", MfiPaybillApi.as_view(), name="mfi-paybill"),
    path("mfis/<slug:code>/notifications", MfiNotificationsApi.as_view(), name="mfi-notifications"),
    path("staff/", StaffListApi.as_view(), name="staff"),
    path("staff/<int:user_id>/", StaffDetailApi.as_view(), name="staff-detail"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include(api_v1)),
    path("api/v1/", include("node.borrowers.urls")),
    path("api/v1/", include("node.ledger.urls")),
    path("api/v1/", include("node.loans.urls")),
    path("api/v1/", include("node.credit.urls")),
    path("api/v1/", include("node.repayments.urls")),
    path("api/v1/", include("node.notifications.urls")),
    path("api/v1/", include("node.payroll.urls")),
    path("api/v1/", include("node.reports.urls")),
    path("", include("node.peers.urls")),  # /_federation/v1/... (peers) and api/v1/network/borrowers/<key>/where
    path("", include("node.web.urls")),  # the web interface (node/web): /, /login/, /me/..., /staff/...
]

# a browser gets the web interface's error page, everything else the API's JSON error body (node/web/views/errors.py)
handler400 = "node.web.views.errors.bad_request"
handler403 = "node.web.views.errors.permission_denied"
handler404 = "node.web.views.errors.not_found"
handler500 = "node.web.views.errors.server_error"
