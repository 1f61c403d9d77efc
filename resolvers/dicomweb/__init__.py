"""DICOMweb (PS3.18): QIDO-RS searches and WADO-RS metadata over the study index.

``query`` parses a request into a ``QidoQuery``, ``search`` walks the index for it,
``retrieve`` answers WADO-RS (the instances' headers, as metadata).

A search is parsed into a ``QidoQuery`` (``parse_query``), then walked through ``StudyIndex``:
studies (``search_studies``), their series (``series_of``), the series' instances
(``instances``), in the order of the index: newest StudyDate first then StudyInstanceUID;
series by SeriesNumber; instances by InstanceNumber. ``offset`` skips along that walk.

Bounds, per request:

- ``limit``: default ``DEFAULT_LIMIT``; above ``MAX_LIMIT`` it is capped, with a warning.
- ``offset``: at most ``MAX_OFFSET`` (else ``InvalidArgument``): a skip reads what it skips.
- ``MAX_EXAMINED`` records (studies, series and instances together) read by one search; a
  walk that reaches it stops and answers what it found, with a warning.
- ``MAX_LIST_VALUES`` values in one UID or modality list, and ``MAX_VARIANTS`` study searches
  (their product) merged for one request.
- WADO-RS metadata reads at most ``MAX_METADATA_INSTANCES`` headers (else ``InvalidArgument``),
  ``HEADER_WINDOW`` at a time on the app's pool.

Matching: PatientName as ``managers.store.study_records`` describes (``*text*`` matches a name component
by prefix); PatientID and AccessionNumber ``*text*`` by prefix of the value, StudyDescription
by prefix of any word; ModalitiesInStudy and Modality exactly, case-insensitively, a list
matching any of its values; UIDs exactly, a list (``\\`` or ``,``, or the key repeated)
matching any; StudyDate and SeriesDate ``YYYYMMDD``, ``A-B``, ``-B`` or ``A-``.
"""
