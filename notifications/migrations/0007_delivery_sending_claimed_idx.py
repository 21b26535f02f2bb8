# The outbox sweep's reclaim of expired leases reads the rows being sent through this index (issue 16).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0006_patient_access"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status", "sending")), fields=["claimed_at"], name="delivery_sending_claimed_idx"
            ),
        ),
    ]
