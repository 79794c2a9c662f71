from tortoise import migrations
from tortoise.migrations import operations as ops
from models.documents import DocumentStatus, RejectionReason
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_tickets')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Document',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.ForeignKeyField('models.Family', source_field='family_id', db_constraint=True, to_field='id', related_name='documents', on_delete=OnDelete.CASCADE)),
                ('child', fields.ForeignKeyField('models.Child', source_field='child_id', db_constraint=True, to_field='id', related_name='documents', on_delete=OnDelete.CASCADE)),
                ('evidence', fields.ForeignKeyField('models.Evidence', source_field='evidence_id', db_constraint=True, to_field='id', related_name='documents', on_delete=OnDelete.CASCADE)),
                ('filename', fields.CharField(max_length=255)),
                ('content_type', fields.CharField(max_length=100)),
                ('byte_size', fields.BigIntField()),
                ('sha256', fields.CharField(max_length=64)),
                ('status', fields.CharEnumField(default=DocumentStatus.PENDING_UPLOAD, description='PENDING_UPLOAD: PENDING_UPLOAD\nAVAILABLE: AVAILABLE\nREJECTED: REJECTED', enum_type=DocumentStatus, max_length=16)),
                ('rejection_reason', fields.CharEnumField(null=True, description='SIZE_MISMATCH: SIZE_MISMATCH\nHASH_MISMATCH: HASH_MISMATCH\nTYPE_MISMATCH: TYPE_MISMATCH', enum_type=RejectionReason, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('upload_expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('uploaded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('object_key', fields.CharField(null=True, max_length=200)),
                ('wrapped_key', fields.CharField(null=True, max_length=200)),
                ('received_size', fields.BigIntField(null=True)),
                ('received_sha256', fields.CharField(null=True, max_length=64)),
                ('received_type', fields.CharField(null=True, max_length=100)),
            ],
            options={'table': 'documents', 'app': 'models', 'indexes': [Index(fields=['evidence_id', 'id']), Index(fields=['status', 'upload_expires_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
