// Package journal is the proplet's crash-recovery journal: one append-only
// file per data dir holding the MQTT session store (outbound QoS >= 1
// messages not yet acknowledged by the broker), the tasks accepted but
// not yet finished, the last attempts finished (done), so that a
// start sent again is not run again, and the results the manager has not
// acknowledged yet, to send again.
//
//	j, err := journal.Open(dataDir)
//	opts.SetStore(j.Store())             // paho resends what the broker never confirmed
//	for _, e := range j.Interrupted() {  // tasks a crash cut short
//		...report e.TaskID failed...
//		j.Clear(e)                   // done, its attempt too
//	}
//	if done, ok := j.Done(id); ok && done >= attempt { ...ran here already... }
//	j.Accepted(id, attempt, start)       // before running a task
//	j.Finished(id, attempt)              // once its result is in the store
//	j.KeepResult(id, attempt, msg)       // before sending a result the manager acks
//	j.ResultAcked(id, attempt)           // once it did; j.Results() to send again
//
// # Format
//
// The file, <dir>/journal, is a sequence of records:
//
//	uint32 little-endian n | uint32 CRC-32C of body | body (n bytes)
//	body = op ('P' put, 'D' delete) | uvarint key length | key | value
//
// A put sets a key, a delete removes it; the last record for a key wins. An
// in-memory index holds every live key with its value, so reads never touch
// the disk. Keys "o.<id>" are paho's (the value is the MQTT packet as
// packets.ControlPacket.Write encodes it); keys "t.<task id>" are tasks (a
// varint attempt, then the caller's start description); keys "d.<task
// id>" are done records (the varint attempt that finished, the newest
// one); keys "r.<task id>" are results kept until acknowledged (the
// varint attempt, then the result message), at most DefaultResultLimit
// and DefaultResultBytes of them (WithResultLimit), oldest dropped first.
// At most DefaultDoneLimit (WithDoneLimit) done records are kept:
// the one written longest ago is deleted first. Done records are live
// records like any other, so they survive compaction and reopening.
//
// # Recovery
//
// Open replays the file. A last record cut short (the process died inside
// write(2), or the disk filled up) is truncated away (Stats.TornBytes). A
// complete record whose checksum or layout is wrong stops the replay there:
// what came before is kept, the file is set aside as <dir>/journal.corrupt,
// and the live records are rewritten to a fresh file (Stats.Corrupt,
// Stats.DroppedBytes). Open fails only when the file cannot be read or
// written, or when another process holds the journal (ErrLocked).
//
// # Compaction
//
// Deletes and overwrites leave dead bytes behind. Once they exceed both
// DefaultCompactBytes (1 MiB) and half the file, the live records are
// written to <dir>/journal.compact, which is renamed over the journal
// (with WithSync, the file and then the directory are fsynced too). The
// live set is small (messages in flight, tasks running, and at most some
// 400 KB of done records), so this is cheap and rare: about once per
// thousand tasks.
//
// # Durability
//
// Each record reaches the kernel with one write(2) before the call that
// made it returns, and is not fsynced (nor is a compaction): it survives
// the process being killed, not a power loss. That is the trade
// nats-server's file store makes by default, and it keeps the cost of a
// record at a few microseconds and the journal's lock free of disk
// flushes. WithSync(true) fsyncs every record and compaction (hundreds of
// microseconds to milliseconds each) for devices that lose power
// uncleanly. The store never
// returns an error to paho (its Store interface has no error results):
// failed writes are counted in Stats.WriteErrors and passed to the
// WithOnError callback, and a failed write is truncated away so the file
// stays well formed.
//
// # Inbound messages are kept in memory only
//
// paho also stores inbound QoS >= 1 packets ("i.<id>" keys): a PUBLISH from
// its arrival until the proplet acknowledges it, and for QoS 2 the PUBREL
// until PUBCOMP is sent. The journal keeps those in memory and never writes
// them, which halves the records per task, because persisting them buys
// nothing:
//
//   - paho does not replay a stored inbound PUBLISH after a restart (its
//     resume discards them as invalid), and the proplet acknowledges a start
//     only after accepting it (manual acks, after Accepted is journaled): a
//     start that was not acknowledged is redelivered by the broker, which
//     keeps it in the persistent session.
//   - For QoS 2 the broker resends an unacknowledged PUBREL when the
//     session resumes (MQTT 3.1.1 section 4.4), so paho's stored copy is
//     redundant too.
//
// What the proplet must not forget over a crash is on its own side: the
// tasks it accepted (so it can report them interrupted) and the results it
// sent (so paho resends them). Both are written.
package journal
