"""The clinic on the dose row becomes required once 0006 has filled it, and the worklist's indexes (issue 16).
A migration of its own: PostgreSQL refuses to alter a table with the deferred foreign-key checks of 0006's
UPDATE still pending in the same transaction."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('regimens', '0006_dose_clinic_perf'),
    ]

    operations = [
        migrations.AlterField(
            model_name='scheduleddose',
            name='clinic',
            field=models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='patients.clinic'),
        ),
        migrations.AddIndex(
            model_name='scheduleddose',
            index=models.Index(fields=['clinic', 'due_date'], name='dose_clinic_due_idx'),
        ),
        migrations.AddIndex(
            model_name='scheduleddose',
            index=models.Index(condition=models.Q(('status', 'planned')), fields=['clinic', 'due_date'], name='dose_clinic_planned_due_idx'),
        ),
    ]
