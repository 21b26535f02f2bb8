"""Issue 12: API tokens moved from DRF's authtoken (the key stored in clear) to django-rest-knox (a digest
only). The old table is dropped, so a copy of the database holds no usable key: every token issued before
this migration stops working and integrations ask POST /api/auth/token/ for a new one (docs/security.md)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

OLD_TABLE = "authtoken_token"


def drop_clear_tokens(apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    if OLD_TABLE in connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(OLD_TABLE)}")
    # rest_framework.authtoken is no longer installed: forget its migrations, content types and permissions.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.using(connection.alias).filter(app_label="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(drop_clear_tokens, migrations.RunPython.noop)]
