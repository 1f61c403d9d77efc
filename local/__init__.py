"""The embedded AWS for `make run` and the tests: a moto server, seeded, with S3 events delivered."""

from managers.aws import Credentials

# Here rather than in local.server, so gunicorn's master and workers can name the embedded AWS
# without importing moto.
DEFAULT_PORT = 4566
# moto accepts any credentials; fixed ones keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = Credentials(aws_access_key_id="local", aws_secret_access_key="local")
