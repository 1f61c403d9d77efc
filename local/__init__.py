"""The embedded AWS for `make run` and the tests: a moto server, seeded, with S3 events delivered."""
