from __future__ import annotations

from django.db import migrations


def load(apps, schema_editor):  # type: ignore[no-untyped-def]
    # RULES §10 V-10: L-11 applies to every oral protocol (oral-high-dose, bariatric-oral, diet-oral). Only
    # the L-11 steps are written: phases an admin edited stay as they are. Regimens already running keep
    # their protocol snapshot (a later edit never silently changes a regimen under way).
    from regimens.protocol_data import load_recheck_steps

    load_recheck_steps(
        apps.get_model("regimens", "Protocol"), apps.get_model("regimens", "ProtocolRecheckStep"), rules=("L-11",)
    )


class Migration(migrations.Migration):
    dependencies = [("regimens", "0004_clinical_revisions")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
