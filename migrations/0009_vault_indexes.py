from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    """Indexes for what every advocate's Vault read and every family's access log ask: the grants
    of a family to an advocate, a relationship's grants, a family's log newest first. Without them
    PostgreSQL scanned the whole table (17 ms at 200,000 grants)."""

    dependencies = [('models', '0008_sealed_totp_secrets')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='VaultAccessLog',
            index=Index(fields=['family_id', 'id']),
        ),
        ops.AddIndex(
            model_name='VaultGrant',
            index=Index(fields=['family_id', 'advocate_id']),
        ),
        ops.AddIndex(
            model_name='VaultGrant',
            index=Index(fields=['relationship_id', 'id']),
        ),
    ]
