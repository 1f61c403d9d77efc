"""AWS itself: boto3 clients and their errors, S3 object reads, typed S3 events, Step Functions.

Standard library and boto3 only: both Lambda packages carry what they import of it.
"""
