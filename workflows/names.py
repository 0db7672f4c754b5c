"""Stable Temporal names from SPEC §5. Changing any of these breaks running jobs."""

from temporalio.common import SearchAttributeKey

WORKFLOW_TYPE = "MediaJobWorkflow"
JOBS_QUEUE = "mediaflow-jobs"
CPU_QUEUE = "mediaflow-cpu"
GPU_QUEUE = "mediaflow-gpu"
POOL_QUEUES = {"cpu": CPU_QUEUE, "gpu": GPU_QUEUE}

SA_USER_ID = SearchAttributeKey.for_keyword("MediaflowUserId")
SA_JOB_TYPE = SearchAttributeKey.for_keyword("MediaflowJobType")
SA_JOB_STATUS = SearchAttributeKey.for_keyword("MediaflowJobStatus")
SEARCH_ATTRIBUTES = (SA_USER_ID, SA_JOB_TYPE, SA_JOB_STATUS)


def workflow_id_for(job_id: str) -> str:
    return f"job-{job_id}"
