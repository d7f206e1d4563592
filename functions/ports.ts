// Interfaces between the domain logic and the outside world. The Lambda handlers and the local
// runtime plug in the same adapters (DynamoDB, SQS, Step Functions, the agent client), each
// pointed at AWS or at an emulator by configuration.
import type { HistoryEntry, HistoryPage, ReloadSnapshot } from './domain/history.js';
import type {
  Backend,
  ClusterRecord,
  Datacenter,
  Director,
  Probe,
  Route,
  Server,
  Task,
  TimeProfile,
  VclTemplate,
} from './domain/model.js';
import type { PurgeTarget } from './domain/purge-target.js';

/** A VCL as Varnish lists it. */
export interface LoadedVcl {
  name: string;
  /** `active`, `available` or another state that `vcl.list` prints. */
  status: string;
}

/** Admin operations on one varnishd, as the agent beside it offers them. */
export interface VarnishAgent {
  /** Lists the loaded VCLs, the active one included. */
  listVcls(): Promise<LoadedVcl[]>;
  /** Compiles and loads a VCL without activating it. Throws VclCompileError when it fails to compile. */
  loadVcl(name: string, vcl: string): Promise<void>;
  /** Makes a loaded VCL active, then discards older vaas VCLs that are not in use. */
  useVcl(name: string): Promise<void>;
  discardVcl(name: string): Promise<void>;
  /**
   * Compiles a VCL without keeping it loaded. Throws VclCompileError with the compiler's output
   * when it does not compile. Optional: without it, callers load under a throwaway name and discard.
   */
  compileVcl?(vcl: string): Promise<void>;
  /** Returns the name and source of the active VCL. Optional, for transports that cannot read it. */
  activeVcl?(): Promise<ActiveVcl>;
  /** Returns the health of every backend of the active VCL, from `backend.list -j`. Optional like activeVcl. */
  backendHealth?(): Promise<VarnishBackendHealth[]>;
  /** Bans cached objects of one URL, from a validated PurgeTarget. Optional like activeVcl. */
  purge?(target: PurgeTarget): Promise<void>;
}

/** The active VCL of a server. */
export interface ActiveVcl {
  name: string;
  source: string;
}

/** One backend as `backend.list -j` reports it. */
export interface VarnishBackendHealth {
  /** The VCL that declares the backend, for example `vaas-0123456789abcdef-m1x2-ab12`. */
  vcl: string;
  /** The backend's identifier in that VCL. */
  backend: string;
  /** `healthy`, `sick`, `probe` (the probe decides) or another value that varnishd prints. */
  adminHealth: string;
  healthy: boolean;
  /** Good probes among the last `window`; absent when the backend has no probe. */
  probe?: { good: number; window: number };
  /** When the health last changed, as an ISO 8601 timestamp. */
  lastChange?: string;
}

/** Returns the agent that reaches a given server. */
export type VarnishTransport = (server: Server) => VarnishAgent;

/** One queue message: a cluster's part of a task. */
export interface TaskMessage {
  taskId: string;
  clusterId: string;
  seq: number;
  /** The task's timestamp, for display in the cluster's reloadTimestamp and errorTimestamp. */
  timestamp: string;
}

export interface TaskQueue {
  /** Sends the messages in order; each message's group is its cluster id. */
  send(messages: TaskMessage[]): Promise<void>;
}

export type EntityKind =
  | 'cluster'
  | 'server'
  | 'director'
  | 'backend'
  | 'datacenter'
  | 'probe'
  | 'timeProfile'
  | 'route'
  | 'vclTemplate';

export interface EntityByKind {
  cluster: ClusterRecord;
  server: Server;
  director: Director;
  backend: Backend;
  datacenter: Datacenter;
  probe: Probe;
  timeProfile: TimeProfile;
  route: Route;
  vclTemplate: VclTemplate;
}

/** Store of configuration entities. Every read is strongly consistent, so a reload reads all saved changes. */
export interface ConfigStore {
  get<K extends EntityKind>(kind: K, id: string): Promise<EntityByKind[K] | undefined>;
  list<K extends EntityKind>(kind: K): Promise<EntityByKind[K][]>;
  /** Saves a new entity. Throws ConflictError when its name is taken. */
  create<K extends EntityKind>(kind: K, entity: EntityByKind[K]): Promise<void>;
  /** Writes the given fields of an existing entity. Throws NotFoundError or ConflictError. */
  update<K extends EntityKind>(
    kind: K,
    previous: EntityByKind[K],
    next: Partial<EntityByKind[K]>,
  ): Promise<void>;
  /** Deletes an entity and frees its name. Throws NotFoundError when it is gone already. */
  remove<K extends EntityKind>(kind: K, entity: EntityByKind[K]): Promise<void>;
}

/** A task that was promised but may not be fully queued yet; the reconciler finishes it. */
export interface OutboxEntry {
  taskId: string;
  clusters: string[];
  createdAt: string;
  /** The change's history entries, written once the change is saved; the reconciler writes them after a crash. */
  changes?: HistoryEntry[];
}

export interface TaskStore {
  putOutbox(entry: OutboxEntry): Promise<void>;
  deleteOutbox(taskId: string): Promise<void>;
  listOutbox(): Promise<OutboxEntry[]>;
  putTask(task: Task): Promise<void>;
  getTask(id: string): Promise<Task | undefined>;
  /** Sets a cluster's part of the task to running, unless it finished already. */
  markTaskRunning(taskId: string, clusterId: string): Promise<void>;
  /**
   * Finishes a cluster's part of the task once; later calls for the same part change nothing.
   * Finishing the last open part removes the task's open-task marker.
   */
  finishTask(taskId: string, clusterId: string, outcome: TaskOutcome): Promise<void>;
  /** Marks a task as open until its last part finishes, so a lost queue message can be sent again. */
  putOpenTask(taskId: string, createdAt: string): Promise<void>;
  listOpenTasks(): Promise<{ taskId: string; createdAt: string }[]>;
  deleteOpenTask(taskId: string): Promise<void>;
  /**
   * Claims a periodic job for this run: returns true, and records `now`, only when the job last
   * ran at least `intervalMs` before `now`. Of two concurrent callers at most one wins.
   */
  claimPeriodicRun(job: string, now: Date, intervalMs: number): Promise<boolean>;
}

export interface TaskOutcome {
  status: 'succeeded' | 'failed';
  finishedAt: string;
  error?: string;
}

/** Per-cluster ordering and reload results, kept on the cluster's item. */
export interface ClusterStateStore {
  /** Atomically increments the cluster's changeSeq and returns the new value. */
  bumpChangeSeq(clusterId: string): Promise<number>;
  /** Raises appliedSeq to `seq` (never lowers it) and records the attempt time. */
  recordApplied(clusterId: string, seq: number, attemptAt: string): Promise<void>;
  /** Shows a task as live in reloadTimestamp when it is newer, by seq, than the one shown. */
  recordTaskLive(clusterId: string, taskSeq: number, taskTimestamp: string): Promise<void>;
  recordError(
    clusterId: string,
    error: { taskTimestamp: string; message: string; attemptAt: string },
  ): Promise<void>;
  /** Records that a reload was requested or tried now, so the reconciler waits before retrying. */
  recordAttempt(clusterId: string, attemptAt: string): Promise<void>;
}

/** Receives reload outcomes, for metrics. */
export interface ReloadObserver {
  reloaded(clusterId: string, durationMs: number, succeeded: boolean): void;
  skipped(clusterId: string, taskCount: number): void;
}

/** Change history and the configuration of every successful reload. */
export interface HistoryStore {
  /** Writes entries under their resource and under each affected cluster. Writing an entry again changes nothing. */
  putEntries(entries: HistoryEntry[]): Promise<void>;
  /** Lists a resource's entries, newest first. */
  listForResource(
    kind: EntityKind,
    id: string,
    page: HistoryPage,
  ): Promise<{ items: HistoryEntry[]; next?: string }>;
  /** Lists the entries of changes that affected a cluster, its own included, newest first. */
  listForCluster(clusterId: string, page: HistoryPage): Promise<{ items: HistoryEntry[]; next?: string }>;
  getEntry(id: string): Promise<HistoryEntry | undefined>;
  /** Stores the snapshot of a successful reload; storing the same cluster and seq again replaces it. */
  putSnapshot(snapshot: ReloadSnapshot): Promise<void>;
  /** Returns the oldest snapshot of the cluster whose seq is at least `seq`: the first reload that contained that change. */
  findSnapshot(clusterId: string, seq: number): Promise<ReloadSnapshot | undefined>;
  latestSnapshot(clusterId: string): Promise<ReloadSnapshot | undefined>;
  /** Lists a cluster's snapshots without their configuration, newest first. */
  listSnapshots(
    clusterId: string,
    page: HistoryPage,
  ): Promise<{ items: Omit<ReloadSnapshot, 'config'>[]; next?: string }>;
}
