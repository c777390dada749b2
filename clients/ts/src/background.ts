/**
 * Background work over HTTP (docs/jobs.md, docs/workflows.md): jobs,
 * durable workflows and cron entries, as Pylon's `JobOps`, `WorkflowOps`
 * and `SchedulerOps`. Each call is one request to `/v1/jobs…`,
 * `/v1/workflows…` or `/v1/crons…` with `Authorization: Bearer <token>`;
 * a refusal rejects with a {@link PylonError} carrying the server's code.
 *
 * ```ts
 * const j = jobs("https://api.example.com", { token });
 * const { id } = await j.enqueue("sendDigest", { team: "t1" }, { delayMs: 60_000, key: "digest:t1" });
 * const job = await j.get(id); // job.status: "queued", then "running", "done"
 * ```
 */
import { PylonError } from "./errors.js";
import type { Json } from "./protocol.js";
import { httpOrigin, pathSegment, resolveToken, type TokenSource } from "./transport.js";

export interface BackgroundOptions {
  /** Sent as `Authorization: Bearer <token>`. Most routes are for admins (docs/jobs.md, "Routes"). */
  token?: TokenSource;
  /** More request headers (e.g. a session's `csrfHeaders()` for cookie-authenticated pages). */
  headers?: Record<string, string>;
  /** Default the global `fetch`. */
  fetch?: typeof fetch;
}

/** A refusal's or a failed step's error. */
export interface ErrorInfo {
  code: string;
  message: string;
}

// ---- jobs -----------------------------------------------------------------

export type JobStatus = "queued" | "running" | "done" | "failed" | "dead" | "cancelled";

/** A job as the ledger holds it (`GET /v1/jobs/{id}`). */
export interface Job {
  id: string;
  /** The handler: a server function of the app. */
  name: string;
  queue: string;
  payload: Json;
  priority: number;
  maxRetries: number;
  /** Runs started so far. */
  attempts: number;
  status: JobStatus;
  /** The last failed run's error. */
  error: ErrorInfo | null;
  /** The handler's result, once `done`. */
  result: Json | null;
  key: string | null;
  shard: string | null;
  /** The user who enqueued it (its handler runs as them). */
  enqueuedBy: string | null;
  runAtMs: number;
  createdMs: number;
  updatedMs: number;
  startedMs: number | null;
  finishedMs: number | null;
}

/** How to run a job; the server's defaults for what is left out. */
export interface EnqueueOptions {
  /** Not before this many ms from now (at most 12 hours). */
  delayMs?: number;
  /** Runs after the first that may fail before the job is dead (default 3, at most 100). */
  maxRetries?: number;
  /** One of the manifest's `jobs.queues` (default `"default"`). */
  queue?: string;
  /** 0–9, higher first within a delivered batch (default 5). */
  priority?: number;
  /** At most one job per key: the same key again answers the first job. */
  key?: string;
  /** Where the handler runs (required for a mutation). */
  shard?: string;
}

/** `POST /v1/jobs`'s answer. */
export interface Enqueued {
  id: string;
  /** False when the key named a job enqueued before. */
  created: boolean;
  status: JobStatus;
}

export interface JobFilter {
  status?: JobStatus;
  queue?: string;
  /** The handler's name. */
  name?: string;
  /** 1–500 (the server's default when left out). */
  limit?: number;
}

/** `GET /v1/jobs/stats`: counts per queue and status, and the sends not yet taken by a queue. */
export interface JobStats {
  queues: Record<string, Record<JobStatus, number>>;
  unsent: number;
}

export interface Jobs {
  /** Enqueues `name` with `payload` as its arguments (`POST /v1/jobs`). */
  enqueue(name: string, payload?: Json, options?: EnqueueOptions): Promise<Enqueued>;
  /** One job (admins, and its enqueuer; `JOB_NOT_FOUND` otherwise). */
  get(id: string): Promise<Job>;
  /** Newest first (admins). */
  list(filter?: JobFilter): Promise<Job[]>;
  stats(): Promise<JobStats>;
  /** A dead, failed or cancelled job again (`JOB_NOT_RETRYABLE` otherwise). */
  retry(id: string): Promise<Job>;
  /** A queued or failed job (`JOB_NOT_CANCELLABLE` otherwise). */
  cancel(id: string): Promise<Job>;
}

/**
 * Pylon's `JobOps` over `/v1/jobs`.
 *
 * ```ts
 * const j = jobs("https://api.example.com", { token: adminToken });
 * for (const dead of await j.list({ status: "dead" })) await j.retry(dead.id);
 * ```
 */
export function jobs(baseUrl: string, options: BackgroundOptions = {}): Jobs {
  const http = new BackgroundHttp(baseUrl, options);
  return {
    enqueue: (name, payload = null, o = {}) => http.post<Enqueued>("/v1/jobs", defined({ name, payload, ...o })),
    get: (id) => http.get<Job>(`/v1/jobs/${segment(id)}`),
    list: async (filter = {}) => (await http.get<{ jobs: Job[] }>(`/v1/jobs${query(filter)}`, "jobs")).jobs,
    stats: () => http.get<JobStats>("/v1/jobs/stats"),
    retry: (id) => http.post<Job>(`/v1/jobs/${segment(id)}/retry`, {}),
    cancel: (id) => http.post<Job>(`/v1/jobs/${segment(id)}/cancel`, {}),
  };
}

// ---- workflows --------------------------------------------------------------

export type WorkflowStatus = "running" | "sleeping" | "waiting" | "completed" | "failed" | "cancelled";

/** One step that began, in a workflow's `history`. */
export interface StepRecord {
  step: number;
  name: string;
  kind: "run" | "sleep" | "waitForEvent";
  status: WorkflowStatus;
  /** A `run` step's attempts. */
  attempts: number;
  /** Present once the step completed (it may be `null`). */
  result?: Json;
  /** Its last failed attempt's error. */
  error?: ErrorInfo;
  startedMs: number;
  finishedMs: number | null;
}

/** An instance as `GET /v1/workflows/{id}` answers it (docs/workflows.md, "The state"). */
export interface WorkflowState {
  id: string;
  workflow: string;
  status: WorkflowStatus;
  /** The current step's index (the number of steps once `completed`). */
  step: number;
  stepName: string | null;
  input: Json;
  /** The last step's result, once `completed`. */
  output: Json;
  error: ErrorInfo | null;
  startedBy: string | null;
  createdMs: number;
  updatedMs: number;
  /** Each completed step's result, by name. */
  steps: Record<string, Json>;
  history: StepRecord[];
  /** The event a `waiting` instance waits for. */
  waitingFor?: string;
  /** When a sleep ends, a wait times out, or the next attempt runs. */
  wakeAtMs?: number;
}

/** An instance as the list shows it. */
export interface WorkflowSummary {
  id: string;
  workflow: string;
  status: WorkflowStatus;
  step: number;
  startedBy: string | null;
  createdMs: number;
  updatedMs: number;
}

export interface WorkflowFilter {
  workflow?: string;
  status?: WorkflowStatus;
  limit?: number;
}

export interface StartOptions {
  /** The instance's id (1–128 of `A-Z a-z 0-9 - _ . :`); the router picks one when left out. Starting the same id with the same workflow and input again answers the instance. */
  id?: string;
  /** Where its steps' queries and mutations run. */
  shard?: string;
}

export interface Workflows {
  /** Starts an instance of `workflow` (`WORKFLOW_EXISTS` for an id taken otherwise). */
  start(workflow: string, input?: Json, options?: StartOptions): Promise<WorkflowState>;
  /** Its state (`WORKFLOW_NOT_FOUND` for an id that is not the caller's). */
  get(id: string): Promise<WorkflowState>;
  /** The caller's instances (everyone's for an admin), from the ledger's summaries. */
  list(filter?: WorkflowFilter): Promise<WorkflowSummary[]>;
  /** Sends event `name`: taken by the step waiting for it, or kept for a later one. */
  sendEvent(id: string, name: string, payload?: Json): Promise<WorkflowState>;
  cancel(id: string): Promise<WorkflowState>;
  /** Ends the current sleep or wait now (`NOT_WAITING` otherwise). */
  advance(id: string): Promise<WorkflowState>;
}

/**
 * Pylon's `WorkflowOps` over `/v1/workflows`.
 *
 * ```ts
 * const w = workflows("https://api.example.com", { token });
 * const { id } = await w.start("onboard", { title: "welcome" }, { shard: "team:42" });
 * await w.sendEvent(id, "approved", { by: "ann" });
 * ```
 */
export function workflows(baseUrl: string, options: BackgroundOptions = {}): Workflows {
  const http = new BackgroundHttp(baseUrl, options);
  const path = (id: string, verb = "") => `/v1/workflows/${segment(id)}${verb === "" ? "" : `/${verb}`}`;
  return {
    start: (workflow, input = null, o = {}) => http.post<WorkflowState>("/v1/workflows", defined({ workflow, input, id: o.id, shard: o.shard })),
    get: (id) => http.get<WorkflowState>(path(id)),
    list: async (filter = {}) => (await http.get<{ workflows: WorkflowSummary[] }>(`/v1/workflows${query(filter)}`, "workflows")).workflows,
    sendEvent: (id, name, payload = null) => http.post<WorkflowState>(path(id, "events"), { name, payload }),
    cancel: (id) => http.post<WorkflowState>(path(id, "cancel"), {}),
    advance: (id) => http.post<WorkflowState>(path(id, "advance"), {}),
  };
}

// ---- cron -------------------------------------------------------------------

/** A cron entry's record of runs. */
export interface CronRuns {
  runs: number;
  failures: number;
  lastMs: number;
  lastOk: boolean;
  /** `"CODE: message"` of the last run, when it failed. */
  lastError: string | null;
}

/** A manifest `crons` entry, with its runs (`null` before the first). */
export interface CronEntry {
  name: string;
  cron: string;
  /** The server function it runs. */
  run: string;
  args: Json;
  shard?: string;
  lastRuns: CronRuns | null;
}

/** What a run now gave: the function's value, or its error. */
export interface CronRun {
  ok: boolean;
  value?: Json;
  error?: ErrorInfo;
}

export interface Scheduler {
  /** The manifest's cron entries with their last runs (admins). */
  list(): Promise<CronEntry[]>;
  /** Runs entry `name` now (`UNKNOWN_CRON` for none of that name). */
  trigger(name: string): Promise<CronRun>;
}

/**
 * Pylon's `SchedulerOps` over `/v1/crons`, for admins.
 *
 * ```ts
 * const s = scheduler("https://api.example.com", { token: adminToken });
 * const ran = await s.trigger("tidyTick"); // {ok: true, value: …}
 * ```
 */
export function scheduler(baseUrl: string, options: BackgroundOptions = {}): Scheduler {
  const http = new BackgroundHttp(baseUrl, options);
  return {
    list: async () => (await http.get<{ crons: CronEntry[] }>("/v1/crons", "crons")).crons,
    trigger: (name) => http.post<CronRun>(`/v1/crons/${segment(name)}/run`, {}),
  };
}

// ---- the requests -------------------------------------------------------------

const segment = pathSegment;

/** `?k=v&…` of the fields given. */
function query(fields: JobFilter | WorkflowFilter): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(fields) as [string, string | number | undefined][]) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s === "" ? "" : `?${s}`;
}

/** `o` without its undefined fields (the server's defaults apply to them). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export class BackgroundHttp {
  private readonly origin: string;
  private readonly options: BackgroundOptions;
  constructor(baseUrl: string, options: BackgroundOptions) {
    this.origin = httpOrigin(baseUrl);
    this.options = options;
  }

  get<T>(path: string, arrayField?: string): Promise<T> {
    return this.send<T>("GET", path, undefined, arrayField);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>("POST", path, body);
  }

  /**
   * Rejects with the server's code and the status; `HTTP_<status>` for an
   * error without the API's body; `BAD_RESPONSE` for a success that is not
   * a JSON object (with `arrayField` an array); `UNAVAILABLE` when no
   * answer came.
   */
  private async send<T>(method: "GET" | "POST", path: string, body: unknown, arrayField?: string): Promise<T> {
    const f = this.options.fetch ?? globalThis.fetch;
    const headers: Record<string, string> = { ...this.options.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    const token = await resolveToken(this.options.token);
    if (token !== undefined && token !== "") headers.authorization = `Bearer ${token}`;
    let resp: Response;
    try {
      resp = await f(`${this.origin}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (e) {
      throw new PylonError("UNAVAILABLE", `${method} ${path}: ${String(e)}`);
    }
    const text = await resp.text().catch(() => "");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const at = { status: resp.status };
    if (!resp.ok) {
      const err = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof err?.code === "string" ? err.code : `HTTP_${resp.status}`;
      const message = typeof err?.message === "string" ? err.message : `${method} ${path} answered ${resp.status}`;
      throw new PylonError(code, message, at);
    }
    const isObject = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed);
    if (!isObject || (arrayField !== undefined && !Array.isArray((parsed as Record<string, unknown>)[arrayField]))) {
      const shape = arrayField === undefined ? "a JSON object" : `{${arrayField}: [...]}`;
      throw new PylonError("BAD_RESPONSE", `${method} ${path}: the answer is not ${shape}`, at);
    }
    return parsed as T;
  }
}
