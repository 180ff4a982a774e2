from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from node.mfis.selectors import mfi_list_for
from node.mfis.services import mfi_create
from node.users.models import Role
from node.users.permissions import STAFF_ROLES, role_required


class MfiOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    home_district = serializers.CharField()
    is_active = serializers.BooleanField()


class MfiApi(APIView):
    """List MFIs (staff see their own MFI; Letsema admins and operators see all) or add one (Letsema admins)."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [role_required(Role.LETSEMA_ADMIN)()]
        return [role_required(*STAFF_ROLES)()]

    @extend_schema(responses=MfiOutputSerializer(many=True))
    def get(self, request):
        return Response(MfiOutputSerializer(mfi_list_for(actor=request.user), many=True).data)

    class InputSerializer(serializers.Serializer):
        code = serializers.RegexField(r"^[a-z][a-z0-9-]{1,39}$", help_text="lower-case letters, digits, '-'")
        name = serializers.CharField(max_length=200)
        home_district = serializers.RegexField(r"^[a-z][a-z0-9_]{1,31}$", required=False)

    @extend_schema(request=InputSerializer, responses={201: MfiOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mfi = mfi_create(
            actor=request.user,
            code=data.validated_data["code"],
            name=data.validated_data["name"],
            home_district=data.validated_data.get("home_district", settings.DISTRICT.code),
        )
        return Response(MfiOutputSerializer(mfi).data, status=status.HTTP_201_CREATED)
