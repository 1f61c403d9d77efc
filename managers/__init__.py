"""The only code that talks to AWS and pydicom.

Each manager lives in its own module, named as in the original skeleton. This package
imports none of them, so the Lambda can import ``managers.DynamoDBManager`` without
pulling in pydicom or requests.
"""
