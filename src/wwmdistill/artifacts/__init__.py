"""The workflow's Arrow artifact formats, one module each: columns, stage name, metadata keys,
writer and reader.

A stage that produces or consumes an artifact goes through its module here, so changing a format
touches that module and its tests. `wwmdistill.arrow_io` underneath stays format-agnostic.
"""
