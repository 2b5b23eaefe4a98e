"""Candidate costs are computed once per input shape and read back from the cache folder."""

from __future__ import annotations

from edgedistill.latency.costs import model_cost
from edgedistill.students import build_student, cost_table, parse_student

SPECS = ["mbv2:d=1,e=3,k=3,r=16,se=0,w=0.25", "mbv2:d=1,e=3,k=5,r=16,se=1,w=0.5"]
SHAPE = (1, 24, 24)  # a shape no other test prices: the table starts empty


def test_costs_are_stored_and_read_back_equal_to_tracing_the_module(isolated_dirs):
    first = cost_table.costs_for(SPECS, SHAPE, 7)
    for spec in SPECS:
        traced = model_cost(build_student(parse_student(spec), SHAPE, 7), SHAPE)
        assert first[spec] == traced
    path = cost_table._path(cost_table._key(SHAPE, 7, "fp32"))
    assert path.parent == isolated_dirs / "cache" / "costs" and path.is_file()
    cost_table._TABLES.clear()  # as a new process: read from disk
    assert cost_table.costs_for(SPECS, SHAPE, 7) == first
    path.write_text("{not json")
    cost_table._TABLES.clear()
    assert cost_table.costs_for(SPECS, SHAPE, 7) == first, "an unreadable table is recomputed"
