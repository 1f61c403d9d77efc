"""The managers one app uses, built together once so they share clients."""

from __future__ import annotations

from dataclasses import dataclass

from managers.aws import Credentials
from managers.DicomManager import DicomManager
from managers.DynamoDBManager import DynamoDBManager
from managers.S3Manager import S3Manager


@dataclass(frozen=True)
class Managers:
    """S3, DynamoDB and DICOM managers sharing one set of credentials and one endpoint."""

    s3: S3Manager
    dynamodb: DynamoDBManager
    dicom: DicomManager

    @classmethod
    def create(cls, credentials: Credentials | None = None, endpoint_url: str | None = None) -> "Managers":
        """Build the managers: explicit credentials when given, else boto3's default chain."""
        keys = (
            (credentials.aws_access_key_id, credentials.aws_secret_access_key, credentials.aws_session_token)
            if credentials
            else (None, None, None)
        )
        s3 = S3Manager(*keys, endpoint_url=endpoint_url)
        return cls(s3=s3, dynamodb=DynamoDBManager(*keys, endpoint_url=endpoint_url), dicom=DicomManager(s3))
