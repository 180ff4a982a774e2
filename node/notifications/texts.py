"""Message texts per event and language: an SMS, and an e-mail subject and body.

Placeholders are the notification's ``context`` fields (``FIELDS``) plus ``first_name`` (from the borrower at
delivery). Nothing else can reach a text — ``services.notify`` refuses other context keys — so a text can never
carry the national ID. The Sesotho (``st``) texts need review by a native speaker (docs/notifications.md).
"""

from __future__ import annotations

from string import Formatter

from node.notifications.models import Language, NotificationKind

K = NotificationKind

#: The context fields each kind carries (amounts as "1234.56" strings, dates as YYYY-MM-DD).
FIELDS: dict[str, frozenset[str]] = {
    K.INSTALLMENT_DUE: frozenset({"mfi", "reference", "currency", "amount", "due_date", "installment"}),
    K.INSTALLMENT_OVERDUE: frozenset({"mfi", "reference", "currency", "amount", "due_date", "installment"}),
    K.REPAYMENT_RECEIVED: frozenset({"mfi", "reference", "currency", "amount", "receipt_number", "payment_date",
                                     "outstanding"}),
    K.LOAN_DISBURSED: frozenset({"mfi", "reference", "currency", "amount", "first_due_date", "first_amount"}),
    K.CHARGE_ADDED: frozenset({"mfi", "reference", "currency", "amount", "name", "due_date", "installment"}),
    K.REPAYMENT_REVERSED: frozenset({"mfi", "reference", "currency", "amount", "receipt_number", "payment_date",
                                     "outstanding"}),
    K.DISPUTE_CORRECTED: frozenset({"mfi", "reference", "opened_on", "note"}),
    K.DISPUTE_CONFIRMED: frozenset({"mfi", "reference", "opened_on", "note"}),
}
RENDER_EXTRA = frozenset({"first_name"})

TEXTS: dict[tuple[str, str], dict[str, str]] = {
    # --- English ---------------------------------------------------------------------------------------------------
    (K.INSTALLMENT_DUE, Language.EN): {
        "sms": "{mfi}: your installment of {currency} {amount} on loan {reference} is due on {due_date}. "
               "Please pay on time.",
        "subject": "{mfi}: installment of {currency} {amount} due on {due_date}",
        "body": "Dear {first_name},\n\nThis is a reminder that installment {installment} of your loan {reference}, "
                "{currency} {amount}, is due on {due_date}.\n\nPlease pay on time.\n\n{mfi}\n",
    },
    (K.INSTALLMENT_OVERDUE, Language.EN): {
        "sms": "{mfi}: your installment of {currency} {amount} on loan {reference} was due on {due_date} and is "
               "unpaid. Please pay as soon as possible.",
        "subject": "{mfi}: installment overdue on loan {reference}",
        "body": "Dear {first_name},\n\nInstallment {installment} of your loan {reference}, {currency} {amount}, was "
                "due on {due_date} and has not been paid.\n\nPlease pay as soon as possible, or contact us if you "
                "need help.\n\n{mfi}\n",
    },
    (K.REPAYMENT_RECEIVED, Language.EN): {
        "sms": "{mfi}: we received {currency} {amount} on loan {reference}. Receipt {receipt_number}. "
               "Outstanding: {currency} {outstanding}. Thank you.",
        "subject": "{mfi}: payment received, receipt {receipt_number}",
        "body": "Dear {first_name},\n\nWe received your payment of {currency} {amount} on {payment_date} for loan "
                "{reference}.\nReceipt number: {receipt_number}\nStill outstanding: {currency} {outstanding}\n\n"
                "Thank you.\n\n{mfi}\n",
    },
    (K.LOAN_DISBURSED, Language.EN): {
        "sms": "{mfi}: your loan {reference} of {currency} {amount} has been paid out. First installment "
               "{currency} {first_amount} due on {first_due_date}.",
        "subject": "{mfi}: loan {reference} paid out",
        "body": "Dear {first_name},\n\nYour loan {reference} of {currency} {amount} has been paid out.\nYour first "
                "installment of {currency} {first_amount} is due on {first_due_date}.\n\n{mfi}\n",
    },
    (K.CHARGE_ADDED, Language.EN): {
        "sms": "{mfi}: a charge of {currency} {amount} ({name}) was added to loan {reference}, payable with the "
               "installment due on {due_date}.",
        "subject": "{mfi}: charge of {currency} {amount} added to loan {reference}",
        "body": "Dear {first_name},\n\nA charge of {currency} {amount} ({name}) was added to your loan {reference}. "
                "It is payable with installment {installment}, due on {due_date}.\n\nIf you think it is wrong, "
                "please contact us.\n\n{mfi}\n",
    },
    (K.REPAYMENT_REVERSED, Language.EN): {
        "sms": "{mfi}: your payment of {currency} {amount} on loan {reference} (receipt {receipt_number}) was "
               "reversed. Outstanding: {currency} {outstanding}. Questions? Please contact us.",
        "subject": "{mfi}: payment reversed, receipt {receipt_number}",
        "body": "Dear {first_name},\n\nYour payment of {currency} {amount} of {payment_date} on loan {reference} "
                "(receipt {receipt_number}) has been reversed: it no longer counts towards the loan.\nStill "
                "outstanding: {currency} {outstanding}\n\nIf you think it is wrong, please contact us.\n\n{mfi}\n",
    },
    (K.DISPUTE_CORRECTED, Language.EN): {
        "sms": "{mfi}: we checked your dispute of loan {reference} and corrected the record. Your credit history "
               "in the Letsema network shows the correction.",
        "subject": "{mfi}: your dispute of loan {reference} — record corrected",
        "body": "Dear {first_name},\n\nWe checked the dispute you filed on {opened_on} about loan {reference}. The "
                "record was wrong and we corrected it; your credit history in the Letsema network shows the "
                "correction.\n\nOur note: {note}\n\n{mfi}\n",
    },
    (K.DISPUTE_CONFIRMED, Language.EN): {
        "sms": "{mfi}: we checked your dispute of loan {reference}; the record is right and stays as it is. "
               "Questions? Please contact us.",
        "subject": "{mfi}: your dispute of loan {reference} — record confirmed",
        "body": "Dear {first_name},\n\nWe checked the dispute you filed on {opened_on} about loan {reference}. The "
                "record is right and stays as it is.\n\nOur note: {note}\n\nIf you still think it is wrong, you "
                "may dispute it again with what you know, or contact us.\n\n{mfi}\n",
    },
    # --- Sesotho (needs native review) -------------------------------------------------------------------------
    (K.INSTALLMENT_DUE, Language.ST): {
        "sms": "{mfi}: tefo ea hau ea {currency} {amount} ea kalimo {reference} e lokela ho lefuoa ka {due_date}. "
               "Ka kopo lefa ka nako.",
        "subject": "{mfi}: tefo ea {currency} {amount} e lokela ka {due_date}",
        "body": "Lumela {first_name},\n\nRe u hopotsa hore tefo ea {installment} ea kalimo ea hau {reference}, "
                "{currency} {amount}, e lokela ho lefuoa ka {due_date}.\n\nKa kopo lefa ka nako.\n\n{mfi}\n",
    },
    (K.INSTALLMENT_OVERDUE, Language.ST): {
        "sms": "{mfi}: tefo ea hau ea {currency} {amount} ea kalimo {reference} e ne e lokela ho lefuoa ka "
               "{due_date} 'me ha e so lefuoe. Ka kopo lefa kapele.",
        "subject": "{mfi}: tefo ea kalimo {reference} e fetile nako",
        "body": "Lumela {first_name},\n\nTefo ea {installment} ea kalimo ea hau {reference}, {currency} {amount}, "
                "e ne e lokela ho lefuoa ka {due_date} 'me ha e so lefuoe.\n\nKa kopo lefa kapele, kapa u "
                "ikopanye le rona haeba u hloka thuso.\n\n{mfi}\n",
    },
    (K.REPAYMENT_RECEIVED, Language.ST): {
        "sms": "{mfi}: re amohetse {currency} {amount} bakeng sa kalimo {reference}. Rasiti {receipt_number}. "
               "E setseng: {currency} {outstanding}. Re a leboha.",
        "subject": "{mfi}: tefo e amohetsoe, rasiti {receipt_number}",
        "body": "Lumela {first_name},\n\nRe amohetse tefo ea hau ea {currency} {amount} ka {payment_date} bakeng sa "
                "kalimo {reference}.\nNomoro ea rasiti: {receipt_number}\nChelete e setseng: {currency} "
                "{outstanding}\n\nRe a leboha.\n\n{mfi}\n",
    },
    (K.LOAN_DISBURSED, Language.ST): {
        "sms": "{mfi}: kalimo ea hau {reference} ea {currency} {amount} e lefiloe. Tefo ea pele ea {currency} "
               "{first_amount} e lokela ka {first_due_date}.",
        "subject": "{mfi}: kalimo {reference} e lefiloe",
        "body": "Lumela {first_name},\n\nKalimo ea hau {reference} ea {currency} {amount} e lefiloe.\nTefo ea hau "
                "ea pele ea {currency} {first_amount} e lokela ho lefuoa ka {first_due_date}.\n\n{mfi}\n",
    },
    (K.CHARGE_ADDED, Language.ST): {
        "sms": "{mfi}: tefiso ea {currency} {amount} ({name}) e kentsoe kalimong {reference}; e tla lefuoa le tefo "
               "e lokelang ka {due_date}.",
        "subject": "{mfi}: tefiso ea {currency} {amount} e kentsoe kalimong {reference}",
        "body": "Lumela {first_name},\n\nTefiso ea {currency} {amount} ({name}) e kentsoe kalimong ea hau "
                "{reference}. E tla lefuoa le tefo ea {installment}, e lokelang ho lefuoa ka {due_date}.\n\nHaeba u "
                "nahana hore e fosahetse, ka kopo ikopanye le rona.\n\n{mfi}\n",
    },
    (K.REPAYMENT_REVERSED, Language.ST): {
        "sms": "{mfi}: tefo ea hau ea {currency} {amount} ea kalimo {reference} (rasiti {receipt_number}) e "
               "hlakotsoe. E setseng: {currency} {outstanding}. Lipotso? Ka kopo ikopanye le rona.",
        "subject": "{mfi}: tefo e hlakotsoe, rasiti {receipt_number}",
        "body": "Lumela {first_name},\n\nTefo ea hau ea {currency} {amount} ea {payment_date} bakeng sa kalimo "
                "{reference} (rasiti {receipt_number}) e hlakotsoe: ha e sa baloa kalimong.\nChelete e setseng: "
                "{currency} {outstanding}\n\nHaeba u nahana hore e fosahetse, ka kopo ikopanye le rona.\n\n{mfi}\n",
    },
    (K.DISPUTE_CORRECTED, Language.ST): {
        "sms": "{mfi}: re hlahlobile ngongoreho ea hau ka kalimo {reference} 'me re lokisitse tlaleho. Histori ea "
               "hau ea mekoloto marang-rang a Letsema e bontša tokiso.",
        "subject": "{mfi}: ngongoreho ea hau ka kalimo {reference} — tlaleho e lokisitsoe",
        "body": "Lumela {first_name},\n\nRe hlahlobile ngongoreho eo u e kentseng ka {opened_on} ka kalimo "
                "{reference}. Tlaleho e ne e fosahetse 'me re e lokisitse; histori ea hau ea mekoloto marang-rang a "
                "Letsema e bontša tokiso.\n\nMolaetsa oa rona: {note}\n\n{mfi}\n",
    },
    (K.DISPUTE_CONFIRMED, Language.ST): {
        "sms": "{mfi}: re hlahlobile ngongoreho ea hau ka kalimo {reference}; tlaleho e nepahetse 'me e sala "
               "joalo. Lipotso? Ka kopo ikopanye le rona.",
        "subject": "{mfi}: ngongoreho ea hau ka kalimo {reference} — tlaleho e netefalitsoe",
        "body": "Lumela {first_name},\n\nRe hlahlobile ngongoreho eo u e kentseng ka {opened_on} ka kalimo "
                "{reference}. Tlaleho e nepahetse 'me e sala joalo.\n\nMolaetsa oa rona: {note}\n\nHaeba u "
                "ntse u nahana hore e fosahetse, u ka e ngongorehela hape ka seo u se tsebang, kapa ikopanye le "
                "rona.\n\n{mfi}\n",
    },
}


def template_name(kind: str, language: str, channel: str) -> str:
    return f"{kind}/{language}/{channel}"


def render(kind: str, language: str, channel: str, context: dict, *, first_name: str) -> tuple[str, str]:
    """(subject, text): for SMS the subject is empty."""
    t = TEXTS[(kind, language)]
    values = {**context, "first_name": first_name}
    if channel == "sms":
        return "", t["sms"].format(**values)
    return t["subject"].format(**values), t["body"].format(**values)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def check_texts() -> None:
    """Every kind has every language, and texts use only the kind's fields (run by the test suite)."""
    for kind in NotificationKind.values:
        for language in Language.values:
            t = TEXTS[(kind, language)]
            for part in ("sms", "subject", "body"):
                extra = placeholders(t[part]) - FIELDS[kind] - RENDER_EXTRA
                if extra:
                    raise AssertionError(f"{kind}/{language}/{part} uses unknown fields {sorted(extra)}")
