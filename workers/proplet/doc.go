// Package proplet is jetprop's edge worker, wire-compatible with
// Propeller's proplet: it speaks MQTT 3.1.1 (paho) on the topics under
// m/<tenant>/c/<channel>/ (package wire) and runs wasm with package runtime.
//
// # Session
//
// The MQTT client id and username are the proplet id (Config.EntityID, or a
// ULID generated once and kept in DataDir/proplet-id); the password is the
// API key. The session is persistent (clean session off): starts published
// at QoS >= 1 while the proplet was away arrive when it returns. The client
// reconnects by itself and re-subscribes on every connect. The last will,
// sent by the broker when the connection dies without a DISCONNECT, is
// {"status":"offline","proplet_id"} on control/proplet/alive; a clean
// shutdown publishes the same status before disconnecting.
//
// # Journal
//
// DataDir/journal (package journal) is paho's session store and the list
// of tasks accepted and not finished, in one append-only file. A start is
// journaled before it runs and acknowledged to the broker after that
// (manual acks), so a start that arrives during shutdown, or before a
// crash could journal it, stays with the broker. A result is handed to
// paho, which journals it until the broker confirms it, and only then is
// its task finished in the journal. So after a crash (kill -9, OOM, a
// panic) the next Run:
//
//   - resends every result the broker had not confirmed (paho resends the
//     session store when it connects), and
//   - reports each task that was running as failed with the error
//     "interrupted: proplet restarted" (attempt echoed), queued in the
//     session store before connecting. If the broker redelivers the start
//     of such a task because the crash also beat its acknowledgement, that
//     redelivery is not run again.
//
// Records are written with write(2), not fsynced: they survive the process
// dying, not the machine losing power (the default nats-server makes too).
// Another proplet using the same DataDir is refused (journal.ErrLocked).
// A legacy paho file store in DataDir/mqtt-store is imported once.
//
// # Protocol
//
// On every connect: subscribe to control/manager/start and stop at
// Config.QoS, publish discovery (control/proplet/create) and a heartbeat
// (control/proplet/alive), then heartbeat every Config.Liveliness.
//
// A start is ignored when its proplet_id names another proplet (unless
// broadcast) or when the task is already running here. Otherwise the task
// runs in its own goroutine: the module comes from file, or from an
// http(s) image_url (at most Config.MaxModuleMiB); OCI references, which
// Propeller delivers in chunks over the registry topics, fail for now with
// ErrRegistryUnsupported. A start without a module, with bad inputs, or
// whose module fails, gets a result with the error. jetprop's extension
// fields are honoured: attempt is echoed in the result, timeout_ms bounds
// the run (default Config.DefaultTimeout, 60 s; none for daemon tasks),
// memory_mib bounds wasm memory (default Config.DefaultMemoryMiB, 256 MiB),
// and stdin feeds WASI commands.
//
// A stop cancels the task; its result carries the error "stopped" (which
// Propeller's manager ignores and jetprop's engine records). Starts and
// stops travel on separate subscriptions, so a stop sent right after its
// start can arrive first: such a stop is remembered for a few seconds and
// the start that follows is reported stopped without running. Results go to
// control/proplet/results at QoS max(1, Config.QoS) with error null on
// success. Malformed inbound messages are counted (Malformed) and logged
// once per topic.
package proplet
