"""The bulk indexer: ``python -m indexer S3_PREFIX`` (``make index``) indexes every object under a prefix."""
