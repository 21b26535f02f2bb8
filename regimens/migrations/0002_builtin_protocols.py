from __future__ import annotations

from django.db import migrations


def load(apps, schema_editor):  # type: ignore[no-untyped-def]
    from regimens.protocol_data import load_protocols

    load_protocols(
        apps.get_model("regimens", "Protocol"),
        apps.get_model("regimens", "ProtocolPhase"),
        apps.get_model("regimens", "ProtocolRecheckStep"),
    )


class Migration(migrations.Migration):
    dependencies = [("regimens", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
