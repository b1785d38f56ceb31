"""Validation's parts: report types, table reading, the GX suites, triage; the stage is
`basket.validation.validate.validate`."""
