from django.urls import path

from node.notifications import apis

urlpatterns = [
    path("borrowers/<int:borrower_id>/notification-preferences", apis.NotificationPreferenceApi.as_view(),
         name="borrower-notification-preferences"),
    path("borrowers/<int:borrower_id>/notifications", apis.NotificationLogApi.as_view(), name="borrower-notifications"),
]
