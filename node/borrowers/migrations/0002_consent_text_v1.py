"""Consent text, version 1, in English and Sesotho.

The Sesotho text was written by the engineering team and must be reviewed by a native speaker and the
legal adviser before production use; a reviewed wording is published as version 2 (never by editing v1).
"""

from django.db import migrations

EN_TITLE = "Consent to share my credit history in the Letsema network"
EN_BODY = (
    "I agree that Letsema and its member microfinance institutions may share my credit history — my loans, "
    "repayments and any arrears — with each other, and may look it up when I apply for credit. "
    "My national ID number is never shared between institutions or districts; a protected code is used instead. "
    "Every look-up is recorded and I may ask to see who looked. "
    "I can withdraw this consent at any time at any branch or online. Withdrawal stops new look-ups and sharing, "
    "but does not erase records that lenders must keep by law."
)
ST_TITLE = "Tumello ea ho arolelana histori ea ka ea mekoloto ho marang-rang a Letsema"
ST_BODY = (
    "Ke dumela hore Letsema le mekhatlo ea eona ea likalimo tse nyane ba ka arolelana histori ea ka ea mekoloto — "
    "likalimo tsa ka, litefo le mekoloto e saletseng morao — le hore ba ka e sheba ha ke kopa kalimo. "
    "Nomoro ea ka ea boitsebiso ea naha ha e arolelanoe pakeng tsa mekhatlo kapa litereke; ho sebelisoa khoutu "
    "e sirelelitsoeng sebakeng sa eona. Tšebeliso e 'ngoe le e 'ngoe ea ho sheba e ngoloa 'me nka kopa ho bona hore "
    "na ke mang ea shebileng. "
    "Nka hula tumello ena nako efe kapa efe lekaleng lefe kapa lefe kapa marang-rang. Ho e hula ho emisa ho shebisisoa "
    "le ho arolelana ho hocha, empa ha ho hlakole litlaleho tseo baalimi ba tlamehang ho li boloka ka molao."
)


def publish(apps, schema_editor):
    ConsentText = apps.get_model("borrowers", "ConsentText")
    ConsentText.objects.get_or_create(version=1, language="en", defaults={"title": EN_TITLE, "body": EN_BODY})
    ConsentText.objects.get_or_create(version=1, language="st", defaults={"title": ST_TITLE, "body": ST_BODY})


def unpublish(apps, schema_editor):
    apps.get_model("borrowers", "ConsentText").objects.filter(version=1).delete()


class Migration(migrations.Migration):
    dependencies = [("borrowers", "0001_initial")]
    operations = [migrations.RunPython(publish, unpublish)]
