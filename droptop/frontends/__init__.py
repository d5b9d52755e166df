"""Front ends: each reads immutable Snapshots from the poll loop and shows or serves them.

Batch output, the TUI (the only importer of Textual) and the Prometheus exporter are
independent of one another; a new front end is one new module here.
"""
