"""The texts of patient reminders and staff notifications.

Patient texts name the clinic, the date in the patient's language and how to
change it, and nothing clinical: email and SMS are read on lock screens and shared devices. Doses and lab
rechecks are both "an appointment at <clinic>" on purpose (docs/reminders.md): even "blood test" tells a
reader more than the patient chose to share. Staff texts go to staff email and the staff inbox and may
carry the clinical detail of the alert.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from django.conf import settings

DEFAULT_LANGUAGE = "en"

MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "es": [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
}
WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
}

# (subject, body) per purpose and language. Placeholders: name, clinic, date, start, end, contact.
PATIENT_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "dose_reminder": {
        "en": (
            "Reminder: your appointment at {clinic} on {date}",
            "Hello {name},\n\nThis is a reminder of your appointment at {clinic} on {date}.\n\n"
            "If you cannot come or need to change the date, {contact}.\n\n{clinic}",
        ),
        "es": (
            "Recordatorio: su cita en {clinic} el {date}",
            "Hola {name}:\n\nLe recordamos su cita en {clinic} el {date}.\n\n"
            "Si no puede venir o necesita cambiar la fecha, {contact}.\n\n{clinic}",
        ),
    },
    "recheck_reminder": {
        "en": (
            "Reminder: please book your appointment at {clinic}",
            "Hello {name},\n\nYour next appointment at {clinic} is due between {start} and {end}.\n\n"
            "To book it or change the dates, {contact}.\n\n{clinic}",
        ),
        "es": (
            "Recordatorio: reserve su cita en {clinic}",
            "Hola {name}:\n\nSu próxima cita en {clinic} debe ser entre el {start} y el {end}.\n\n"
            "Para reservarla o cambiar las fechas, {contact}.\n\n{clinic}",
        ),
    },
    "dose_overdue": {
        "en": (
            "We missed you at {clinic}",
            "Hello {name},\n\nYour appointment at {clinic} was on {date} and we have not seen you yet.\n\n"
            "To arrange a new date, {contact}.\n\n{clinic}",
        ),
        "es": (
            "Le echamos de menos en {clinic}",
            "Hola {name}:\n\nSu cita en {clinic} era el {date} y todavía no ha venido.\n\n"
            "Para acordar una nueva fecha, {contact}.\n\n{clinic}",
        ),
    },
    "appointment_moved": {
        "en": (
            "Your appointment at {clinic} has moved",
            "Hello {name},\n\nYour appointment at {clinic} has moved from {old_date} to {date}.\n\n"
            "If the new date does not suit you, {contact}.\n\n{clinic}",
        ),
        "es": (
            "Su cita en {clinic} ha cambiado",
            "Hola {name}:\n\nSu cita en {clinic} ha cambiado del {old_date} al {date}.\n\n"
            "Si la nueva fecha no le viene bien, {contact}.\n\n{clinic}",
        ),
    },
    "home_dose_prompt": {
        "en": (
            "A monthly note from {clinic}",
            "Hello {name},\n\nThis is your monthly note from {clinic}: please keep to the plan you agreed with "
            "us, every day.\n\nIf anything has changed or you have a question, {contact}.\n\n{clinic}",
        ),
        "es": (
            "Una nota mensual de {clinic}",
            "Hola {name}:\n\nEsta es su nota mensual de {clinic}: siga cada día el plan que acordó con nosotros."
            "\n\nSi algo ha cambiado o tiene alguna pregunta, {contact}.\n\n{clinic}",
        ),
    },
    "portal_link": {
        "en": (
            "Your link to your appointments at {clinic}",
            "Hello {name},\n\nOpen this link to see your appointments at {clinic} and choose how we remind you:\n"
            "{link}\n\nIt works once, within {minutes} minutes. If you did not ask for it, ignore this message."
            "\n\n{clinic}",
        ),
        "es": (
            "Su enlace a sus citas en {clinic}",
            "Hola {name}:\n\nAbra este enlace para ver sus citas en {clinic} y elegir cómo le avisamos:\n"
            "{link}\n\nFunciona una vez, durante {minutes} minutos. Si no lo ha pedido, ignore este mensaje."
            "\n\n{clinic}",
        ),
    },
}
# One message for what a patient is told on the same day (notifications/reminders.py merges them): each
# line that applies, in this order, then how to change. Placeholders as above, plus old_date.
COMBINED_TEXTS: dict[str, dict[str, str]] = {
    "subject": {"en": "Your appointments at {clinic}", "es": "Sus citas en {clinic}"},
    "hello": {"en": "Hello {name},", "es": "Hola {name}:"},
    "missed": {
        "en": "Your appointment at {clinic} was on {date} and we have not seen you yet.",
        "es": "Su cita en {clinic} era el {date} y todavía no ha venido.",
    },
    "moved": {
        "en": "Your appointment at {clinic} has moved from {old_date} to {date}.",
        "es": "Su cita en {clinic} ha cambiado del {old_date} al {date}.",
    },
    "next": {
        "en": "Your next appointment at {clinic} is on {date}.",
        "es": "Su próxima cita en {clinic} es el {date}.",
    },
    "book": {
        "en": "Please book an appointment at {clinic} between {start} and {end}.",
        "es": "Reserve una cita en {clinic} entre el {start} y el {end}.",
    },
    "home": {
        "en": "Please keep to the plan you agreed with {clinic}, every day.",
        "es": "Siga cada día el plan que acordó con {clinic}.",
    },
    "change": {
        "en": "If you cannot come or need to change a date, {contact}.",
        "es": "Si no puede venir o necesita cambiar una fecha, {contact}.",
    },
}
# Answers to a patient's text (notifications/optout.py). Placeholders: clinic, contact.
SMS_REPLIES: dict[str, dict[str, str]] = {
    "stop": {
        "en": "{clinic}: you will get no more reminders by text. Text START to get them again.",
        "es": "{clinic}: ya no recibirá más recordatorios por SMS. Envíe START para volver a recibirlos.",
    },
    "start": {
        "en": "{clinic}: you will get your reminders by text again. Text STOP to stop them.",
        "es": "{clinic}: volverá a recibir sus recordatorios por SMS. Envíe STOP para dejar de recibirlos.",
    },
    "help": {
        "en": "{clinic} appointment reminders. For help, {contact}. Text STOP to stop reminders, START to restart.",
        "es": "Recordatorios de citas de {clinic}. Para ayuda, {contact}. Envíe STOP para dejar de recibirlos "
        "y START para volver a recibirlos.",
    },
}
HELP_CONTACT = {"en": ("call {phone}", "contact the clinic"), "es": ("llame al {phone}", "contacte con la clínica")}

CONTACT = {
    "en": ("please call {clinic} on {phone}", "please contact {clinic}"),
    "es": ("llame a {clinic} al {phone}", "contacte con {clinic}"),
}
# Only where a reply reaches someone: an email whose Reply-To is the clinic's address (context
# "can_reply"; without the key, as before: the texts' tests and staff previews).
REPLY = {"en": " or reply to this message", "es": " o responda a este mensaje"}


def contact_text(lang: str, context: dict[str, Any]) -> str:
    with_phone, without_phone = CONTACT[lang]
    phone = str(context.get("clinic_phone") or "").strip()
    text = (with_phone if phone else without_phone).format(clinic=context["clinic"], phone=phone)
    return text + (REPLY[lang] if context.get("can_reply", True) else "")


def language_of(language: str) -> str:
    """The language we have texts for: "es-MX" -> "es"; anything unknown -> English."""
    base = (language or "").split("-")[0].split("_")[0].lower()
    return base if base in WEEKDAYS else DEFAULT_LANGUAGE


def format_date(day: date, language: str) -> str:
    """ "Friday 9 April 2027" / "viernes 9 de abril de 2027"."""
    lang = language_of(language)
    weekday, month = WEEKDAYS[lang][day.weekday()], MONTHS[lang][day.month - 1]
    if lang == "es":
        return f"{weekday} {day.day} de {month} de {day.year}"
    return f"{weekday} {day.day} {month} {day.year}"


AT_TIME = {"en": "{date} at {time}", "es": "{date} a las {time}"}


def format_when(day: date, at: time | None, language: str) -> str:
    """ "Friday 9 April 2027 at 09:30" when the appointment has a time, else the date alone."""
    lang = language_of(language)
    text = format_date(day, lang)
    return AT_TIME[lang].format(date=text, time=f"{at:%H:%M}") if at is not None else text


def render(purpose: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of a message. Patient purposes read `name`, `clinic`, `clinic_phone` and `date`
    (or `start`/`end` for rechecks, dates in the patient's local calendar); staff purposes see
    `staff_alert`, `staff_escalation` and `staff_digest`."""
    if purpose in STAFF_RENDERERS:
        return STAFF_RENDERERS[purpose](context)
    lang = language_of(language)
    texts = PATIENT_TEXTS[purpose]
    subject, body = texts.get(lang, texts[DEFAULT_LANGUAGE])
    values = {
        "name": str(context.get("name") or "").strip() or ("there" if lang == "en" else ""),
        "clinic": context["clinic"],
        "date": format_when(context["date"], context.get("time"), lang) if context.get("date") else "",
        "start": format_date(context["start"], lang) if context.get("start") else "",
        "end": format_date(context["end"], lang) if context.get("end") else "",
        "old_date": format_date(context["old_date"], lang) if context.get("old_date") else "",
        "link": str(context.get("link") or ""),
        "minutes": str(context.get("minutes") or ""),
    }
    values["contact"] = contact_text(lang, context)
    return subject.format(**values), body.format(**values).replace("Hola :", "Hola:")


def sms_reply(kind: str, language: str, *, clinic: str, clinic_phone: str = "") -> str:
    """The answer to a patient's STOP, START or HELP text, in their language."""
    lang = language_of(language)
    with_phone, without_phone = HELP_CONTACT[lang]
    phone = (clinic_phone or "").strip()
    contact = with_phone.format(phone=phone) if phone else without_phone
    return SMS_REPLIES[kind][lang].format(clinic=clinic, contact=contact)


def render_combined(language: str, context: dict[str, Any], lines: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
    """One message out of several the patient would get the same day: `lines` are (kind, dates) with kind
    "missed", "moved", "next", "book" or "home" (see COMBINED_TEXTS), already in the order to tell them."""
    lang = language_of(language)
    clinic = context["clinic"]
    name = str(context.get("name") or "").strip() or ("there" if lang == "en" else "")
    contact = contact_text(lang, context)
    parts = [COMBINED_TEXTS["hello"][lang].format(name=name).replace("Hola :", "Hola:")]
    for kind, dates in lines:
        values = {key: format_date(value, lang) for key, value in dates.items() if key != "time" and value}
        if dates.get("time") and dates.get("date"):
            values["date"] = format_when(dates["date"], dates["time"], lang)
        parts.append(COMBINED_TEXTS[kind][lang].format(clinic=clinic, **values))
    parts += [COMBINED_TEXTS["change"][lang].format(contact=contact), clinic]
    return COMBINED_TEXTS["subject"][lang].format(clinic=clinic), "\n\n".join(parts)


# --- Staff messages (may carry clinical detail: they reach staff only) ---------------------------------
# The body may; the subject may not: mail clients show subjects on lock screens, in notifications and in
# server logs. A staff subject names the severity and the clinic, never the patient or the alert (issue 12).


def alert_link(alert: dict[str, Any]) -> str:
    """The alert on its patient's page (`/patients/{id}/#alerts`, where staff acknowledge it), absolute when
    COBALT SITE_URL is set, as mail clients need (`make run` sets it to the local address). An alert written
    before the patient id was part of the context links to the alerts page."""
    base = str(settings.COBALT.get("SITE_URL") or "").rstrip("/")
    patient_id = alert.get("patient_id")
    return f"{base}/patients/{patient_id}/#alerts" if patient_id else f"{base}/alerts/"


def _alert_lines(alert: dict[str, Any]) -> str:
    lines = [
        f"Patient: {alert['patient']}",
        f"Alert: {alert['kind']} ({alert['severity']}){' ' + alert['rule_id'] if alert.get('rule_id') else ''}",
        f"Opened: {alert['opened_at']}"
        + (f", reopened {alert['reopened_at']}" if alert.get("reopened_at") else ""),
        "",
        str(alert["message"]),
    ]
    if alert.get("action_text"):
        lines += ["", f"Suggested action: {alert['action_text']}"]
    lines += ["", f"Open it: {alert_link(alert)}"]
    return "\n".join(lines)


def staff_alert(context: dict[str, Any]) -> tuple[str, str]:
    alert = context["alert"]
    reopened = context.get("reopened")
    if reopened:
        # RULES §10 V-3: an acknowledged alert that new evidence reopened is announced as if new.
        subject = f"[{str(alert['severity']).upper()} REOPENED] Cobalt alert at {context['clinic']}"
        before = f"{reopened['by']}{' on ' + reopened['at'] if reopened.get('at') else ''}"
        note = f' ("{reopened["note"]}")' if reopened.get("note") else ""
        intro = (
            f"A {alert['severity']} alert at {context['clinic']} is open again: new evidence of the same problem "
            f"arrived after it was acknowledged by {before}{note}."
        )
        return subject[:200], f"{intro}\n\n{_alert_lines(alert)}\n"
    subject = f"[{str(alert['severity']).upper()}] New Cobalt alert at {context['clinic']}"
    return subject[:200], f"A new {alert['severity']} alert at {context['clinic']}.\n\n{_alert_lines(alert)}\n"


def staff_escalation(context: dict[str, Any]) -> tuple[str, str]:
    alert = context["alert"]
    subject = f"[ESCALATED {str(alert['severity']).upper()}] Cobalt alert not acknowledged at {context['clinic']}"
    body = (
        f"This {alert['severity']} alert at {context['clinic']} has not been acknowledged after "
        f"{context['hours']} hours (RULES §3.2). Please make sure someone reviews it.\n\n{_alert_lines(alert)}\n"
    )
    return subject[:200], body


def staff_digest(context: dict[str, Any]) -> tuple[str, str]:
    alerts: list[dict[str, Any]] = context["alerts"]
    subject = f"{context['clinic']}: {len(alerts)} medium alert{'s' if len(alerts) != 1 else ''} ({context['date']})"
    parts = [
        f"Medium alerts opened at {context['clinic']} since the last digest and still unresolved "
        f"(RULES §3.2: review within 7 days).",
    ]
    for alert in alerts:
        # RULES §10 V-3: a reopened alert is in the digest of its reopening.
        reopened = alert.get("reopened_at")
        again = f", reopened {reopened} (new evidence after an acknowledgement)" if reopened else ""
        parts.append(
            f"- {alert['patient']}: {alert['kind']}{' (' + alert['rule_id'] + ')' if alert.get('rule_id') else ''}"
            f", opened {alert['opened_at']}{again}\n  {alert['message']}\n  {alert_link(alert)}"
        )
    return subject[:200], "\n\n".join(parts) + "\n"


STAFF_RENDERERS = {"alert": staff_alert, "escalation": staff_escalation, "digest": staff_digest}
