//! Background work's routes (docs/jobs.md, docs/workflows.md): jobs,
//! workflows and the manifest's cron entries.

use super::access::Access;
use super::operation::{Answer, Body, Fail, OpSpec, Tag};

const JOB_FAILS: &[Fail] = &[Fail::Forbidden, Fail::NotFound, Fail::Conflict];

pub const JOBS: &[OpSpec<'static>] = &[
    OpSpec::post("/v1/jobs", "enqueueJob", Tag::Jobs, Access::JobsEnqueue)
        .summary("Enqueue a job for a server function")
        .detail(
            "Runs as the caller: an action in the Worker, or a mutation in `shard`. 201 with \
             a new job; 200 with the first job's id for a `key` seen before. Payloads are at \
             most 64 KiB of JSON (413 `PAYLOAD_TOO_LARGE`).",
        )
        .body(Body::Required("EnqueueJob"))
        .ok(&[Answer::Json(201, "Enqueued"), Answer::Json(200, "Enqueued")])
        .fails(&[
            Fail::BadRequest,
            Fail::Forbidden,
            Fail::NotFound,
            Fail::TooLarge,
        ]),
    OpSpec::get("/v1/jobs", "listJobs", Tag::Jobs, Access::Admin)
        .summary("Jobs, newest first (at most 500)")
        .query(&["jobStatus", "jobQueue", "jobName", "limit"])
        .ok(&[Answer::Json(200, "JobList")])
        .fails(&[Fail::BadRequest, Fail::Forbidden]),
    OpSpec::get("/v1/jobs/stats", "jobStats", Tag::Jobs, Access::Admin)
        .summary("Counts per queue and status, and the sends not yet taken")
        .ok(&[Answer::Json(200, "JobStats")])
        .fails(&[Fail::Forbidden]),
    OpSpec::get("/v1/jobs/{jobId}", "getJob", Tag::Jobs, Access::Caller)
        .summary("A job: status, attempts, error, result, times")
        .detail("For admins, and for the caller who enqueued it.")
        .ok(&[Answer::Json(200, "Job")])
        .fails(&[Fail::Forbidden, Fail::NotFound]),
    OpSpec::post(
        "/v1/jobs/{jobId}/retry",
        "retryJob",
        Tag::Jobs,
        Access::Admin,
    )
    .summary("Run a dead, failed or cancelled job again")
    .detail("409 `JOB_NOT_RETRYABLE` for a job in another status.")
    .ok(&[Answer::Json(200, "JsonObject")])
    .fails(JOB_FAILS),
    OpSpec::post(
        "/v1/jobs/{jobId}/cancel",
        "cancelJob",
        Tag::Jobs,
        Access::Admin,
    )
    .summary("Cancel a queued or failed job")
    .detail("409 `JOB_NOT_CANCELLABLE` for a job in another status.")
    .ok(&[Answer::Json(200, "JsonObject")])
    .fails(JOB_FAILS),
];

/// What a workflow instance's routes can answer besides its state.
const INSTANCE_FAILS: &[Fail] = &[
    Fail::BadRequest,
    Fail::Forbidden,
    Fail::NotFound,
    Fail::Conflict,
];

pub const WORKFLOWS: &[OpSpec<'static>] = &[
    OpSpec::post(
        "/v1/workflows",
        "startWorkflow",
        Tag::Workflows,
        Access::WorkflowStart,
    )
    .summary("Start an instance of a workflow of the manifest")
    .detail(
        "201 and its state (the first step has begun); 200 and its state when the same \
         caller starts the same id with the same workflow and input again; 409 \
         `WORKFLOW_EXISTS` when the id is taken otherwise.",
    )
    .body(Body::Required("StartWorkflow"))
    .ok(&[
        Answer::Json(201, "WorkflowState"),
        Answer::Json(200, "WorkflowState"),
    ])
    .fails(INSTANCE_FAILS),
    OpSpec::get(
        "/v1/workflows",
        "listWorkflows",
        Tag::Workflows,
        Access::Caller,
    )
    .summary("Instances: the caller's own, everyone's for an admin")
    .query(&["workflowName", "workflowStatus", "limit"])
    .ok(&[Answer::Json(200, "WorkflowList")])
    .fails(&[Fail::BadRequest]),
    OpSpec::get(
        "/v1/workflows/definitions",
        "workflowDefinitions",
        Tag::Workflows,
        Access::Caller,
    )
    .summary("The workflows the caller may start, as the manifest declares them")
    .ok(&[Answer::Json(200, "WorkflowDefinitions")]),
    OpSpec::get(
        "/v1/workflows/{workflowId}",
        "getWorkflow",
        Tag::Workflows,
        Access::Caller,
    )
    .summary("An instance's state")
    .detail("For admins, and for the caller who started it.")
    .ok(&[Answer::Json(200, "WorkflowState")])
    .fails(&[Fail::Forbidden, Fail::NotFound]),
    OpSpec::post(
        "/v1/workflows/{workflowId}/events",
        "sendWorkflowEvent",
        Tag::Workflows,
        Access::Caller,
    )
    .summary("Send an instance an event")
    .detail(
        "200 and its state when the current step waited for it and took it; 202 and its \
         state when it is kept for a later step.",
    )
    .body(Body::Required("WorkflowEvent"))
    .ok(&[
        Answer::Json(200, "WorkflowState"),
        Answer::Json(202, "WorkflowState"),
    ])
    .fails(INSTANCE_FAILS),
    OpSpec::post(
        "/v1/workflows/{workflowId}/cancel",
        "cancelWorkflow",
        Tag::Workflows,
        Access::Caller,
    )
    .summary("Stop an instance: `cancelled`, its timers cleared")
    .ok(&[Answer::Json(200, "WorkflowState")])
    .fails(INSTANCE_FAILS),
    OpSpec::post(
        "/v1/workflows/{workflowId}/advance",
        "advanceWorkflow",
        Tag::Workflows,
        Access::Caller,
    )
    .summary("End the current sleep, or the current wait (its result null), now")
    .ok(&[Answer::Json(200, "WorkflowState")])
    .fails(INSTANCE_FAILS),
];

pub const CRONS: &[OpSpec<'static>] = &[
    OpSpec::get("/v1/crons", "listCrons", Tag::Crons, Access::Admin)
        .summary("The manifest's cron entries, each with its last runs")
        .ok(&[Answer::Json(200, "CronList")])
        .fails(&[Fail::Forbidden]),
    OpSpec::post("/v1/crons/{cron}/run", "runCron", Tag::Crons, Access::Admin)
        .summary("Run a cron entry now")
        .detail(
            "`{ok, value}`, or `{ok: false, error}` when its function failed; 404 `UNKNOWN_CRON`.",
        )
        .ok(&[Answer::Json(200, "CronRun")])
        .fails(&[Fail::Forbidden, Fail::NotFound]),
];
