from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    """TOTP secrets are kept sealed under the master key (resolvers/two_factor.py): longer than
    the base32 text they were. Secrets stored before stay readable, and `python server.py
    rotate-storage-key` seals them."""

    dependencies = [('models', '0007_data_rights')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='User',
            name='totp_secret',
            field=fields.CharField(null=True, max_length=255),
        ),
    ]
