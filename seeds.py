"""Names of the files the embedded AWS seeds, read by the seeding itself, GraphiQL's example
and the startup banner. Plain constants, so that naming a seeded file imports neither the
embedded AWS nor pydicom."""

from __future__ import annotations

from config import S3_BUCKET_NAME

# Fixed UIDs so the README's and the banner's examples name files that exist on every run.
SEED_UID_ROOT = "1.2.826.0.1.3680043.8.498.1."


def seeded_s3_path(number: int = 1) -> str:
    """Return the s3 path of the ``number``-th generated seed file (1 to 3)."""
    return f"s3://{S3_BUCKET_NAME}/dicom/anon-{SEED_UID_ROOT}{number}.dcm"


def seeded_file_study_uid(number: int) -> str:
    """Return the StudyInstanceUID of the ``number``-th generated seed file (1 to 3): ``….1{number}``.

    Its one series is this UID plus ``.1``.
    """
    return f"{SEED_UID_ROOT}1{number}"


# A seeded knee MR study of two series of two instances each: the study view's example.
SEED_STUDY_UID = f"{SEED_UID_ROOT}100"

# A seeded study of pydicom's bundled images, one series per transfer syntax, their pixel data
# as pydicom ships it: series ``n`` is ``SEED_SAMPLER_STUDY_UID.n``, its one instance ``….n.1``.
SEED_SAMPLER_STUDY_UID = f"{SEED_UID_ROOT}200"
