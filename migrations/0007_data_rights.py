from tortoise import migrations
from tortoise.migrations.schema_editor.base import BaseSchemaEditor
from tortoise.migrations.schema_generator.state_apps import StateApps
from tortoise.migrations import operations as ops
from models.notifications import NotificationKind
from models.rights import ExportStatus
from models.support import CloseReason
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

async def child_references_set_null(apps: StateApps, schema_editor: BaseSchemaEditor) -> None:
    """PostgreSQL: AlterField made child_id nullable but left its foreign key ON DELETE CASCADE;
    deleting a child must keep the requests and relationships about it (SQLite rebuilt the tables
    with ON DELETE SET NULL already)."""
    if schema_editor.client.capabilities.dialect != "postgres":
        return
    for table in ("support_requests", "support_relationships"):
        await schema_editor._run_sql(
            f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{table}_child_id_fkey";'
            f' ALTER TABLE "{table}" ADD CONSTRAINT "{table}_child_id_fkey" FOREIGN KEY ("child_id")'
            ' REFERENCES "children" ("id") ON DELETE SET NULL;'
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0006_accounts_recovery')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DataExport',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='data_exports', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=ExportStatus.PENDING, description='PENDING: PENDING\nREADY: READY\nEXPIRED: EXPIRED\nFAILED: FAILED', enum_type=ExportStatus, max_length=16)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('ready_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('byte_size', fields.BigIntField(null=True)),
                ('object_key', fields.CharField(null=True, max_length=200)),
                ('wrapped_key', fields.CharField(null=True, max_length=200)),
            ],
            options={'table': 'data_exports', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ErasureRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user_id', fields.BigIntField(unique=True)),
                ('role', fields.CharField(max_length=16)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_holder', fields.CharField(null=True, max_length=32)),
                ('steps_done', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('counts', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'erasure_records', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Notification',
            name='kind',
            field=fields.CharEnumField(description='NEW_SIGN_IN: NEW_SIGN_IN\nNEW_SUPPORT_REQUEST: NEW_SUPPORT_REQUEST\nSUPPORT_REQUEST_ACCEPTED: SUPPORT_REQUEST_ACCEPTED\nSUPPORT_REQUEST_DECLINED: SUPPORT_REQUEST_DECLINED\nINFORMATION_REQUESTED: INFORMATION_REQUESTED\nSUPPORT_REQUEST_WITHDRAWN: SUPPORT_REQUEST_WITHDRAWN\nSUPPORT_REQUEST_EXPIRED: SUPPORT_REQUEST_EXPIRED\nMESSAGE_RECEIVED: MESSAGE_RECEIVED\nRELATIONSHIP_ENDED: RELATIONSHIP_ENDED\nACCESS_REVOKED: ACCESS_REVOKED\nVERIFICATION_DECIDED: VERIFICATION_DECIDED\nSLA_AT_RISK: SLA_AT_RISK\nSLA_BREACHED: SLA_BREACHED\nDATA_EXPORT_READY: DATA_EXPORT_READY\nACCOUNT_DELETION_SCHEDULED: ACCOUNT_DELETION_SCHEDULED', enum_type=NotificationKind, max_length=40),
        ),
        ops.AlterField(
            model_name='SupportRelationship',
            name='child',
            field=fields.ForeignKeyField('models.Child', source_field='child_id', null=True, db_constraint=True, to_field='id', related_name='relationships', on_delete=OnDelete.SET_NULL),
        ),
        ops.AlterField(
            model_name='SupportRelationship',
            name='close_reason',
            field=fields.CharEnumField(null=True, description='RESOLVED: RESOLVED\nNO_LONGER_NEEDED: NO_LONGER_NEEDED\nLEGAL_REPRESENTATION: LEGAL_REPRESENTATION\nCHANGING_ADVOCATE: CHANGING_ADVOCATE\nNOT_WORKING_OUT: NOT_WORKING_OUT\nOTHER: OTHER\nACCOUNT_DELETED: ACCOUNT_DELETED', enum_type=CloseReason, max_length=32),
        ),
        ops.AlterField(
            model_name='SupportRequest',
            name='child',
            field=fields.ForeignKeyField('models.Child', source_field='child_id', null=True, db_constraint=True, to_field='id', related_name='support_requests', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='User',
            name='erased_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='erasure_due_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.RunPython(child_references_set_null),
    ]
