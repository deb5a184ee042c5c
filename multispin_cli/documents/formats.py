"""Format versions of the documents multispin writes and reads back (a module of its own, so that
a writer need not load the reader to stamp its version)."""

PLAN_FORMAT_VERSION = 1  # the plan document: written by render.document, read by documents.planfile
