# queue_health's sent and failed rows of the last day, by channel (the dashboard's outbox too), read through this
# index instead of a scan of the outbox's whole history (issue 16).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0007_delivery_sending_claimed_idx"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status__in", ["sent", "failed"])),
                fields=["updated_at"],
                include=("status", "channel"),
                name="delivery_done_updated_idx",
            ),
        ),
    ]
