"""What the stages hand each other and write to disk: artifacts, measurements, run summaries.

Plain pydantic schemas with no behaviour beyond validation, below every stage that builds or
reads them (export writes Artifacts, lab returns measurements, bundle reads the RunSummary).
"""
