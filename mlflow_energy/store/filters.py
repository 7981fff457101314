"""The run searches the tool makes, in MLflow's filter syntax: built here, from store/names.py."""

from __future__ import annotations

from mlflow_energy.bench.result import Status
from mlflow_energy.store import names

NEWEST_FIRST = ["attributes.start_time DESC"]


def tag_is(tag: str, value: str) -> str:
    return f"tags.`{tag}` = '{value}'"


def all_of(*clauses: str) -> str:
    return " and ".join(clauses)


def in_sweep(query: str, sweep_id: str | None) -> str:
    """``query``, limited to the runs of one sweep when ``sweep_id`` is given."""
    return all_of(query, tag_is(names.TAG_SWEEP_ID, sweep_id)) if sweep_id else query


FINISHED = f"attributes.status = '{names.RUN_FINISHED}'"
# Runs whose measurement finished (a FINISHED run may hold a failed one's record, never the reverse).
FINISHED_MEASUREMENTS = all_of(FINISHED, tag_is(names.TAG_STATUS, Status.FINISHED.value))
SWEEP_PARENTS = tag_is(names.TAG_SWEEP_PARENT, "true")


def sweep_parent(sweep_id: str) -> str:
    return all_of(tag_is(names.TAG_SWEEP_ID, sweep_id), SWEEP_PARENTS)


def finished_config(config_hash: str) -> str:
    """FINISHED runs that measured this exact configuration."""
    return all_of(tag_is(names.TAG_CONFIG_HASH, config_hash), FINISHED)


def holding_result(result_id: str) -> str:
    return tag_is(names.TAG_RESULT_ID, result_id)
