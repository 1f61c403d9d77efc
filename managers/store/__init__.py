"""The metadata table: its key, indexes and shards, the items it holds (records, tombstones,
studies, series, search keys), the counters kept exact with each record, and the study index
that reads them. With ``managers/DynamoDBManager.py``, the only code that sees DynamoDB's wire
format (``{"S": …}``).

Standard library and boto3 only: the Lambda packages carry the modules they import.
"""
