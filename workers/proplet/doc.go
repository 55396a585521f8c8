// Package proplet is jetprop's edge worker, wire-compatible with
// Propeller's proplet: it speaks MQTT 3.1.1 (paho) on the topics under
// m/<tenant>/c/<channel>/ (package wire) and runs wasm with package runtime.
//
// # Session
//
// The MQTT client id and username are the proplet id (Config.EntityID, or a
// ULID generated once and kept in DataDir/proplet-id); the password is the
// API key. The session is persistent (clean session off), so paho's
// session store survives reconnects; on the shared topics, starts
// published at QoS >= 1 while the proplet was away arrive when it returns
// (on its own topics commands come at QoS 0: the engine sends them until
// they are accepted, see Accepts). The client reconnects by itself and
// re-subscribes on every connect. The last will, sent by the broker when
// the connection dies without a DISCONNECT, is
// {"status":"offline","proplet_id"} on control/proplet/alive; a clean
// shutdown publishes the same status before disconnecting.
//
// # Journal
//
// DataDir/journal (package journal) is paho's session store, the list of
// tasks accepted and not finished, and the last attempts finished, in one
// append-only file. A start is journaled before it runs (and accepted, on
// the proplet's own topics) and acknowledged to the broker after that
// (manual acks), so on the shared topics a start that arrives during
// shutdown, or before a crash could journal it, stays with the broker. A
// result is handed to paho, which journals it until the broker confirms
// it, and only then is its task finished in the journal, its attempt
// recorded done. So after a crash (kill -9, OOM, a panic) the next Run:
//
//   - resends every result the broker had not confirmed (paho resends the
//     session store when it connects), and
//   - reports each task that was running as failed with the error
//     "interrupted: proplet restarted" (attempt echoed), queued in the
//     session store before connecting, and records that attempt done. If
//     the start of such a task comes again (the broker redelivers it
//     because the crash also beat its acknowledgement, or the engine sends
//     it again because it never heard the accept), it is not run again.
//
// Records are written with write(2), not fsynced: they survive the process
// dying, not the machine losing power (the default nats-server makes too).
// Another proplet using the same DataDir is refused (journal.ErrLocked).
// A legacy paho file store in DataDir/mqtt-store is imported once.
//
// # Protocol
//
// On every connect: subscribe, publish discovery (control/proplet/create)
// and a heartbeat (control/proplet/alive), then heartbeat every
// Config.Liveliness. On its own topics (the default) the subscriptions are
// control/manager/<id>/+ and registry/server/<id>, both at QoS 0 whatever
// Config.QoS says: a QoS >= 1 subscription is a durable JetStream consumer
// in nats-server, and 10,000 of them are the broker's bottleneck. With
// Config.SharedTopics they are control/manager/start and stop at
// Config.QoS and registry/server and registry/server/<id> at QoS 0.
//
// A proplet whose subscription the broker refuses cannot receive, and
// says so: it publishes no discovery, its heartbeats carry status
// "unreachable" and the refusal as reason, and it tries again 10 s later,
// doubling up to 5 min, and on every reconnect. Once subscribed it
// announces itself again (discovery and an alive heartbeat).
//
// # Accepts
//
// On its own topics commands arrive at QoS 0, at most once: delivering a
// start is the jetprop engine's job. It sends a start until the proplet
// answers with {"task_id", "attempt", "proplet_id"} on
// control/proplet/<id>/accepted (QoS 1), and places the task elsewhere
// when no accept comes in time. The proplet accepts a start once it has
// journaled it, before running it, and judges every start by its attempt
// against the newest attempt of the task running here, ending, or done
// (the journal keeps the last 10,000 attempts finished here, across
// restarts): an older attempt is ignored; the same attempt is accepted
// again and not run again (the first accept may have been lost); a newer
// one runs, and stops an older one still running (its result says
// ErrSuperseded). A stop for a task that ended here is not kept as an
// early stop, so a copy of it cannot stop the next attempt. Starts on the
// shared topics, and starts without an attempt, get no accept and are
// served as Propeller's manager expects.
//
// A start is ignored when its proplet_id names another proplet (unless
// broadcast) or when the task is already running here. Otherwise the task
// runs in its own goroutine: the module comes from file, from an http(s)
// image_url, or, for any other image_url (an OCI reference, name:tag, or
// the sha256:<hex> digest the jetprop engine sends for modules too large to
// go inline), over the registry topics (at most Config.MaxModuleMiB). A
// start without a module, with bad inputs, or whose module fails, gets a
// result with the error.
//
// # Module delivery
//
// Modules fetched over the registry topics are kept in DataDir/modules by
// digest (package modcache; Config.ModuleCacheMiB, least recently used
// evicted first). A start whose digest (the jetprop digest extension, or an
// image_url that is a digest) is cached runs at once, with no request.
// Otherwise the proplet publishes {"app_name": image_url, "proplet_id",
// "task_id"} on registry/proplet at QoS >= 1 and assembles the chunks that
// come back by app_name: the jetprop engine answers on
// registry/server/<proplet id>, Propeller's proxy on registry/server.
// Tasks needing the same app_name or digest at the same time share one
// download. Each chunk is written to disk as it arrives (duplicates are
// ignored), so a proplet killed half way asks, for the next task needing
// the module, only for the chunks it misses ("chunks": [indexes]). When no
// new chunk came for Config.ChunkTimeout (doubling each time, at most
// 30 s), the missing chunks are asked for again; Config.ChunkRetries quiet
// periods in a row fail the task (ErrDownloadStalled). Chunks that do not
// fit together (an index outside total_chunks, total_chunks changing, a
// digest other than the one expected, or a module that does not hash to
// its digest) are all discarded and the module asked for afresh, once;
// a second time fails the task (ErrBadChunks). An error chunk fails the
// waiting tasks with its message (ErrModuleUnavailable). The digest
// verified keys the runtime's compile cache (runtime.Job.Digest). jetprop's extension
// fields are honoured: attempt is echoed in the result, timeout_ms bounds
// the run (default Config.DefaultTimeout, 60 s; none for daemon tasks),
// memory_mib bounds wasm memory (default Config.DefaultMemoryMiB, 256 MiB),
// and stdin feeds WASI commands.
//
// A stop cancels the task. On the proplet's own topics its result carries
// the error "stopped"; on Propeller's shared topics it sends no result, as
// Propeller's proplet does (its manager would record the task failed). A
// failed task's result is {"results": "", "error": "..."}, as Propeller's
// proplet sends it. On the shared
// topics starts and stops travel on separate subscriptions, so a stop sent
// right after its start can arrive first: such a stop is remembered for a
// few seconds and the start that follows is reported stopped without
// running. Results go to control/proplet/results at QoS max(1,
// Config.QoS) with error null on success. Malformed inbound messages are
// counted (Malformed) and logged once per topic.
package proplet
