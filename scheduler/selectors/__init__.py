"""Reads for the pages and the API: what the dashboard, job, session and fair-share
pages show.

Selectors never write, and never run the rules: scheduling answers (position,
estimated start, why a job waits, what starts next) come from the plan the
leader published (`scheduler.plans`), queue depths from its queue samples.
"""

from scheduler.policy import LANES
from scheduler.selectors.access import (
    JOB_FILTERS,
    User,
    instances_of,
    job_filter_choices,
    jobs_table,
    jobs_visible,
    pseudonym,
    sessions_joinable,
    sessions_visible,
    shown,
    visible_instances,
)
from scheduler.selectors.cards import LANE_LABELS, BackendCard, backend_cards
from scheduler.selectors.charts import (
    CHART_POINTS,
    FLOW_BIN,
    TIMELINE_SPAN,
    flow_bin,
    flow_now,
    queue_flow,
)
from scheduler.selectors.cluster import Cluster, ProcessRow, cluster_processes
from scheduler.selectors.fair_share import TreeRow, fair_share_next, fair_share_tree
from scheduler.selectors.results import (
    JobResults,
    ResultUnavailable,
    job_bitstrings,
    job_results,
    result_text,
)
from scheduler.selectors.timeline import session_events, session_timeline
from scheduler.selectors.waiting import ReasonView, Waiting, job_waiting

__all__ = [
    "CHART_POINTS",
    "FLOW_BIN",
    "JOB_FILTERS",
    "LANES",
    "LANE_LABELS",
    "TIMELINE_SPAN",
    "BackendCard",
    "Cluster",
    "JobResults",
    "ProcessRow",
    "ReasonView",
    "ResultUnavailable",
    "TreeRow",
    "User",
    "Waiting",
    "backend_cards",
    "cluster_processes",
    "fair_share_next",
    "fair_share_tree",
    "flow_bin",
    "flow_now",
    "instances_of",
    "job_filter_choices",
    "job_bitstrings",
    "job_results",
    "result_text",
    "job_waiting",
    "jobs_table",
    "jobs_visible",
    "pseudonym",
    "shown",
    "visible_instances",
    "queue_flow",
    "session_events",
    "session_timeline",
    "sessions_joinable",
    "sessions_visible",
]
