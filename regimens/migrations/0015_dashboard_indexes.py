"""The dashboard's indexes (issue 16): a regimen's first dose given (its T0, read per patient by the time to
normalization) and a patient's open rechecks (due and overdue). On a large table, build them in a quiet hour (or
CREATE INDEX CONCURRENTLY by hand).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0008_lab_import_job_heartbeat'),
        ('regimens', '0014_dose_clinic_not_given_idx'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="labrecheck",
            index=models.Index(
                condition=models.Q(("status__in", ["due", "overdue"])),
                fields=["patient"],
                include=("status", "window_start", "window_end"),
                name="recheck_open_patient_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="scheduleddose",
            index=models.Index(
                condition=models.Q(("administered_at__isnull", False), ("status", "given")),
                fields=["regimen", "administered_at"],
                name="dose_regimen_given_idx",
            ),
        ),
    ]
