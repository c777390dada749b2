export {
  connect,
  PylonClient,
  PylonError,
  shardUrl,
  type CallOptions,
  type ChangeInfo,
  type ChangeListener,
  type ClientEvents,
  type ConnectionState,
  type ConnectOptions,
  type Encoding,
  type FunctionWatch,
  type MutateOptions,
  type MutationResult,
  type PresenceChange,
  type SubStatus,
  type Subscription,
  type TokenSource,
  type WatchErrorListener,
  type WatchListener,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export { callHttp, type CallHttpOptions, type CallHttpResult } from "./call-http.js";
export {
  jobs,
  scheduler,
  workflows,
  type BackgroundOptions,
  type CronEntry,
  type CronRun,
  type CronRuns,
  type Enqueued,
  type EnqueueOptions,
  type ErrorInfo,
  type Job,
  type JobFilter,
  type Jobs,
  type JobStats,
  type JobStatus,
  type Scheduler,
  type StartOptions,
  type StepRecord,
  type WorkflowFilter,
  type Workflows,
  type WorkflowState,
  type WorkflowStatus,
  type WorkflowSummary,
} from "./background.js";
export { rooms, type ListedRoom, type RoomInfo, type RoomMember, type RoomPage, type Rooms } from "./rooms.js";
export { FUNCTION_ERROR } from "./errors.js";
export { applyRows, checkSeq, ApplyError } from "./apply.js";
export { subprotocolOf } from "./encoding.js";
export { RECEIPT_STEP, RECEIPT_TAG, ReceiptCounter, receiptFrame, receiptStep, utf8Length } from "./receipts.js";
export { PostcardReader, PostcardWriter } from "./postcard.js";
export { MAX_VALUE_DEPTH, readRow, readValue, writeRow, writeValue } from "./postcard-value.js";
export {
  decodeClientPostcard,
  decodeServerPostcard,
  encodeClientPostcard,
  encodeServerPostcard,
} from "./postcard-protocol.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { applyOptimistic, type RowLookup } from "./optimistic.js";
export {
  compareRows,
  compareText,
  compareValues,
  evaluate,
  like,
  matches,
  orderKeys,
  type Filter,
  type OrderKey,
  type Query,
} from "./query.js";
export {
  CloseCode,
  decodeServer,
  DecodeError,
  PROTOCOL,
  RETRYABLE_CODES,
  SUBPROTOCOL,
  type Ack,
  type Bcast,
  type ClientMsg,
  type Diff,
  type Err,
  type FnResult,
  type FnValue,
  type Json,
  type Member,
  type Op,
  type Positioned,
  type PresenceDiff,
  type PresenceState,
  type Pong,
  type Reset,
  type Row,
  type ServerMsg,
  type Snap,
  type Welcome,
} from "./protocol.js";
export { identityEnded, jwtExpiry, jwtSubject, renewalDelay, IDENTITY_ENDED } from "./token.js";
export {
  joinSim,
  simUrl,
  SimClient,
  SimError,
  type JoinSimOptions,
  type PendingInput,
  type SimClientEvents,
  type SimConnectionState,
  type SimSnapshot,
} from "./sim.js";
export { matchmake, MatchError, type Match, type MatchmakeOptions } from "./matchmake.js";
export {
  decodeSimServerPostcard,
  encodeSimInputPostcard,
  encodeSimServerPostcard,
  type SimPostcardCodec,
} from "./sim-postcard.js";
export {
  decodeSimServer,
  decodeTicketMsg,
  SIM_PROTOCOL,
  SimCloseCode,
  type SimAck,
  type SimErrMsg,
  type SimInputMsg,
  type SimServerMsg,
  type SimSnapshotMsg,
  type SimWelcome,
  type TicketMsg,
  type TicketStatus,
} from "./sim-protocol.js";
export {
  browserSession,
  readCookie,
  SessionError,
  CSRF_COOKIE,
  CSRF_HEADER,
  type BrowserSession,
  type SessionOptions,
} from "./session.js";
export {
  channels,
  type ChannelMessage,
  type ChannelReady,
  type Channels,
  type ChannelsOptions,
  type ChannelSubscription,
  type SubscribeOptions,
} from "./channels.js";
