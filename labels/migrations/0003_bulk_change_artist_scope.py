# The artist's own bulk changes: BulkChange gets an owner-artist scope beside the label one.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labels', '0002_label_models_move_in'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='bulkchange',
            name='artist',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='own_bulk_changes', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='bulkchange',
            name='label',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='bulk_changes', to='labels.label'),
        ),
        migrations.AddConstraint(
            model_name='bulkchange',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('artist__isnull', True), ('label__isnull', False)), models.Q(('artist__isnull', False), ('label__isnull', True)), _connector='OR'), name='labels_bulkchange_label_xor_artist'),
        ),
    ]
