"""Part of moving the label models into labels, state only: see labels 0002_label_models_move_in."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('consent', '0009_auditevent_commit_order'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveIndex(
                    model_name='bulkchange',
                    name='consent_bulk_status_lease_idx',
                ),
            ],
        ),
    ]
