"""Serializer fields shared by the API: money as a decimal string (never a JSON float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.http import QueryDict
from rest_framework import serializers


class MoneyField(serializers.Field):
    """Accepts a decimal string ("1500.00") or an integer; refuses floats. Renders as a string."""

    default_error_messages = {
        "invalid": "Enter an amount as a string, e.g. \"1500.00\".",
        "float": "Amounts must be sent as strings, not JSON numbers with a fraction.",
        "negative": "Must not be negative.",
        "places": "At most {places} decimal places.",
        "too_large": "Amount is too large.",
    }

    def __init__(self, *, places: int = 2, allow_negative: bool = False, **kwargs):
        self.places, self.allow_negative = places, allow_negative
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, float):
            self.fail("float")
        if not isinstance(data, (str, int)):
            self.fail("invalid")
        try:
            value = Decimal(str(data).strip())
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value < 0 and not self.allow_negative:
            self.fail("negative")
        if -value.as_tuple().exponent > self.places:
            self.fail("places", places=self.places)
        if abs(value) >= Decimal(10) ** 15:
            self.fail("too_large")
        return value.quantize(Decimal(1).scaleb(-self.places))

    def to_representation(self, value):
        return f"{Decimal(value):.{self.places}f}"


def _json_type_error(field: serializers.Field, value) -> str | None:
    """DRF turns 0 into False, 12 into "12" and "12" into 12; the API takes each value only in its own JSON type,
    as its OpenAPI document says (a client sending the wrong type has a bug it should hear about)."""
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "Must be true or false."
    if isinstance(field, serializers.CharField) and not isinstance(value, str):
        return "Must be a string."
    if isinstance(field, serializers.IntegerField) and (isinstance(value, bool) or not isinstance(value, int)):
        return "Must be a whole number."
    return None


class StrictSerializer(serializers.Serializer):
    """An input serializer that refuses what it does not know or cannot take as it is: unknown fields (a typo must
    not be silently ignored), JSON values of the wrong type, and empty query parameters (leave one out for its
    default)."""

    def _strict_errors(self, data) -> dict[str, list[str]]:
        if not isinstance(data, dict):
            return {}
        errors = {f: ["Unknown field."] for f in sorted(set(data) - set(self.fields))}
        if isinstance(data, QueryDict):  # query parameters or a multipart form: every value is a string
            errors.update({name: ["Must not be empty: leave the parameter out for its default."]
                           for name, field in self.fields.items()
                           if data.get(name) == "" and not getattr(field, "allow_blank", False)
                           and not field.read_only})
            return errors
        for name, field in self.fields.items():
            if name in data and data[name] is not None and not field.read_only:
                message = _json_type_error(field, data[name])
                if message:
                    errors[name] = [message]
        return errors

    def to_internal_value(self, data):
        errors = self._strict_errors(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                exc.detail.update(errors)
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value
