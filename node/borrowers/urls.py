from django.urls import path

from node.borrowers import apis

urlpatterns = [
    path("borrowers/register", apis.BorrowerSelfRegisterApi.as_view(), name="borrower-self-register"),
    path("borrowers/", apis.BorrowerListApi.as_view(), name="borrowers"),
    path("borrowers/link", apis.BorrowerLinkApi.as_view(), name="borrower-link"),
    path("borrowers/me", apis.BorrowerMeApi.as_view(), name="borrower-me"),
    path("borrowers/<int:borrower_id>/", apis.BorrowerDetailApi.as_view(), name="borrower-detail"),
    path("borrowers/<int:borrower_id>/phone/otp", apis.PhoneOtpSendApi.as_view(), name="borrower-otp-send"),
    path("borrowers/<int:borrower_id>/phone/verify", apis.PhoneOtpVerifyApi.as_view(), name="borrower-otp-verify"),
    path("borrowers/<int:borrower_id>/documents/", apis.KycDocumentListApi.as_view(), name="borrower-documents"),
    path("borrowers/<int:borrower_id>/documents/<str:document_id>/content", apis.KycDocumentContentApi.as_view(),
         name="borrower-document-content"),
    path("borrowers/<int:borrower_id>/verify", apis.BorrowerVerifyApi.as_view(), name="borrower-verify"),
    path("borrowers/<int:borrower_id>/consents/", apis.ConsentApi.as_view(), name="borrower-consents"),
    path("borrowers/<int:borrower_id>/consents/withdraw", apis.ConsentWithdrawApi.as_view(), name="borrower-consent-withdraw"),
    path("borrowers/<int:borrower_id>/network", apis.BorrowerNetworkApi.as_view(), name="borrower-network"),
    path("consent-texts/current", apis.ConsentTextApi.as_view(), name="consent-text-current"),
]
