"""Part of moving the label models into labels, state only: see labels 0002_label_models_move_in."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('consent', '0010_bulk_change_models_move_out_index'),
        ('labels', '0002_label_models_move_in'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='auditevent',
                    name='bulk_change',
                    field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='events', to='labels.bulkchange'),
                ),
                migrations.RemoveField(
                    model_name='consentproposal',
                    name='artist',
                ),
                migrations.RemoveField(
                    model_name='consentproposal',
                    name='label',
                ),
                migrations.RemoveField(
                    model_name='consentproposal',
                    name='proposed_by',
                ),
                migrations.RemoveField(
                    model_name='consentproposal',
                    name='purpose',
                ),
                migrations.RemoveField(
                    model_name='consentproposal',
                    name='tracks',
                ),
                migrations.AlterField(
                    model_name='auditevent',
                    name='label',
                    field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='labels.label'),
                ),
                migrations.RemoveField(
                    model_name='bulkchange',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='bulkchange',
                    name='label',
                ),
                migrations.RemoveField(
                    model_name='bulkchange',
                    name='undo_of',
                ),
                migrations.DeleteModel(
                    name='BulkChangeItem',
                ),
                migrations.DeleteModel(
                    name='ConsentProposal',
                ),
                migrations.DeleteModel(
                    name='BulkChange',
                ),
            ],
        ),
    ]
