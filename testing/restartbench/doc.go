// Command restartbench measures how long `jetprop up` takes from process
// start to serving GET /health (read models caught up) on a data directory
// holding a given number of events, and prints a Markdown table:
//
//	go run ./testing/restartbench -bin bin/jetprop -events 100000,1000000
//
// (`make restart-bench`). For each size it starts a fresh server, records
// the history through the engine's own command handler over the engine's
// NATS account (tasks created, scheduled, started and completed on a
// fleet of devices, and workflows of ten steps), stops the server with
// SIGTERM and starts it again -restarts times, timing each start. The
// server runs as a process of its own, as in production.
package main
