"""The clinic on the dose row, denormalised from the patient for the clinic worklist (issue 16).

Added nullable and filled from each dose's patient (a correlated subquery: PostgreSQL and SQLite); 0007 makes
it required and adds the indexes.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0003_clinical_revisions'),
        ('regimens', '0005_records_l11_oral_protocols'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='historicalscheduleddose',
            name='clinic',
            field=models.ForeignKey(blank=True, db_constraint=False, editable=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='patients.clinic'),
        ),
        migrations.AddField(
            model_name='scheduleddose',
            name='clinic',
            field=models.ForeignKey(db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='patients.clinic'),
        ),
        migrations.RunSQL(
            "UPDATE regimens_scheduleddose SET clinic_id = (SELECT p.clinic_id FROM patients_patient p "
            "WHERE p.id = regimens_scheduleddose.patient_id)",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "UPDATE regimens_historicalscheduleddose SET clinic_id = (SELECT p.clinic_id FROM patients_patient p "
            "WHERE p.id = regimens_historicalscheduleddose.patient_id)",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
