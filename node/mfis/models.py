from django.db import models


class Mfi(models.Model):
    """A microfinance institution. Each MFI has exactly one home district node, which keeps its books."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    home_district = models.CharField(max_length=32, db_index=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "MFI"
        verbose_name_plural = "MFIs"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
