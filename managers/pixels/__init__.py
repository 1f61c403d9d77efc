"""Pixel data read where it lies: where each frame is in a file (native or encapsulated,
PS3.5 8 and A.4), and the frames themselves, one ranged GET each.

Beside ``managers/dicom/`` (header reading), as pydicom keeps ``encaps`` and ``pixels/``
apart: the header parse stops at the pixel data, and this package starts there.
"""
