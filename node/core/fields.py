"""Serializer fields shared by the API: money as a decimal string (never a JSON float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

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


class StrictSerializer(serializers.Serializer):
    """A serializer that refuses fields it does not know (a typo must not be silently ignored)."""

    def to_internal_value(self, data):
        errors = {}
        if isinstance(data, dict):
            errors = {f: ["Unknown field."] for f in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                exc.detail.update(errors)
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value
