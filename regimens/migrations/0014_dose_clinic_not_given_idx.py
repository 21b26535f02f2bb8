"""The dashboard's reasons for doses not given read a small partial index of a clinic's doses not given (issue 16),
not its months of doses. On a large table, build it in a quiet hour (or CREATE INDEX CONCURRENTLY by hand).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('patients', '0007_lab_import_job'),
        ('regimens', '0013_replan_job'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='scheduleddose',
            index=models.Index(condition=models.Q(('status', 'not_given')), fields=['clinic', 'due_date'], include=('not_given_reason',), name='dose_clinic_not_given_idx'),
        ),
    ]
