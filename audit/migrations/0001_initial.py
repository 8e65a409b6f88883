"""The audit tables, created with hand-written SQL (audit/schema.py) plus their
append-only triggers. Irreversible on purpose: migrating the audit app back to zero
would drop the log."""

from django.db import migrations, models

from audit import schema


def create_tables(apps, schema_editor):
    schema.create(schema_editor)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('seq', models.BigIntegerField(help_text='Leaf index in the Merkle tree.', primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField()),
                ('actor_name', models.CharField(blank=True, max_length=150)),
                ('action', models.CharField(max_length=64)),
                ('subject', models.CharField(blank=True, max_length=200)),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('entry', models.TextField(help_text='Canonical JSON committed to by the leaf hash.')),
                ('leaf_hash', models.BinaryField()),
            ],
            options={
                'verbose_name': 'audit event',
                'db_table': 'audit_event',
                'ordering': ['-seq'],
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='Checkpoint',
            fields=[
                ('size', models.BigIntegerField(primary_key=True, serialize=False)),
                ('root_hash', models.BinaryField()),
                ('note', models.TextField(help_text='The signed note (C2SP tlog-checkpoint).')),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'audit_checkpoint',
                'ordering': ['-size'],
                'get_latest_by': 'size',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='LogHead',
            fields=[
                ('id', models.SmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('size', models.BigIntegerField(default=0)),
                ('frontier', models.BinaryField(default=b'')),
                ('root_hash', models.BinaryField()),
                ('last_time', models.DateTimeField(null=True)),
                ('checkpoint_size', models.BigIntegerField(default=0)),
                ('checkpoint_at', models.DateTimeField(null=True)),
            ],
            options={
                'db_table': 'audit_loghead',
                'managed': False,
            },
        ),
        migrations.CreateModel(
            name='TreeNode',
            fields=[
                ('key', models.BigIntegerField(primary_key=True, serialize=False)),
                ('hash', models.BinaryField()),
            ],
            options={
                'db_table': 'audit_treenode',
                'managed': False,
            },
        ),
        migrations.RunPython(create_tables, reverse_code=None, elidable=False),
    ]
