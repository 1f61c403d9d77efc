"""What every route shares before and after its view runs: API keys, CORS and the access log.

GraphQL and REST both sit behind these; errors they raise still become HTTP answers only in
``rest/errors.py``.
"""
