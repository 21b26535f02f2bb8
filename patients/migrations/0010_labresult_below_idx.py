# The time to normalization (monitoring/normalization.py) starts from the patients with a hemoglobin or platelet
# result below the normal range: a small partial index of those results (issue 16).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0009_patient_clinic_zone_idx"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="labresult",
            index=models.Index(
                condition=models.Q(
                    ("error_recorded_at__isnull", True), ("interpretation__in", ["low", "critically_low"])
                ),
                fields=["patient", "analyte"],
                name="labresult_below_idx",
            ),
        ),
    ]
